"""SRResNet (Ledig et al., 2017): the SRGAN generator, residual blocks with batch norm."""

from __future__ import annotations

import torch
from torch import nn


class _BNResBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            nn.BatchNorm2d(features),
            nn.PReLU(features),
            nn.Conv2d(features, features, 3, padding=1),
            nn.BatchNorm2d(features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, *, scale: int, features: int = 64, blocks: int = 16):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, features, 9, padding=4), nn.PReLU(features))
        self.body = nn.Sequential(
            *[_BNResBlock(features) for _ in range(blocks)],
            nn.Conv2d(features, features, 3, padding=1),
            nn.BatchNorm2d(features),
        )
        steps = {2: [2], 3: [3], 4: [2, 2]}[scale]
        up: list[nn.Module] = []
        for s in steps:
            up += [nn.Conv2d(features, features * s * s, 3, padding=1), nn.PixelShuffle(s), nn.PReLU(features)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(features, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        return self.tail(self.upsample(h))
