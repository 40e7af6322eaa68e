"""The graph every backend runs: integer frames in, integer frame out, with the model in between.

This is vsr's one conversion boundary. ``normalise`` turns N×H×W×3 integer frames into the model's float input
(÷ peak, channels first, frames stacked) and ``quantise`` turns its output back (× peak, + 0.5, clamp, floor:
half rounds up). The torch backend runs this module as it is; OpenVINO and TensorRT run it exported, where the
conversions fuse with the first and last layers instead of costing several host passes over the largest arrays.

``io`` says what crosses the boundary: ``u8`` (8-bit frames in, 8-bit out), ``u16`` (16-bit, torch only) or
``f32`` (the float tensors themselves: for runtimes without 16-bit tensors, whose runner then calls
``normalise`` and ``quantise`` on the host: the same functions, so the same numbers).
"""

from __future__ import annotations

import torch
from torch import nn

from engines.descriptor import Descriptor

PEAK = {"u8": 255.0, "u16": 65535.0}
DTYPE = {"u8": torch.uint8, "u16": torch.uint16}


def normalise(frames: list[torch.Tensor], peak: float) -> torch.Tensor:
    """N×H×W×3 integer frames (oldest first) → N×(3·T)×H×W float in [0, 1]."""
    return torch.cat([f.permute(0, 3, 1, 2) for f in frames], 1).float() / peak


def quantise(y: torch.Tensor, peak: float) -> torch.Tensor:
    """N×3×H×W float → N×H×W×3 float holding integers in [0, peak] (half up; integral before any cast, so the
    cast's own rounding mode never matters)."""
    return torch.floor(torch.clamp(y * peak + 0.5, 0.0, peak)).permute(0, 2, 3, 1)


class Graph(nn.Module):
    """``forward(frames… | x, [flows], [state])`` → ``sr`` or ``(sr, state)``, as the descriptor says."""

    def __init__(self, model: nn.Module, descriptor: Descriptor, io: str = "u8"):
        super().__init__()
        if io not in ("u8", "u16", "f32"):
            raise ValueError(f"unknown io {io!r}")
        self.model, self.d, self.io = model, descriptor, io

    def input_names(self) -> list[str]:
        names = [f"f{i}" for i in range(self.d.frames)] if self.io != "f32" else ["lr"]
        return names + (["flows"] if self.d.flow_channels else []) + (["state"] if self.d.recurrent else [])

    def output_names(self) -> list[str]:
        return ["sr"] + (["state_out"] if self.d.recurrent else [])

    def forward(self, *inputs: torch.Tensor):
        if self.io == "f32":
            x, rest = inputs[0], list(inputs[1:])
        else:
            x, rest = normalise(list(inputs[: self.d.frames]), PEAK[self.io]), list(inputs[self.d.frames :])
        y = self.model(x, *rest)
        y, state = y if self.d.recurrent else (y, None)
        y = y.float()  # under autocast the model's output may be bf16/fp16: quantise in float32
        if self.io != "f32":
            y = quantise(y, PEAK[self.io]).to(DTYPE[self.io])
        return (y, state) if self.d.recurrent else y
