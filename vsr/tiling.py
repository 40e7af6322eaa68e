"""Tiled inference with overlap, for pictures and frames too large to run at once.

Tiles overlap by ``overlap`` LR pixels on each side; each tile's output is cropped to its core before stitching,
so a model whose receptive field fits in the overlap gives the same result tiled or not, and memory stays
bounded by the tile size whatever the image size. Every tile runs at the same window size (tile + 2·overlap,
shifted inwards at the borders, aligned to the model's size multiple), so a compiled engine sees one shape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vsr.windows import Window


def run_tiled(runner, window: Window, tile: int = 0, overlap: int = 16,
              on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Run ``runner`` on ``window`` in tiles of ``tile`` LR pixels (0 = whole frame); returns the sH×sW×3 frame."""
    h, w = window.frames[0].shape[:2]
    s, m = runner.scale, runner.d.size_multiple
    if tile <= 0 or (h <= tile and w <= tile):
        out = runner(window.frames, window.flows, window.reset)
        if on_tile:
            on_tile(1, 1)
        return out
    tile = max(tile, m)
    span = -(-(tile + 2 * overlap + m) // m) * m
    win_h, win_w = min(h, span), min(w, span)
    ys, xs = range(0, h, tile), range(0, w, tile)
    out = np.empty((h * s, w * s, 3), dtype=window.frames[0].dtype)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            cy0 = min(max(y0 - overlap, 0), h - win_h)
            cx0 = min(max(x0 - overlap, 0), w - win_w)
            cy0, cx0 = cy0 - cy0 % m, cx0 - cx0 % m
            cy1 = min(max(cy0 + win_h, y1 + overlap), h)  # at the far edge, rounding may need a few more pixels
            cx1 = min(max(cx0 + win_w, x1 + overlap), w)
            frames = [f[cy0:cy1, cx0:cx1] for f in window.frames]
            flows = None if window.flows is None else window.flows[:, cy0:cy1, cx0:cx1]
            patch = runner(frames, flows, True)  # each tile is a still of its own: no state crosses tiles
            oy, ox = (y0 - cy0) * s, (x0 - cx0) * s
            out[y0 * s : y1 * s, x0 * s : x1 * s] = patch[oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s]
            done += 1
            if on_tile:
                on_tile(done, total)
    return out
