"""Temporal stability for models that see one frame at a time: each output is blended with the previous output,
moved onto it by the motion between the two low-resolution frames, where that motion can be trusted.

A per-frame model (a single-image network, a community file) redraws fine detail a little differently in every frame,
and a video made of its frames shimmers. The stage after the model keeps what the picture already showed:

    out_t = w · warp(out_{t−1}) + (1 − w) · sr_t

The flow comes from DIS on the LR frames (vsr.flow, computed by the reader thread beside the window), scaled up to
the output. The weight ``w`` is at most ``strength`` and falls where the motion is not to be trusted: where the LR
frame t−1 moved by the flow does not match frame t (occlusions, fast or non-rigid motion, lighting), and where the
model's new frame and the moved previous output disagree by more than a flicker does (something new came into view).
At a scene cut, or the first frame, it is 0. Memory holds one output frame; a frame's result needs nothing after it.

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

    strength: float = 0.6  # the most the previous output may weigh
    sigma: float = 8.0  # LR warp error (8-bit levels of luma) at which trust has fallen to 1/e
    tau: float = 16.0  # output difference (levels of luma) at which trust has fallen to 1/e; 0: not used
    consistency: float = 1.0  # forward-backward flow mismatch (LR pixels: an occlusion) where trust is 1/e; 0: off
    # DIS at the LR frames' own pixels: the precise setting (Dis is frozen, so one shared default is right)
    dis: Dis = Dis(finest_scale=0, refine=0)  # noqa: RUF009
    # the reverse flow only finds occlusions, where the two flows disagree: searched down to half size (a third of
    # the time)
    check: Dis = Dis(finest_scale=1, refine=0)  # noqa: RUF009
    warmup: int = 16  # frames a segment starts early (strength^16 < 0.03 %)


@dataclass
class Motion:
    """What the reader thread measures between LR frames t−1 and t for the stage: the flow from t to t−1 (LR pixels,
    H×W×2) and how well it explains frame t (|t − warp(t−1)|, luma levels, H×W)."""

    flow: np.ndarray
    error: np.ndarray


def motion(prev_luma: np.ndarray, luma: np.ndarray, settings: Temporal) -> Motion:
    """The flow from t to t−1 and its error, in units of ``sigma`` (a pixel whose match is ``sigma`` levels off, or
    whose flow and the reverse flow disagree by ``consistency`` pixels — an occlusion — scores 1)."""
    import cv2

    flow = dis_flow(luma, prev_luma, settings.dis)
    error = np.square(np.abs(warp_back(prev_luma, flow) - luma.astype(np.float32)) / settings.sigma)
    if settings.consistency:
        back = dis_flow(prev_luma, luma, settings.check)
        there = warp_back(back, flow)  # the reverse flow where each pixel's flow lands
        error += np.square(np.hypot(*(flow + there).transpose(2, 0, 1)) / settings.consistency)
    return Motion(flow, cv2.blur(error, (3, 3)))  # (a pixel's neighbourhood: one noisy pixel is not a failed match)


class Stabiliser:
    """The stage for one stream of frames (its state: the previous output)."""

    def __init__(self, scale: int, settings: Temporal | None = None):
        self.scale, self.s = scale, settings or Temporal()
        self.prev: np.ndarray | None = None
        self._lut: np.ndarray | None = None

    def _trust(self) -> np.ndarray:
        """exp(−(d/τ)²) for each 8-bit difference d, as a table (a lookup per pixel, not an exp)."""
        if self._lut is None:
            self._lut = np.exp(-np.square(np.arange(256, dtype=np.float32) / self.s.tau))
        return self._lut

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
        weight = cv2.resize(self.s.strength * np.exp(-m.error), (w, h), interpolation=cv2.INTER_LINEAR)
        if self.s.tau:  # (luma as RGB→grey: 0.299, 0.587, 0.114)
            diff = cv2.absdiff(cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY), cv2.cvtColor(moved, cv2.COLOR_RGB2GRAY))
            if diff.dtype != np.uint8:  # deeper frames: their difference in 8-bit levels, as the trust is
                diff = cv2.convertScaleAbs(diff, alpha=255.0 / 65535.0)
            weight = cv2.multiply(weight, cv2.LUT(diff, self._trust()))
        out = cv2.blendLinear(moved, cur, weight, 1.0 - weight)
        self.prev = out
        return out if sr.dtype == np.uint8 else np.clip(np.rint(out), 0, 65535).astype(sr.dtype)
