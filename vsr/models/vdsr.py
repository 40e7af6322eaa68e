"""VDSR (Kim et al., 2016): a deep plain network learning the residual over bicubic luma."""

from __future__ import annotations

import torch
from torch import nn

from vsr.models.common import LumaModel


class VDSR(LumaModel):
    def __init__(self, *, scale: int, depth: int = 20, features: int = 64):
        super().__init__(scale=scale)
        layers: list[nn.Module] = [nn.Conv2d(1, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        up = self.upsample(y)
        return up + self.body(up)
