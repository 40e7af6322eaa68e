"""What the CPU is and offers, read once from ``/proc/cpuinfo`` (engine cache keys, precision choice, reports)."""

from __future__ import annotations

import functools
import platform


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_name() -> str:
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


@functools.cache
def _flags() -> frozenset[str]:
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
