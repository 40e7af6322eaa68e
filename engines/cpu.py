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
    info = _cpuinfo()
    return "avx512_bf16" in info or "amx_bf16" in info
