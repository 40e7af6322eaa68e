"""PyTorch eager: the reference backend (CPU, or CUDA where present)."""

from __future__ import annotations

import torch

from engines.base import BackendError, Runner


def cpu_supports_bf16() -> bool:
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in info or "amx_bf16" in info


class TorchRunner(Runner):
    def __init__(self, model: torch.nn.Module, *, device: str = "cpu", precision: str = "auto"):
        super().__init__(model)
        self.device = torch.device(device)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision == "fp16" and self.device.type != "cuda":
            raise BackendError("fp16 needs a CUDA GPU with the torch backend; use fp32 or bf16 on the CPU")
        if precision == "bf16" and self.device.type == "cpu" and not cpu_supports_bf16():
            raise BackendError("this CPU has no bf16 support; use --precision fp32")
        self.precision = precision
        self.name = "torch-cuda" if self.device.type == "cuda" else "torch-cpu"
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.model = model.eval().to(self.device)
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.no_grad()  # not inference_mode: callers may modify the result in place
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            y = self.model(x)
        return y.float().cpu()
