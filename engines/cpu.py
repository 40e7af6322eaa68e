"""What the CPU is and offers, read once from ``/proc/cpuinfo`` (engine cache keys, precision choice, reports)."""

from __future__ import annotations

import functools
import os
import platform

# oneDNN's instruction-set levels, lowest first. ``ONEDNN_MAX_CPU_ISA`` caps OpenVINO's and PyTorch's kernels at one
# of them (how a newer CPU measures what an older one runs): flags above the cap are treated as absent, and the cap
# is part of the CPU's name, hence of every engine key (an engine compiled without it does not load under it).
_ISA = ("sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16",
        "avx10_1_512", "avx10_1_512_amx", "avx10_1_512_amx_fp16")
_ISA_ALIASES = {"avx512_core_fp16": "avx10_1_512", "avx512_core_amx": "avx10_1_512_amx",
                "avx512_core_amx_fp16": "avx10_1_512_amx_fp16"}
# the lowest level whose kernels use each flag this module asks about
_NEEDS = {"avx_vnni": "avx2_vnni", "avx512_vnni": "avx512_core_vnni", "avx512_bf16": "avx512_core_bf16",
          "avx512_fp16": "avx10_1_512", "amx_int8": "avx10_1_512_amx", "amx_bf16": "avx10_1_512_amx",
          "amx_fp16": "avx10_1_512_amx_fp16"}


def isa_cap() -> str | None:
    """The level ``ONEDNN_MAX_CPU_ISA`` caps kernels at (None: no cap, or one this module doesn't know)."""
    name = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    name = _ISA_ALIASES.get(name, name)
    return name if name in _ISA else None


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_name() -> str:
    cap = isa_cap()
    return _model_name() + (f" (ISA capped at {cap.upper()})" if cap else "")


def _model_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 runs natively (elsewhere PyTorch emulates it, several times slower than fp32)."""
    flags = _flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_native_fp16() -> bool:
    """AVX-512 FP16 or AMX-FP16: fp16 arithmetic runs natively (elsewhere OpenVINO emulates or falls back to
    fp32)."""
    flags = _flags()
    return "avx512_fp16" in flags or "amx_fp16" in flags


def has_vnni() -> bool:
    """int8 dot products that don't saturate (AVX-512 VNNI, AVX-VNNI or AMX): NNCF needs no overflow fix."""
    flags = _flags()
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)


def _flags() -> frozenset[str]:
    cap = isa_cap()
    if cap is None:
        return _all_flags()
    level = _ISA.index(cap)
    return frozenset(f for f in _all_flags() if f not in _NEEDS or _ISA.index(_NEEDS[f]) <= level)


@functools.cache
def _all_flags() -> frozenset[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


# why a CPU can't run a precision natively (the message a refused --precision gives)
LACKS = {"bf16": "this CPU has no native bf16 (AVX-512 BF16 or AMX)",
         "fp16": "this CPU has no native fp16 (AVX-512 FP16 or AMX-FP16)"}


def native_precisions() -> list[str]:
    """The precisions this CPU computes natively; the others are emulated (slower than fp32) or silently run
    as fp32, so no backend offers them here."""
    return ["fp32"] + (["bf16"] if has_native_bf16() else []) + (["fp16"] if has_native_fp16() else [])
