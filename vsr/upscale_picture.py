"""Upscaling one picture: colour through the model (tiled), alpha bicubically, bit depth and grayscale kept."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vsr.picture import Picture
from vsr.tiling import run_tiled
from vsr.windows import still

DEFAULT_TILE = 384  # LR pixels; bounds memory (a 4K output stays well under 2 GB)
DEFAULT_OVERLAP = 16


def upscale_picture(pic: Picture, runner, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                    on_tile: Callable[[int, int], None] | None = None) -> Picture:
    scale = runner.scale
    rgb = np.repeat(pic.color, 3, axis=2) if pic.gray else pic.color
    window = still(rgb, runner.model)
    out = run_tiled(runner, window, tile=tile, overlap=overlap, on_tile=on_tile)
    if pic.gray:  # the model saw three equal channels; their mean is the gray output
        peak = 65535 if out.dtype == np.uint16 else 255
        out = np.clip(np.round(out.astype(np.float32).mean(axis=2, keepdims=True)), 0, peak).astype(out.dtype)
    alpha = upscale_alpha(pic.alpha, scale)
    return Picture(color=out, alpha=alpha, icc=pic.icc, exif=pic.exif)


def upscale_alpha(alpha: np.ndarray | None, scale: int) -> np.ndarray | None:
    """Alpha is not colour: it is upscaled bicubically (OpenCV), kept in its depth."""
    if alpha is None:
        return None
    import cv2

    h, w = alpha.shape
    peak = 65535 if alpha.dtype == np.uint16 else 255
    a = cv2.resize(alpha.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.round(a), 0, peak).astype(alpha.dtype)
