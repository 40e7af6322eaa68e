"""Temporal stability for models that see one frame at a time: each output is blended with the previous output,
moved onto it by the motion between the two low-resolution frames, where that motion can be trusted.

A per-frame model (a single-image network, a community file) redraws fine detail a little differently in every frame,
and a video made of its frames shimmers. The stage after the model keeps what the picture already showed:

    out_t = w · warp(out_{t−1}) + (1 − w) · sr_t

The flow comes from DIS on the LR frames (vsr.flow, computed by the reader thread beside the window), scaled up to
the output. The weight ``w`` is a small learned function (below ``strength``) of what the stage can measure at each
pixel: how well the LR frame t−1 moved by the flow matches frame t (and the reverse flow agrees: occlusions), the LR
frame's texture and motion, and how far the model's new frame and the moved previous output disagree, pixel by pixel
and over each LR pixel's block. It falls where the motion is not to be trusted or something new came into view, and
is highest on texture the model redraws differently in every frame. ``benchmarks/temporal.py fit`` fits it to the
truth on training clips (least squares of the blended output, each frame's error relative to its own, as the mean
PSNR weighs it). At a scene cut, or the first frame, it is 0. Memory holds one output frame; a frame's result needs
nothing after it.

A recursive blend forgets its start at the rate ``strength`` per frame (less where ``w`` is lower): a segment of a
long job starts it ``warmup`` frames early, so its first frame matches a run from the start within rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vsr.flow import Dis, dis_flow, warp_back

MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Temporal:
    """The stage's settings (the defaults are what ships; benchmarks/temporal.py measures them)."""

    strength: float = 0.6  # the most the previous output may weigh (what a segment's warm-up must forget)
    sigma: float = 8.0  # the unit of LR warp error (8-bit levels of luma)
    consistency: float = 1.0  # the unit of forward-backward flow mismatch (LR pixels: an occlusion); 0: not measured
    # the weight: strength · sigmoid(θ · log(1 + x²) + bias) over the LR measures, times (1 + (d/16)²)^θ_d for the
    # output difference d at each output pixel; θ (MEASURES + bias) for each scale ``benchmarks/temporal.py fit``
    # fitted it at (a scale between takes the one below: it blends less)
    theta: tuple[tuple[int, tuple[float, ...]], ...] = ((2, (-0.451, 0.72, -0.236, 0.0, -0.503, -1.157)),
                                                         (4, (-0.616, 1.036, -0.377, -0.028, -0.867, -0.268)))
    # DIS at the LR frames' own pixels: the precise setting (Dis is frozen, so one shared default is right)
    dis: Dis = Dis(finest_scale=0, refine=0)  # noqa: RUF009
    # the reverse flow only finds occlusions, where the two flows disagree: searched down to half size (a third of
    # the time)
    check: Dis = Dis(finest_scale=1, refine=0)  # noqa: RUF009
    warmup: int = 16  # frames a segment starts early (strength^16 < 0.03 %)


@dataclass
class Motion:
    """What the reader thread measures between LR frames t−1 and t for the stage: the flow from t to t−1 (LR pixels,
    H×W×2) and the weight's LR measures (the first three of MEASURES, as log(1 + x²), 3×H×W)."""

    flow: np.ndarray
    measures: np.ndarray


# what the weight sees, each as log(1 + x²): x is the LR warp error and flow mismatch (units of sigma and
# consistency, squared and summed, over 3×3), the LR texture (gradient length / 64, over 3×3), the LR motion
# (pixels / 2), the output difference (luma levels / 16) and its mean over each LR pixel's block
MEASURES = ("LR error", "LR texture", "LR motion", "output difference", "its block mean")


def motion(prev_luma: np.ndarray, luma: np.ndarray, settings: Temporal) -> Motion:
    """The flow from t to t−1 and the weight's LR measures (a pixel whose match is ``sigma`` levels off, or whose flow
    and the reverse flow disagree by ``consistency`` pixels — an occlusion — has an error of 1)."""
    import cv2

    g = luma.astype(np.float32)
    flow = dis_flow(luma, prev_luma, settings.dis)
    error = np.square(np.abs(warp_back(prev_luma, flow) - g) / settings.sigma)
    if settings.consistency:
        back = dis_flow(prev_luma, luma, settings.check)
        there = warp_back(back, flow)  # the reverse flow where each pixel's flow lands
        error += np.square(np.hypot(*(flow + there).transpose(2, 0, 1)) / settings.consistency)
    error = cv2.blur(error, (3, 3))  # (a pixel's neighbourhood: one noisy pixel is not a failed match)
    texture = cv2.blur(cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)), (3, 3)) / 64
    speed = cv2.magnitude(flow[..., 0], flow[..., 1]) / 2
    return Motion(flow, np.log1p(np.square(np.stack([error, texture, speed]))))


def coefficients(settings: Temporal, scale: int) -> tuple[float, ...]:
    """θ for ``scale``: the one fitted at it, else at the nearest scale below (or the lowest)."""
    fitted = dict(settings.theta)
    below = [s for s in fitted if s <= scale]
    return fitted[max(below) if below else min(fitted)]


def _feature(levels: np.ndarray) -> np.ndarray:
    """log(1 + (d/16)²) of a luma difference in 8-bit levels: the output difference's measure."""
    return np.log1p(np.square(levels / 16.0)).astype(np.float32)


class Stabiliser:
    """The stage for one stream of frames (its state: the previous output)."""

    def __init__(self, scale: int, settings: Temporal | None = None):
        self.scale, self.s = scale, settings or Temporal()
        self.theta = coefficients(self.s, scale)
        self.prev: np.ndarray | None = None
        self._lut: tuple[np.ndarray, np.ndarray] | None = None

    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The output difference's terms as tables over its 8-bit levels: the factor at each output pixel
        ((1 + (d/16)²)^θ_d, at most 1) and the block mean's term in the logit."""
        if self._lut is None:
            f = _feature(np.arange(256))
            self._lut = (np.exp(np.float32(min(self.theta[3], 0.0)) * f), np.float32(self.theta[4]) * f)
        return self._lut

    def differences(self, cur: np.ndarray, moved: np.ndarray, lr_size: tuple[int, int]):
        """|luma(cur) − luma(moved)| in 8-bit levels at each output pixel, and its mean over each LR pixel's block
        (uint8; luma as RGB→grey: 0.299, 0.587, 0.114)."""
        import cv2

        diff = cv2.absdiff(cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY), cv2.cvtColor(moved, cv2.COLOR_RGB2GRAY))
        if diff.dtype != np.uint8:  # deeper frames: their difference in 8-bit levels, as the tables are
            diff = cv2.convertScaleAbs(diff, alpha=255.0 / 65535.0)
        return diff, cv2.resize(diff, lr_size, interpolation=cv2.INTER_AREA)

    def weight(self, cur: np.ndarray, moved: np.ndarray, m: Motion) -> np.ndarray:
        """w at each output pixel: the logistic part at LR (cheap), scaled up, times the output difference's factor."""
        import cv2

        factor, term = self._tables()
        diff, block = self.differences(cur, moved, m.flow.shape[1::-1])
        th = self.theta
        logit = np.tensordot(np.float32(th[:3]), m.measures, 1) + cv2.LUT(block, term) + np.float32(th[5])
        low = np.float32(self.s.strength) / (1.0 + np.exp(-logit))
        return cv2.multiply(cv2.resize(low, cur.shape[1::-1], interpolation=cv2.INTER_LINEAR), cv2.LUT(diff, factor))

    def step(self, sr: np.ndarray, m: Motion | None, reset: bool) -> np.ndarray:
        """``sr``: the model's frame t (sH×sW×3, uint8 or uint16); ``m``: the motion from LR frame t to t−1 (None
        or ``reset`` at the first frame and after a cut). Returns the stabilised frame, same size and dtype."""
        import cv2

        # 8-bit frames are blended as they are (OpenCV rounds); deeper ones in float, as OpenCV blends no 16-bit
        cur = sr if sr.dtype == np.uint8 else sr.astype(np.float32)
        if reset or m is None or self.prev is None or self.prev.shape != cur.shape:
            self.prev = cur
            return sr
        h, w = cur.shape[:2]
        flow = cv2.resize(m.flow * np.float32(self.scale), (w, h), interpolation=cv2.INTER_LINEAR)
        moved = cv2.remap(self.prev, flow, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
        weight = self.weight(cur, moved, m)
        out = cv2.blendLinear(moved, cur, weight, 1.0 - weight)
        self.prev = out
        return out if sr.dtype == np.uint8 else np.clip(np.rint(out), 0, 65535).astype(sr.dtype)
