"""From a stream of frames to a stream of model inputs: the window, its flows, and where the state starts over.

For frame t a 3-frame model sees (t-1, t, t+1). At the clip's ends, and at a scene cut, the missing or foreign
neighbour is replaced by t itself, so one shot never leaks into the next; a recurrent model's state starts from
zero at the first frame and at every cut (``reset``). Flows (``flows=True``) are DIS from t to its two
neighbours (:mod:`vsr.flow`), computed on the frames as given. The pipeline, ``vsr eval``, training's validation
and still images all make their windows here, so every model input is made the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vsr.flow import FAST, Dis, dis_flow, is_cut, luma8


@dataclass
class Window:
    frames: list[np.ndarray]  # oldest first: [t] or [t-1, t, t+1], H×W×3 uint8/uint16
    flows: np.ndarray | None  # 4×H×W float32: t → t-1 (dx, dy), t → t+1; None for models without flows
    reset: bool  # a recurrent model's state starts from zero here (first frame, first after a cut)
    meta: Any = None  # what came with frame t
    motion: Any = None  # vsr.temporal.Motion from t to t-1, for the temporal stage (None: off, or t starts a shot)


@dataclass
class _Seen:
    pixels: np.ndarray
    meta: Any
    luma: np.ndarray | None
    cut_before: bool  # a cut between the previous frame and this one


def windows(frames: Iterable[tuple[np.ndarray, Any]], *, size: int, flows: bool = False,
            dis: Dis = FAST, cuts: bool = True, temporal=None) -> Iterator[Window]:
    """``frames`` yields (H×W×3 pixels, meta) in display order; one Window per frame, one frame late for 3-frame
    windows (t+1 must have arrived). ``cuts`` turns scene-cut detection on (it matters only for windows or
    state spanning more than one frame, and the caller says when it does). ``temporal`` (vsr.temporal.Temporal):
    each window also carries the motion from t to t-1 the temporal stage needs."""
    if size not in (1, 3):
        raise ValueError("windows are 1 or 3 frames")
    need_luma = flows or cuts or temporal is not None
    recent: deque[_Seen] = deque(maxlen=3)
    first = True
    for pixels, meta in frames:
        luma = luma8(pixels) if need_luma else None
        cut = bool(cuts and recent and is_cut(recent[-1].luma, luma))
        recent.append(_Seen(pixels, meta, luma, cut))
        if len(recent) >= 2:
            yield _window(recent, -2, size, flows, dis, first, temporal)
            first = False
    if recent:
        yield _window(recent, -1, size, flows, dis, first, temporal)


def _window(recent: deque[_Seen], i: int, size: int, flows: bool, dis: Dis, first: bool, temporal=None) -> Window:
    """The window of ``recent[i]`` (the newest frame, or the one before it)."""
    t = recent[i]
    n = len(recent)
    k = i % n
    prev = recent[k - 1] if k > 0 and not t.cut_before else t
    nxt = recent[k + 1] if k + 1 < n and not recent[k + 1].cut_before else t
    reset = first or t.cut_before
    fl = None
    if flows:
        fl = np.empty((4, *t.pixels.shape[:2]), np.float32)
        fl[0:2] = dis_flow(t.luma, prev.luma, dis).transpose(2, 0, 1)
        fl[2:4] = dis_flow(t.luma, nxt.luma, dis).transpose(2, 0, 1)
    frames = [t.pixels] if size == 1 else [prev.pixels, t.pixels, nxt.pixels]
    moved = None
    if temporal is not None and not reset and prev is not t:
        from vsr.temporal import motion

        moved = motion(prev.luma, t.luma, temporal)
    return Window(frames, fl, reset, t.meta, moved)


def options_for(model, temporal=None) -> dict:
    """The window options a model needs: its window length, whether it takes flows and how DIS makes them, and
    whether scene cuts matter (a window, a state or the temporal stage spanning more than one frame)."""
    frames = int(getattr(model, "frames", 1))
    state = bool(getattr(model, "state_channels", 0))
    return {"size": frames, "flows": bool(getattr(model, "flow_channels", 0)),
            "dis": Dis.of(model), "cuts": frames > 1 or state or temporal is not None, "temporal": temporal}


def still(pixels: np.ndarray, model) -> Window:
    """A still image as ``model``'s input: a video that does not move (the frame repeated), state from zero."""
    return next(windows([(pixels, None)], **{**options_for(model), "cuts": False}))
