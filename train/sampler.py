"""Training batches: LR/HR clips of T consecutive frames (T = 1 for images) cropped from the frame store or
filmed from stills (pseudo-video), augmented, optionally degraded; all randomness from one Generator.

Crops are aligned to the scale, so an LR crop is exactly the BI degradation of its HR crop away from the frame
border.
"""

from __future__ import annotations

import numpy as np
import torch

from train.pseudo import camera_motion
from train.store import DataError, Sequence, bicubic_down
from vsr.video.colour import to_unit


def spoil_flows(flows: torch.Tensor, rng: np.random.Generator, p: float, amount: float = 3.0) -> torch.Tensor:
    """For models given their flows (``data.flow_noise``): in a share ``p`` of the windows, one neighbour's flow
    (N×4×H×W: to t-1, then to t+1) is wrong by up to ``amount`` LR px over a random rectangle, as DIS fails on
    blur, occlusion and non-rigid motion, so the network learns what a failed flow looks like."""
    out = flows.clone()
    n, _, h, w = flows.shape
    for b in range(n):
        if rng.random() >= p:
            continue
        c = 2 * int(rng.integers(2))
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        y1, x1 = int(rng.integers(y0 + h // 4, h + 1)), int(rng.integers(x0 + w // 4, w + 1))
        shift = torch.from_numpy(rng.uniform(-amount, amount, size=(2, 1, 1))).to(out.dtype)
        out[b, c : c + 2, y0:y1, x0:x1] += shift
    return out


def augment(lr: np.ndarray, hr: np.ndarray, rng: np.random.Generator, temporal: bool = True):
    """Random flips, 90° rotation and (for clips) temporal reversal, applied alike to LR and HR."""
    if rng.random() < 0.5:
        lr, hr = lr[:, :, ::-1], hr[:, :, ::-1]
    if rng.random() < 0.5:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
    if rng.random() < 0.5:
        lr, hr = lr.transpose(0, 2, 1, 3), hr.transpose(0, 2, 1, 3)
    if temporal and lr.shape[0] > 1 and rng.random() < 0.5:
        lr, hr = lr[::-1], hr[::-1]
    return lr, hr


def crop_window(seq: Sequence, t: slice, patch: int, scale: int, rng: np.random.Generator):
    """Frames ``t`` of ``seq``: an aligned LR/HR crop at a random place."""
    _, h, w, _ = seq.lr.shape
    y = int(rng.integers(0, h - patch + 1))
    x = int(rng.integers(0, w - patch + 1))
    lr = seq.lr[t, y : y + patch, x : x + patch]
    hr = seq.hr[t, y * scale : (y + patch) * scale, x * scale : (x + patch) * scale]
    return np.asarray(lr), np.asarray(hr)


class TrainData:
    """Draws batches of clips from the sources."""

    def __init__(self, stills: list[Sequence], videos: list[Sequence], *, scale: int, patch: int, frames: int,
                 pseudo_video: float = 0.0, degrade=None, max_shift: float = 8.0, motion_blur: float = 0.0):
        if not stills and not videos:
            raise DataError("the training set is empty")
        self.scale, self.patch, self.frames = scale, patch, frames
        self.pseudo_video = pseudo_video if stills else 0.0
        if frames > 1 and not videos and not self.pseudo_video:
            self.pseudo_video = 1.0  # only stills: make them move
        self.degrade = degrade
        self.max_shift = max_shift  # pseudo-video camera speed, LR pixels per frame
        self.motion_blur = motion_blur  # share of clips from stills shot with an open shutter
        self.stills = [s for s in stills if min(s.lr.shape[1:3]) >= patch]
        if stills and not self.stills:
            raise DataError(f"every training image is smaller than the LR patch ({patch} px)")
        self.videos = [v for v in videos if min(v.lr.shape[1:3]) >= patch and v.lr.shape[0] >= frames]
        if videos and not self.videos and not self.stills:
            raise DataError(f"no training video has {frames} frames of at least {patch} px")
        # sources are drawn in proportion to their pixels, so big images and long clips are sampled more
        self._still_w = self._weights(self.stills)
        self._video_w = self._weights(self.videos)

    @staticmethod
    def _weights(seqs: list[Sequence]) -> np.ndarray | None:
        if not seqs:
            return None
        w = np.array([s.lr.shape[0] * s.lr.shape[1] * s.lr.shape[2] for s in seqs], dtype=np.float64)
        return w / w.sum()

    def sample(self, rng: np.random.Generator):
        """One clip: (lr T×p×p×3, hr T×sp×sp×3) uint8."""
        s, p, T = self.scale, self.patch, self.frames
        use_video = T > 1 and self.videos and (not self.stills or rng.random() >= self.pseudo_video)
        if T == 1 and (not self.stills or (self.videos and rng.random() < 0.5)):
            use_video = True
        if use_video:
            seq = self.videos[int(rng.choice(len(self.videos), p=self._video_w))]
            t0 = int(rng.integers(0, seq.lr.shape[0] - T + 1))
            lr, hr = crop_window(seq, slice(t0, t0 + T), p, s, rng)
        else:
            exposure = self._exposure(rng)
            if T == 1 and not exposure:
                seq = self.stills[int(rng.choice(len(self.stills), p=self._still_w))]
                lr, hr = crop_window(seq, slice(0, 1), p, s, rng)
            else:  # a still filmed by a moving camera (for T = 1 with motion blur: as video models see stills)
                lr, hr = self._pseudo(rng, exposure)
        if self.degrade is not None:
            lr = self.degrade(hr, rng)
        return augment(lr, hr, rng)

    def _exposure(self, rng: np.random.Generator) -> float:
        """The shutter of a clip made from a still (``motion_blur``): open for 1/4 to all of the frame time in
        that share of clips, else 0."""
        if self.motion_blur and rng.random() < self.motion_blur:
            return float(rng.uniform(0.25, 1.0))
        return 0.0

    def _pseudo(self, rng: np.random.Generator, exposure: float = 0.0):
        s, p, T = self.scale, self.patch, self.frames
        pad = 2  # LR pixels of context so the BI kernel never sees the crop border
        for attempt in range(24):
            seq = self.stills[int(rng.choice(len(self.stills), p=self._still_w))]
            shift = self.max_shift * s * 0.5 ** (attempt // 6)  # small images: slower cameras
            try:
                hr = camera_motion(seq.hr[0], T, (p + 2 * pad) * s, rng, max_shift=shift, exposure=exposure)
            except DataError:
                continue
            lr = np.stack([bicubic_down(f, s)[pad:-pad, pad:-pad] for f in hr])
            return lr, hr[:, pad * s : -pad * s, pad * s : -pad * s]
        raise DataError("no training image is large enough for pseudo-video patches")

    def batch(self, rng: np.random.Generator, size: int):
        """(lr N×T×3×p×p, hr N×T×3×sp×sp) float32 tensors in [0, 1]."""

        def stack(arrays):
            return torch.from_numpy(to_unit(np.stack(arrays))).permute(0, 1, 4, 2, 3)

        lrs, hrs = zip(*(self.sample(rng) for _ in range(size)))
        return stack(lrs), stack(hrs)
