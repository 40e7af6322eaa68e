"""Optical flow computed outside the network (OpenCV's DIS on the LR frames), and scene cuts.

Models with ``flow_channels`` (:mod:`vsr.models.window`) take their neighbours' flows as an input instead of
estimating them: DIS on the LR frames is far more precise than a small learned aligner on camera motion
(docs/notes/experiments.md, "A precise flow and a fusion"). Training, evaluation and the pipeline all compute it
here, so the flow a model meets in use is the flow it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FLOW_CHANNELS = 4  # (dx, dy) to t-1, then to t+1, in LR pixels
FINEST_SCALE = 2  # OpenCV's FAST preset: the flow is found at 1/4 of the frame's size and upsampled
REFINE = 5  # the FAST preset's variational refinement iterations


@dataclass(frozen=True)
class Dis:
    """How DIS is run for a model (stored with its weights as ``dis_finest_scale`` and ``dis_refine``): the
    finest pyramid level searched (0: the frame's own pixels) and the variational refinement iterations after it.
    The FAST preset (2, 5) is the default; (0, 0) aligns far more precisely at about 3× its time
    (docs/notes/experiments.md, "A recurrent state")."""

    finest_scale: int = FINEST_SCALE
    refine: int = REFINE

    @classmethod
    def of(cls, model) -> Dis:
        return cls(int(getattr(model, "dis_finest_scale", FINEST_SCALE)), int(getattr(model, "dis_refine", REFINE)))


FAST = Dis()

CUT_NCC, CUT_NCC_HIGH, CUT_ERR = 0.65, 0.8, 20.0  # scene cuts: see is_cut
_LUMA = np.array((0.299, 0.587, 0.114), np.float32)


def _y8(rgb: np.ndarray, axis: int) -> np.ndarray:
    """Float32 RGB in [0, 1] (channels on ``axis``) → uint8 luma, rounded half to even. NumPy, not torch: this
    runs beside the engine on the decode thread, where torch's thread pool waited for the cores the engine held
    (docs/notes/experiments.md, "The pipeline")."""
    r, g, b = (np.take(rgb, i, axis=axis) for i in range(3))
    y = r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]
    y *= 255.0
    return np.clip(np.rint(y, out=y), 0, 255, out=y).astype(np.uint8)


def gray8(frames: torch.Tensor) -> np.ndarray:
    """N×3×H×W floats in [0, 1] → N×H×W uint8 luma (what DIS works on)."""
    return _y8(frames.detach().float().cpu().numpy(), 1)


def luma8(frame: np.ndarray) -> np.ndarray:
    """An H×W×3 uint8 or uint16 frame → H×W uint8 luma, exactly as :func:`gray8` makes it from the float frame."""
    peak = np.float32(65535.0 if frame.dtype == np.uint16 else 255.0)
    return _y8(frame.astype(np.float32) / peak, 2)


def warp_back(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Each pixel (x, y) of the result taken from ``img`` at (x, y) + ``flow`` (bilinear, borders repeated), as
    float32: a frame moved onto the one the flow was computed from."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.asarray(img, np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def cut_features(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """How alike two consecutive frames (uint8 luma) are once motion is undone: on 160-pixel-wide thumbnails,
    ``before`` is warped onto ``after`` by DIS, then (normalised cross-correlation, median absolute error)."""
    import cv2

    def thumb(g: np.ndarray) -> np.ndarray:
        w = min(160, g.shape[1])
        return cv2.resize(g, (w, max(1, round(g.shape[0] * w / g.shape[1]))), interpolation=cv2.INTER_AREA)

    a, b = thumb(before), thumb(after)
    warped = warp_back(a, dis_flow(b, a, Dis(finest_scale=1)))
    za, zb = warped - warped.mean(), b - b.mean(dtype=np.float32)
    ncc = float((za * zb).sum() / np.sqrt(float((za * za).sum()) * float((zb * zb).sum()) + 1e-6))
    return ncc, float(np.median(np.abs(warped - b)))


def is_cut(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether two consecutive frames (uint8 luma) belong to different shots. Thresholds from real footage
    (``python benchmarks/scene_cuts.py``, BENCHMARKS.md "Scene cuts"): after motion is undone, frames of one shot
    correlate at 0.70 or more even in fast, blurred motion, while the last and first frames of different clips
    stay below 0.80 and differ by more than 20 levels (median) when they correlate above 0.65."""
    ncc, err = cut_features(before, after)
    return ncc < CUT_NCC or (ncc < CUT_NCC_HIGH and err > CUT_ERR)


def dis_flow(centre: np.ndarray, other: np.ndarray, dis: Dis = FAST) -> np.ndarray:
    """H×W×2 float32 flow (pixels) such that ``centre[y, x] ≈ other[y + dy, x + dx]``; uint8 H×W inputs.

    DIS with the FAST preset's patches, searched down to pyramid level ``dis.finest_scale`` (0: the frame's own
    pixels; the preset's 2 finds it at 1/4 size, which is coarse for non-rigid motion in a full frame), then
    ``dis.refine`` variational refinement iterations."""
    import cv2

    search = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # cheap to create; one per call is thread-safe
    search.setFinestScale(dis.finest_scale)
    search.setVariationalRefinementIterations(dis.refine)
    h, w = centre.shape
    if max(h, w) < 16:  # DIS needs a side of 12 or more: tiny frames are searched edge-padded
        pad = ((0, max(16 - h, 0)), (0, max(16 - w, 0)))
        return search.calc(np.pad(centre, pad, mode="edge"), np.pad(other, pad, mode="edge"), None)[:h, :w]
    return search.calc(np.ascontiguousarray(centre), np.ascontiguousarray(other), None)


def window_flows(x: torch.Tensor, dis: Dis = FAST) -> torch.Tensor:
    """The flows a model with ``flow_channels`` takes: N×9×H×W window (t-1, t, t+1) → N×4×H×W float32,
    the flow from the centre frame to t-1, then to t+1, in LR pixels (``flow_warp``'s convention).
    ``dis`` is the model's (``Dis.of(model)``): the flow it was trained with."""
    n, c, h, w = x.shape
    if c != 9:
        raise ValueError(f"expected a 3-frame window (9 channels), got {c}")
    g = [gray8(x[:, 3 * i : 3 * i + 3]) for i in range(3)]
    out = np.empty((n, h, w, FLOW_CHANNELS), dtype=np.float32)
    for b in range(n):
        out[b, ..., 0:2] = dis_flow(g[1][b], g[0][b], dis)
        out[b, ..., 2:4] = dis_flow(g[1][b], g[2][b], dis)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def clip_flows(clip: torch.Tensor, dis: Dis = FAST) -> torch.Tensor:
    """The flows of every inner frame of an N×L×3×H×W clip: N×(L-2)×4×H×W, for frame t (1 .. L-2) the flow from
    t to t-1, then to t+1 (what a recurrent model's step takes)."""
    n, length, _, h, w = clip.shape
    g = [gray8(clip[:, t]) for t in range(length)]
    out = np.empty((n, length - 2, h, w, FLOW_CHANNELS), dtype=np.float32)
    for b in range(n):
        for t in range(1, length - 1):
            out[b, t - 1, ..., 0:2] = dis_flow(g[t][b], g[t - 1][b], dis)
            out[b, t - 1, ..., 2:4] = dis_flow(g[t][b], g[t + 1][b], dis)
    return torch.from_numpy(out).permute(0, 1, 4, 2, 3).contiguous()
