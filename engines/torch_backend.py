"""PyTorch eager: the reference backend (CPU, or CUDA where present). It runs :class:`engines.graph.Graph` as it
is, so its conversions are the exported graphs' own."""

from __future__ import annotations

import numpy as np
import torch

from engines import cpu
from engines.base import INT8_ELSEWHERE, Identity, Runner, choose_precision
from engines.graph import Graph


def cuda_precisions() -> list[str]:
    """What the current CUDA GPU runs natively: fp16 everywhere, bf16 from compute capability 8.0 (Ampere)."""
    return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported(including_emulation=False) else [])


class TorchRunner(Runner):
    def __init__(self, model: torch.nn.Module, identity: Identity | None = None, *, device: str = "cpu",
                 precision: str = "auto"):
        super().__init__(model, identity)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            self.precision = choose_precision(precision, cuda_precisions(), "fp16", {
                "bf16": "this GPU has no native bf16 (compute capability 8.0 or newer)", "int8": INT8_ELSEWHERE})
        else:  # auto stays fp32 on the CPU: the reference
            self.precision = choose_precision(precision, cpu.native_precisions(), "fp32",
                                              {**cpu.LACKS, "int8": INT8_ELSEWHERE})
        self.name = "torch-cuda" if self.device.type == "cuda" else "torch-cpu"
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.model = model.eval().to(self.device)
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._graphs: dict[str, Graph] = {}
        self.state: torch.Tensor | None = None

    @torch.no_grad()
    def _start(self, io: str, inputs: list[np.ndarray], reset: bool):
        graph = self._graphs.get(io) or self._graphs.setdefault(io, Graph(self.model, self.d, io))
        args = [torch.from_numpy(a).to(self.device) for a in inputs]
        if self.d.recurrent:
            n, h, w = args[0].shape[0], *(args[0].shape[1:3] if io != "f32" else args[0].shape[2:4])
            if reset or self.state is None or self.state.shape[-2:] != (h, w):
                self.state = torch.zeros((n, self.d.state_channels, h, w), device=self.device)
            args.append(self.state)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            out = graph(*args)
        if self.d.recurrent:
            out, self.state = out
        return out

    def _finish(self, handle) -> np.ndarray:
        return handle.float().cpu().numpy() if handle.is_floating_point() else handle.cpu().numpy()
