"""RRDB (Wang et al., 2018): ESRGAN's Residual-in-Residual Dense Block generator.

ISR's RRDN belongs to the same family. Upsampling is nearest-neighbour + conv,
as in ESRGAN (×2 steps for 2 and 4, one ×3 step for 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _DenseBlock(nn.Module):
    def __init__(self, features: int, growth: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(features + i * growth, growth if i < 4 else features, 3, padding=1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(self.act(out))
        return x + out * 0.2


class _RRDB(nn.Module):
    def __init__(self, features: int, growth: int):
        super().__init__()
        self.blocks = nn.Sequential(*[_DenseBlock(features, growth) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x) * 0.2


class RRDBNet(nn.Module):
    def __init__(self, *, scale: int, features: int = 64, blocks: int = 23, growth: int = 32):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, features, 3, padding=1)
        self.body = nn.Sequential(*[_RRDB(features, growth) for _ in range(blocks)])
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)
        self.steps = {2: [2], 3: [3], 4: [2, 2]}[scale]
        self.up_convs = nn.ModuleList(nn.Conv2d(features, features, 3, padding=1) for _ in self.steps)
        self.hr_conv = nn.Conv2d(features, features, 3, padding=1)
        self.tail = nn.Conv2d(features, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body_conv(self.body(h))
        for s, conv in zip(self.steps, self.up_convs):
            h = self.act(conv(F.interpolate(h, scale_factor=float(s), mode="nearest")))
        return self.tail(self.act(self.hr_conv(h)))
