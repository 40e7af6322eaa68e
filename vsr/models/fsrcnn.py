"""FSRCNN (Dong et al., 2016): shrink → map → expand at low resolution, transposed-conv upsampling."""

from __future__ import annotations

import torch
from torch import nn

from vsr.models.common import LumaModel


class FSRCNN(LumaModel):
    def __init__(self, *, scale: int, d: int = 56, s: int = 12, m: int = 4):
        super().__init__(scale=scale)
        layers: list[nn.Module] = [nn.Conv2d(1, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # kernel 9, output exactly scale× the input: padding 4, output_padding scale-1
        self.deconv = nn.ConvTranspose2d(d, 1, 9, stride=scale, padding=4, output_padding=scale - 1)

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(y))
