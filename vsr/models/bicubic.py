"""Bicubic interpolation (MATLAB ``imresize``): the baseline every model must beat."""

from __future__ import annotations

import torch
from torch import nn

from vsr.resize import BicubicUpsample


class Bicubic(nn.Module):
    def __init__(self, *, scale: int):
        super().__init__()
        self.scale = scale
        self.upsample = BicubicUpsample(scale=scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)
