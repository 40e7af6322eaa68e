"""Upscaling one picture: colour through the model (tiled), alpha bicubically, depth kept."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from vsr.images import Picture
from vsr.tiling import run_tiled

DEFAULT_TILE = 384  # LR pixels; bounds memory (a 4K output stays well under 2 GB)
DEFAULT_OVERLAP = 16


def upscale_picture(pic: Picture, runner, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                    on_tile: Callable[[int, int], None] | None = None) -> Picture:
    scale, frames = runner.scale, runner.frames
    peak = 65535.0 if pic.bits == 16 else 255.0
    x = torch.from_numpy(pic.color).permute(2, 0, 1)[None].float().div_(peak)
    if pic.gray:
        x = x.expand(-1, 3, -1, -1)
    if frames > 1:  # a still image is a video that does not move
        x = x.repeat(1, frames, 1, 1)
    y = run_tiled(runner, x, scale, tile=tile, overlap=overlap, multiple=runner.size_multiple, on_tile=on_tile)
    y = y[0].clamp_(0, 1)
    if pic.gray:
        y = y.mean(0, keepdim=True)
    color = _quantise(y.permute(1, 2, 0).numpy(), pic.color.dtype, peak)
    alpha = None
    if pic.alpha is not None:
        import cv2

        h, w = pic.alpha.shape
        a = cv2.resize(pic.alpha.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
        alpha = np.clip(np.round(a), 0, peak).astype(pic.alpha.dtype)
    return Picture(color=color, alpha=alpha, icc=pic.icc, exif=pic.exif)


def _quantise(a: np.ndarray, dtype, peak: float) -> np.ndarray:
    return np.clip(np.round(a * peak), 0, peak).astype(dtype)
