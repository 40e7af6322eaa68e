"""Padding to a model's size multiple and tiled inference with overlap.

Tiles overlap by ``overlap`` LR pixels on each side; each tile's output is
cropped to its core before stitching, so a model whose receptive field fits in
the overlap gives the same result tiled or not, and memory stays bounded by
the tile size whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Model = Callable[[torch.Tensor], torch.Tensor]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of N×C×H×W so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def run_padded(fn: Model, x: torch.Tensor, scale: int, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    y = fn(pad_to_multiple(x, multiple))
    return y[..., : h * scale, : w * scale]


def run_tiled(fn: Model, x: torch.Tensor, scale: int, tile: int = 0, overlap: int = 16, multiple: int = 1,
              on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run ``fn`` on N×C×H×W ``x`` in tiles of ``tile`` LR pixels (0 = whole image).

    Every tile is run with the same window size (tile + 2·overlap, shifted
    inwards at the borders), so compiled engines see one input shape.
    """
    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        out = run_padded(fn, x, scale, multiple)
        if on_tile:
            on_tile(1, 1)
        return out
    m = multiple
    tile = max(tile, m)
    # fixed window, aligned to the model's size multiple (so e.g. space-to-depth grids match the untiled run)
    span = -(-(tile + 2 * overlap + m) // m) * m
    win_h, win_w = min(h, span), min(w, span)
    ys, xs = range(0, h, tile), range(0, w, tile)
    out: torch.Tensor | None = None
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            cy0 = min(max(y0 - overlap, 0), h - win_h)
            cx0 = min(max(x0 - overlap, 0), w - win_w)
            cy0, cx0 = cy0 - cy0 % m, cx0 - cx0 % m
            cy1 = min(max(cy0 + win_h, y1 + overlap), h)  # at the far edge, rounding may need a few more pixels
            cx1 = min(max(cx0 + win_w, x1 + overlap), w)
            patch = run_padded(fn, x[..., cy0:cy1, cx0:cx1], scale, multiple)
            if out is None:
                out = torch.empty((n, patch.shape[1], h * scale, w * scale), dtype=patch.dtype, device=patch.device)
            oy, ox = (y0 - cy0) * scale, (x0 - cx0) * scale
            out[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = patch[
                ..., oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
            done += 1
            if on_tile:
                on_tile(done, total)
    assert out is not None
    return out
