"""Building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.resize import BicubicUpsample

# ITU-R BT.601 as MATLAB's rgb2ycbcr defines it (the SR papers' Y channel):
# YCbCr·255 = offset + M · RGB, with RGB in [0, 1].
_M = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=torch.float64,
)
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)
_RGB2YCC = (_M / 255).float()
_YCC2RGB = torch.linalg.inv(_M / 255).float()


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB in [0,1] → YCbCr in [0,1] (MATLAB's rgb2ycbcr, divided by 255)."""
    w = _RGB2YCC.to(x)[:, :, None, None]
    return F.conv2d(x, w, (_OFFSET / 255).to(x))


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    w = _YCC2RGB.to(x)[:, :, None, None]
    return F.conv2d(x - (_OFFSET / 255).to(x)[None, :, None, None], w)


class LumaModel(nn.Module):
    """Base for models that, as in their papers, restore luma only.

    Subclasses implement ``restore_y`` (N×1×h×w → N×1×sh×sw); chroma is
    upscaled bicubically, so the module still takes and returns RGB.
    """

    def __init__(self, *, scale: int):
        super().__init__()
        self.scale = scale
        self.upsample = BicubicUpsample(scale=scale)

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ycc = rgb_to_ycbcr(x)
        y = self.restore_y(ycc[:, :1])
        chroma = self.upsample(ycc[:, 1:])
        return ycbcr_to_rgb(torch.cat([y, chroma], 1))


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (EDSR, no batch norm)."""

    def __init__(self, features: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


def pixel_shuffle_upsampler(features: int, scale: int, out_channels: int | None = None) -> nn.Sequential:
    """Sub-pixel upsampling (conv → depth-to-space): ×2 steps for 2/4, one ×3 step for 3.

    With ``out_channels`` the last step maps straight to the output channels
    (cheaper than upsampling features and convolving at high resolution).
    """
    steps = {1: [], 2: [2], 3: [3], 4: [2, 2]}[scale]
    layers: list[nn.Module] = []
    for i, s in enumerate(steps):
        last = i == len(steps) - 1
        out = out_channels if (last and out_channels is not None) else features
        layers += [nn.Conv2d(features, out * s * s, 3, padding=1), nn.PixelShuffle(s)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
