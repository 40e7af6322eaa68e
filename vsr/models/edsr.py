"""EDSR (Lim et al., 2017): residual blocks without batch norm; baseline and large configs."""

from __future__ import annotations

import torch
from torch import nn

from vsr.models.common import ResBlock, pixel_shuffle_upsampler

# DIV2K's RGB mean, as EDSR subtracts it.
_MEAN = (0.4488, 0.4371, 0.4040)


class EDSR(nn.Module):
    def __init__(self, *, scale: int, features: int = 64, blocks: int = 16, res_scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Conv2d(3, features, 3, padding=1)
        self.body = nn.Sequential(
            *[ResBlock(features, res_scale) for _ in range(blocks)],
            nn.Conv2d(features, features, 3, padding=1),
        )
        self.upsample = pixel_shuffle_upsampler(features, scale)
        self.tail = nn.Conv2d(features, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x - self.mean)
        h = h + self.body(h)
        return self.tail(self.upsample(h)) + self.mean
