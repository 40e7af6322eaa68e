"""The realistic degradation, for the models of real footage (``data.degradation = "realistic"``; the default is
BI, MATLAB's bicubic, made in train/store.py).

The chain follows Real-ESRGAN's two rounds and RealBasicVSR's codec step. Each round: blur (isotropic or
anisotropic Gaussian) → resize (area, bilinear or bicubic, up or down) → noise (Gaussian or Poisson, colour or
grey) → JPEG; the second round is gentler and drawn for a share of the clips; a final resize lands on the LR size;
then the whole LR clip goes through H.264 or HEVC at a random CRF and preset (PyAV), so artefacts move as a codec's
do. A share of clips is plain BI before the codec (how ``vsr eval --crf`` makes LR), and the codec itself can be
skipped, so clean input stays in the training mix. All frames of a clip share one set of parameters, and
everything is drawn from the caller's Generator: a run is reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from train.config import DegradeConfig
from vsr.resize import imresize
from vsr.video.colour import from_unit, to_unit


@dataclass(frozen=True)
class Round:
    blur_sigma: tuple[float, float]  # HR pixels (first round) / current pixels (second)
    resize: tuple[float, float]  # factor on the current size
    noise: tuple[float, float]  # Gaussian σ in 8-bit levels
    jpeg: tuple[int, int]  # quality


FIRST = Round(blur_sigma=(0.2, 3.0), resize=(0.15, 1.5), noise=(1.0, 30.0), jpeg=(30, 95))
SECOND = Round(blur_sigma=(0.2, 1.5), resize=(0.3, 1.2), noise=(1.0, 25.0), jpeg=(30, 95))
PRESETS = ("ultrafast", "veryfast", "medium")  # ultrafast has no deblocking filter: blockier


def blur(frames: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
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
    k = (k / k.sum()).astype(np.float32)
    return np.stack([cv2.filter2D(f, -1, k, borderType=cv2.BORDER_REFLECT) for f in frames])


def resize(frames: np.ndarray, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    mode = int(rng.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC]))
    return np.stack([cv2.resize(f, (w, h), interpolation=mode) for f in frames])


def noise(frames: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """Gaussian (colour, or the same in every channel: grey) or Poisson (photon counts); one draw per clip."""
    grey = rng.random() < 0.4
    if rng.random() < 0.5:
        sigma = rng.uniform(lo, hi) / 255.0
        shape = frames.shape[:-1] + (1,) if grey else frames.shape
        out = frames + rng.normal(0, sigma, shape).astype(np.float32)
    else:
        scale = 10 ** rng.uniform(2.0, 3.5)
        x = np.clip(frames, 0, 1)
        if grey:  # shot noise of the luma, added to every channel
            y = x.mean(-1, keepdims=True)
            out = x + rng.poisson(y * scale).astype(np.float32) / scale - y
        else:
            out = rng.poisson(x * scale).astype(np.float32) / scale
    return np.clip(out, 0, 1)


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for f in frames:
        ok, buf = cv2.imencode(".jpg", from_unit(f)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(to_unit(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]))
    return np.stack(out)


def codec(frames: np.ndarray, rng: np.random.Generator, crf: tuple[int, int], hevc: float) -> np.ndarray:
    """The whole clip as one H.264 or HEVC stream and back (motion-compensated artefacts, not per-frame)."""
    from vsr.video.recompress import recompress

    name = "libx265" if rng.random() < hevc else "libx264"
    q = int(rng.integers(crf[0], crf[1] + 1))
    preset = str(rng.choice(PRESETS))
    return to_unit(np.stack(recompress([from_unit(f) for f in frames], codec=name, crf=q, preset=preset)))


class RealisticDegradation:
    """HR clip (T×H×W×3 uint8) → LR clip (T×H/s×W/s×3 uint8), with the shares and ranges of ``[degrade]``."""

    def __init__(self, scale: int, settings: DegradeConfig | None = None):
        self.scale = scale
        self.s = settings or DegradeConfig()

    def steps(self, hr: np.ndarray, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
        """Every intermediate clip, named (float32 in [0, 1]; sizes vary until the final resize)."""
        t, h, w, _ = hr.shape
        lh, lw = h // self.scale, w // self.scale
        x = to_unit(hr)
        out: list[tuple[str, np.ndarray]] = []
        if rng.random() < self.s.plain:
            out.append(("bicubic", np.stack([imresize(f, size=(lh, lw)) for f in x])))
        else:
            cur_h, cur_w = h, w
            for i, r in enumerate((FIRST, SECOND)):
                if i and rng.random() >= self.s.second_round:
                    break
                n = f" {i + 1}"
                if rng.random() < self.s.blur:
                    x = blur(x, rng, *r.blur_sigma)
                    out.append(("blur" + n, x))
                f = rng.uniform(*r.resize)
                cur_h, cur_w = max(8, round(cur_h * f)), max(8, round(cur_w * f))
                x = resize(x, rng, cur_h, cur_w)
                out.append(("resize" + n, x))
                if rng.random() < self.s.noise:
                    x = noise(x, rng, *r.noise)
                    out.append(("noise" + n, x))
                if rng.random() < self.s.jpeg:
                    x = jpeg(x, int(rng.integers(r.jpeg[0], r.jpeg[1] + 1)))
                    out.append(("jpeg" + n, x))
            out.append(("to LR size", np.stack([imresize(f, size=(lh, lw)) for f in x])))
        if rng.random() < self.s.codec:
            x = out[-1][1]
            out.append(("codec", codec(x, rng, self.s.crf, self.s.hevc) if t > 1 else jpeg(x, int(rng.integers(30, 96)))))
        return out

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return from_unit(self.steps(hr, rng)[-1][1])
