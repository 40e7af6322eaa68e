"""Degradations other than BI: BD (Gaussian blur, then subsampling) and a realistic chain.

BD is the video SR literature's second benchmark degradation: a fixed Gaussian blur
(σ = 1.6 HR pixels) and every ``scale``-th pixel, with no anti-aliasing filter, so
more of the detail above the LR Nyquist frequency survives as aliasing — the detail
that neighbouring frames, sampled at other sub-pixel phases, can resolve.

The realistic chain ("real-world" models) is a Real-ESRGAN-like second-order chain.

Each order: blur (isotropic or anisotropic Gaussian) → downscale (random
kernel: area, bilinear, bicubic) → noise (Gaussian or Poisson, colour or
grey) → compression (JPEG, or H.264/HEVC through PyAV for video windows).
The second order repeats it more gently; a final resize lands exactly on the
LR size. All frames of a window share one set of parameters (so the model
learns temporally consistent restoration), and everything is drawn from the
caller's Generator, so a run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vsr.resize import imresize


@dataclass
class Order:
    blur_sigma: tuple[float, float]
    resize: tuple[float, float]
    noise: tuple[float, float]
    jpeg: tuple[int, int]


FIRST = Order(blur_sigma=(0.2, 3.0), resize=(0.15, 1.5), noise=(1.0, 30.0), jpeg=(30, 95))
SECOND = Order(blur_sigma=(0.2, 1.5), resize=(0.3, 1.2), noise=(1.0, 25.0), jpeg=(30, 95))


def _kernel(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    size = int(rng.choice([7, 9, 11, 13, 15, 17, 19, 21]))
    sx, sy = rng.uniform(lo, hi), rng.uniform(lo, hi)
    if rng.random() < 0.5:
        sy = sx  # isotropic
    theta = rng.uniform(0, math.pi)
    ax = np.arange(size) - size // 2
    xx, yy = np.meshgrid(ax, ax)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return (k / k.sum()).astype(np.float32)


def _resize(frames: np.ndarray, h: int, w: int, mode: int) -> np.ndarray:
    return np.stack([cv2.resize(f, (w, h), interpolation=mode) for f in frames])


def _noise(frames: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    if rng.random() < 0.5:
        sigma = rng.uniform(lo, hi) / 255.0
        grey = rng.random() < 0.4
        shape = frames.shape[:-1] + (1,) if grey else frames.shape
        return frames + rng.normal(0, sigma, shape).astype(np.float32)
    scale = 10 ** rng.uniform(2.0, 3.5)  # Poisson: photon counts
    return rng.poisson(np.clip(frames, 0, 1) * scale).astype(np.float32) / scale


def _jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for f in frames:
        u8 = np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255)
    return np.stack(out)


def _video_codec(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Compress a window as a tiny H.264 or HEVC clip and decode it back."""
    from vsr.video.recompress import recompress

    codec = "libx264" if rng.random() < 0.7 else "libx265"
    crf = int(rng.integers(20, 38))
    u8 = [np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8) for f in frames]
    return np.stack(recompress(u8, codec=codec, crf=crf, preset="ultrafast")).astype(np.float32) / 255


class BlurDown:
    """BD: HR (…×H×W×3 uint8, a window or one image) → LR (…×H/s×W/s×3 uint8)."""

    def __init__(self, scale: int, sigma: float = 1.6):
        self.scale, self.sigma = scale, sigma

    def __call__(self, hr: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        s, o = self.scale, self.scale // 2  # sample each s×s block at (about) its centre
        size = 2 * math.ceil(3 * self.sigma) + 1
        frames = hr.reshape((-1,) + hr.shape[-3:])
        out = [cv2.GaussianBlur(f, (size, size), self.sigma, borderType=cv2.BORDER_REFLECT)[o::s, o::s] for f in frames]
        return np.stack(out).reshape(hr.shape[:-3] + out[0].shape)


class RealisticDegradation:
    """HR window (T×H×W×3 uint8) → LR window (T×H/s×W/s×3 uint8)."""

    def __init__(self, scale: int, video_codec_prob: float = 0.3):
        self.scale = scale
        self.video_codec_prob = video_codec_prob

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t, h, w, _ = hr.shape
        lh, lw = h // self.scale, w // self.scale
        x = hr.astype(np.float32) / 255
        cur_h, cur_w = h, w
        for order in (FIRST, SECOND):
            k = _kernel(rng, *order.blur_sigma)
            x = np.stack([cv2.filter2D(f, -1, k, borderType=cv2.BORDER_REFLECT) for f in x])
            factor = rng.uniform(*order.resize)  # relative to the current size
            cur_h, cur_w = max(8, round(cur_h * factor)), max(8, round(cur_w * factor))
            x = _resize(x, cur_h, cur_w, int(rng.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC])))
            x = np.clip(_noise(x, rng, *order.noise), 0, 1)
            if t > 1 and rng.random() < self.video_codec_prob:
                x = _video_codec(x, rng)
            else:
                x = _jpeg(x, int(rng.integers(*order.jpeg)))
        x = np.stack([imresize(f, size=(lh, lw)) for f in x])
        return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
