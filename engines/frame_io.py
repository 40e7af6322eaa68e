"""8-bit frames in, 8-bit frame out: the colour-array conversions inside the engine.

The video pipeline's hot path decodes to 8-bit RGB (H×W×3) and encodes from
8-bit RGB. Without this wrapper every frame is converted to float, transposed
and normalised on the host before the model, and clamped, scaled, rounded and
transposed back after it: several full passes over the largest arrays in the
pipeline. ``FrameIO`` moves those steps into the compiled graph, where
OpenVINO/TensorRT fuse them with the first and last layers.

Inputs: ``frames`` tensors of N×H×W×3 uint8 (oldest first); output N×sH×sW×3
uint8, rounded half up and clamped, exactly as the host path quantises.
"""

from __future__ import annotations

import torch
from torch import nn


class FrameIO(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.scale = model.scale
        self.frames = int(getattr(model, "frames", 1))
        self.size_multiple = int(getattr(model, "size_multiple", 1))
        self.arch = getattr(model, "arch", type(model).__name__)
        self.hparams = getattr(model, "hparams", {})

    def forward(self, *frames: torch.Tensor) -> torch.Tensor:
        x = torch.cat([f.permute(0, 3, 1, 2) for f in frames], 1).float() * (1.0 / 255.0)
        y = self.model(x)
        y = torch.floor(torch.clamp(y * 255.0 + 0.5, 0.0, 255.0))  # integral before the cast: no rounding mode
        return y.permute(0, 2, 3, 1).to(torch.uint8)
