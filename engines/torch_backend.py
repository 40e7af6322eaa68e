"""PyTorch eager: the reference backend (CPU, or CUDA where present). It runs :class:`engines.graph.Graph` as it
is, so its conversions are the exported graphs' own."""

from __future__ import annotations

import numpy as np
import torch

from engines.base import Identity, Runner
from engines.cpu import has_native_bf16
from engines.errors import BackendError
from engines.graph import Graph


class TorchRunner(Runner):
    def __init__(self, model: torch.nn.Module, identity: Identity | None = None, *, device: str = "cpu",
                 precision: str = "auto"):
        super().__init__(model, identity)
        self.device = torch.device(device)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision == "fp16" and self.device.type != "cuda":
            raise BackendError("fp16 needs a CUDA GPU with the torch backend; use fp32 or bf16 on the CPU")
        if precision == "bf16" and self.device.type == "cpu" and not has_native_bf16():
            raise BackendError("this CPU has no bf16 support; use --precision fp32")
        self.precision = precision
        self.name = "torch-cuda" if self.device.type == "cuda" else "torch-cpu"
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
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
