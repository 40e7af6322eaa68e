"""SRCNN (Dong et al., 2014): three convolutions on the bicubic-upscaled luma."""

from __future__ import annotations

import torch
from torch import nn

from vsr.models.common import LumaModel


class SRCNN(LumaModel):
    def __init__(self, *, scale: int, features: tuple[int, int] = (64, 32), kernels: tuple[int, int, int] = (9, 5, 5)):
        super().__init__(scale=scale)
        f1, f2 = features
        k1, k2, k3 = kernels
        self.body = nn.Sequential(
            nn.Conv2d(1, f1, k1, padding=k1 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f1, f2, k2, padding=k2 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f2, 1, k3, padding=k3 // 2),
        )

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        return self.body(self.upsample(y))
