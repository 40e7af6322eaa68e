"""Optical flow computed outside the network: OpenCV's DIS on the frames the model is given.

Models built with ``flow="dis"`` (see :mod:`vsr.models.mfsr`) take their neighbours' flows as input
instead of estimating them: DIS on the LR frames is good to about 0.03 LR px on camera motion, where
the small learned aligners stay near 0.2 (BENCHMARKS.md, "A precise flow"). Training, evaluation and
every backend compute it here, so the flow a model meets in use is the flow it was trained with.
"""

from __future__ import annotations

import numpy as np
import torch

FLOW_CHANNELS = 4  # (dx, dy) to t-1, then to t+1, in LR pixels
FINEST_SCALE = 2  # OpenCV's FAST preset: the flow is found at 1/4 of the frame's size and upsampled

_LUMA = (0.299, 0.587, 0.114)


def gray8(frames: torch.Tensor) -> np.ndarray:
    """N×3×H×W floats in [0, 1] → N×H×W uint8 luma (what DIS works on)."""
    w = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    y = (frames.detach().float().cpu() * w).sum(1)
    return y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def dis_flow(centre: np.ndarray, other: np.ndarray, finest_scale: int = FINEST_SCALE) -> np.ndarray:
    """H×W×2 float32 flow (pixels) such that ``centre[y, x] ≈ other[y + dy, x + dx]``; uint8 H×W inputs.

    DIS with the FAST preset, searched down to pyramid level ``finest_scale`` (0: the frame's own pixels;
    the preset's 2 finds it at 1/4 size, which is coarse for non-rigid motion in a full frame)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # cheap to create; one per call is thread-safe
    dis.setFinestScale(finest_scale)
    return dis.calc(np.ascontiguousarray(centre), np.ascontiguousarray(other), None)


def window_flows(x: torch.Tensor, finest_scale: int = FINEST_SCALE) -> torch.Tensor:
    """The flows a ``flow="dis"`` model takes: N×9×H×W window (t-1, t, t+1) → N×4×H×W float32,
    the flow from the centre frame to t-1, then to t+1, in LR pixels (``flow_warp``'s convention).
    ``finest_scale`` is the model's ``dis_finest_scale``: the flow it was trained with."""
    n, c, h, w = x.shape
    if c != 9:
        raise ValueError(f"expected a 3-frame window (9 channels), got {c}")
    g = [gray8(x[:, 3 * i : 3 * i + 3]) for i in range(3)]
    out = np.empty((n, h, w, FLOW_CHANNELS), dtype=np.float32)
    for b in range(n):
        out[b, ..., 0:2] = dis_flow(g[1][b], g[0][b], finest_scale)
        out[b, ..., 2:4] = dis_flow(g[1][b], g[2][b], finest_scale)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def with_flows(x: torch.Tensor, finest_scale: int = FINEST_SCALE) -> torch.Tensor:
    """A window with its DIS flows appended as channels (N×13×H×W), on ``x``'s device and dtype."""
    return torch.cat([x, window_flows(x, finest_scale).to(device=x.device, dtype=x.dtype)], 1)
