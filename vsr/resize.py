"""MATLAB-compatible bicubic resizing (``imresize(img, scale, 'bicubic')``).

The super-resolution literature defines its "BI" degradation and its bicubic
baseline with MATLAB's ``imresize``: Keys' cubic kernel with a = -0.5,
antialiasing when downscaling, symmetric border handling. ``imresize`` here
reproduces it (bit-exactly on uint8 images, see the tests), and
:class:`BicubicUpsample` is the same upscaling written as convolutions, so it
runs inside models and exports to ONNX with dynamic shapes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (
        -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2
    ) * ((ax > 1) & (ax <= 2))


def _contributions(in_len: int, out_len: int, scale: float, antialias: bool):
    """Indices (0-based, symmetric borders) and weights, as MATLAB computes them."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    dist = u[:, None] - idx
    if scale < 1 and antialias:
        w = scale * cubic(dist * scale)
    else:
        w = cubic(dist)
    w = w / w.sum(dim=1, keepdim=True)
    # symmetric padding: ... 2 1 | 1 2 3 ... n | n n-1 ...
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    idx = mirror[(idx.long() - 1) % (2 * in_len)]
    keep = (w != 0).any(dim=0)
    return idx[:, keep], w[:, keep]


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool):
    idx, w = _contributions(x.shape[dim], out_len, scale, antialias)
    gathered = x.index_select(dim, idx.flatten().to(x.device))
    shape = list(x.shape)
    shape[dim : dim + 1] = [out_len, idx.shape[1]]
    gathered = gathered.reshape(shape)
    wshape = [1] * len(shape)
    wshape[dim], wshape[dim + 1] = out_len, idx.shape[1]
    return (gathered * w.to(x).reshape(wshape)).sum(dim + 1)


def imresize(
    img: np.ndarray | torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
):
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')``.

    ``img`` is H×W or H×W×C (NumPy, uint8/uint16/float) or a tensor ...×H×W.
    Integer NumPy inputs come back rounded and clipped in their own dtype, as
    MATLAB returns them; float inputs stay float (no clipping).
    ``size`` is (height, width) and overrides ``scale``.
    """
    is_numpy = isinstance(img, np.ndarray)
    if is_numpy:
        dtype = img.dtype
        t = torch.from_numpy(np.array(img, dtype=np.float64))
        hdim, wdim = 0, 1
    else:
        t = img if img.is_floating_point() else img.to(torch.float32)
        hdim, wdim = t.ndim - 2, t.ndim - 1
    h, w = t.shape[hdim], t.shape[wdim]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        sh = sw = float(scale)
    else:
        sh, sw = size[0] / h, size[1] / w
    # MATLAB resizes along the dimension with the smaller scale first.
    order = [(sh, hdim, size[0]), (sw, wdim, size[1])]
    order.sort(key=lambda item: item[0])
    for s, dim, n in order:
        t = _resize_dim(t, dim, n, s, antialias)
    if is_numpy:
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            # float64 throughout, one rounding (half to even) at the end:
            # this reproduces the published BI LR files bit-exactly.
            return torch.round(t).clamp_(info.min, info.max).numpy().astype(dtype)
        return t.numpy().astype(dtype)
    return t


def _phase_filters(scale: int) -> torch.Tensor:
    """scale × 5 filters: output pixel s·j+p = Σ_k f[p,k] · x[j-2+k]."""
    filters = torch.zeros(scale, 5, dtype=torch.float64)
    for p in range(scale):
        offset = (p + 0.5) / scale - 0.5  # position of the output pixel, in input pixels
        for k in range(5):
            filters[p, k] = cubic(torch.tensor(offset - (k - 2), dtype=torch.float64))
    return filters / filters.sum(dim=1, keepdim=True)


class BicubicUpsample(nn.Module):
    """Integer-factor MATLAB bicubic upscaling as two depthwise convolutions.

    Exact to ``imresize(x, scale)`` (symmetric borders) for images at least 2
    pixels on each side; works on any channel count and exports to ONNX with
    dynamic height and width (pad → depthwise conv → pixel shuffle).
    """

    def __init__(self, *, scale: int):
        super().__init__()
        self.scale = scale
        self.register_buffer("filters", _phase_filters(scale).float(), persistent=False)

    @staticmethod
    def _pad_symmetric(x: torch.Tensor, dim: int) -> torch.Tensor:
        n = x.shape[dim]
        head = x.narrow(dim, 0, 2).flip(dim)
        tail = x.narrow(dim, n - 2, 2).flip(dim)
        return torch.cat([head, x, tail], dim)

    def _upsample_w(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.scale
        x = self._pad_symmetric(x, 3).reshape(n * c, 1, h, w + 4)
        weight = self.filters.to(x.dtype).reshape(s, 1, 1, 5)
        y = F.conv2d(x, weight)  # (n*c, s, h, w): phase p of column j
        y = y.permute(0, 2, 3, 1).reshape(n, c, h, w * s)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        y = self._upsample_w(x)
        y = self._upsample_w(y.transpose(2, 3)).transpose(2, 3)
        return y
