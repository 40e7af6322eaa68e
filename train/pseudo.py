"""Pseudo-video: still images filmed by a moving camera (pan, zoom, rotation, an open shutter's blur), so video
models see large, exactly known motion over textures no real clip has."""

from __future__ import annotations

import math

import numpy as np

from train.store import DataError


def _line_kernel(path: np.ndarray) -> np.ndarray:
    """A normalised blur kernel: the segment from -path/2 to +path/2 (HR pixels, x and y), sampled every
    1/4 px and splatted bilinearly, so lengths and directions below a pixel still count."""
    half = int(math.ceil(np.abs(path).max() / 2)) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    n = max(2, int(math.ceil(np.abs(path).max() * 4)) + 1)
    for f in np.linspace(-0.5, 0.5, n):
        x, y = half + f * path[0], half + f * path[1]
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        ax, ay = x - x0, y - y0
        k[y0, x0] += (1 - ax) * (1 - ay)
        k[y0, x0 + 1] += ax * (1 - ay)
        k[y0 + 1, x0] += (1 - ax) * ay
        k[y0 + 1, x0 + 1] += ax * ay
    return k / k.sum()


def camera_motion(hr: np.ndarray, frames: int, out: int, rng: np.random.Generator, max_shift: float,
                  *, exposure: float = 0.0) -> np.ndarray:
    """A pseudo-video: ``frames`` views of a still image along a smooth random camera path.

    The camera pans (up to ``max_shift`` HR pixels per frame), zooms (±1.5 %/frame)
    and rotates (±0.5°/frame) about the centre of a random ``out``×``out`` crop.
    With ``exposure`` e > 0 the shutter is open for that share of the frame interval: each view is blurred along
    the camera's pan over [t - e/2, t + e/2], as in real footage (the target frame too: it is the frame the camera
    took). The motion returned is that of the exposures' middles.
    """
    import cv2

    h, w = hr.shape[:2]
    half = frames // 2
    margin = int(math.ceil(max_shift * half * 1.1 + out * 0.03)) + 2
    side = out + 2 * margin
    if h < side or w < side:
        raise DataError("image too small for pseudo-video")
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    region = np.ascontiguousarray(hr[y0 : y0 + side, x0 : x0 + side])
    # speeds spread from still to fast: |v| = max_shift · u², in a random direction
    angle = rng.uniform(0, 2 * math.pi)
    velocity = max_shift * rng.random() ** 2 * np.array([math.cos(angle), math.sin(angle)])
    accel = rng.uniform(-0.1, 0.1, size=2) * abs(velocity).max()
    zoom = rng.uniform(-0.015, 0.015)
    rot = rng.uniform(-0.5, 0.5)
    offset = rng.uniform(0, 1, size=2)  # sub-pixel: every frame, the centre too, is resampled alike
    c = side / 2.0
    views = []
    for k in range(frames):
        j = k - frames // 2
        m = cv2.getRotationMatrix2D((c, c), rot * j, 1.0 + zoom * j)
        m[:, 2] += velocity * j + 0.5 * accel * j * j + offset - margin  # pan, and show the region's centre
        # an open shutter: the pan during the exposure as a line kernel (zoom and rotation move too little to
        # matter), applied to a view rendered with a border as wide as the kernel, so its edges blur real content
        kernel = _line_kernel((velocity + accel * j) * exposure) if exposure > 0 else None
        b = 0 if kernel is None else kernel.shape[0] // 2
        view = cv2.warpAffine(region, m + np.array([[0, 0, b], [0, 0, b]]), (out + 2 * b, out + 2 * b),
                              flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
        views.append(view if kernel is None else cv2.filter2D(view, -1, kernel)[b : b + out, b : b + out])
    return np.stack(views)
