"""ESPCN (Shi et al., 2016): convolutions at low resolution, then sub-pixel (depth-to-space)."""

from __future__ import annotations

import torch
from torch import nn

from vsr.models.common import LumaModel


class ESPCN(LumaModel):
    def __init__(self, *, scale: int, features: tuple[int, int] = (64, 32)):
        super().__init__(scale=scale)
        f1, f2 = features
        self.body = nn.Sequential(
            nn.Conv2d(1, f1, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(f1, f2, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(f2, scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        # Residual over bicubic: same capacity, much faster training than the paper's plain output.
        return self.upsample(y) + self.body(y)
