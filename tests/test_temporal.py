"""The temporal stage: it steadies what a per-frame model redraws differently each frame, takes the new frame where
the motion can't be trusted (no ghost of what moved away), starts over at cuts, runs inside segments, and changes
nothing when it is off."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import pan, run_job, small

from engines.torch_backend import TorchRunner
from vsr._testclips import scene
from vsr.flow import luma8
from vsr.temporal import Stabiliser, Temporal, coefficients, motion


def _steadied(lr: list[np.ndarray], sr: list[np.ndarray], scale: int, settings: Temporal | None = None):
    settings = settings or Temporal()
    stab, out, prev = Stabiliser(scale, settings), [], None
    for t, (a, y) in enumerate(zip(lr, sr)):
        lum = luma8(a)
        out.append(stab.step(y, motion(prev, lum, settings) if prev is not None else None, t == 0))
        prev = lum
    return out


def _upscaled(frames: list[np.ndarray], scale: int) -> list[np.ndarray]:
    import cv2

    return [cv2.resize(f, (f.shape[1] * scale, f.shape[0] * scale), interpolation=cv2.INTER_CUBIC) for f in frames]


@pytest.mark.parametrize("deep", [False, True])
def test_flicker_a_model_adds_frame_by_frame_is_steadied(deep):
    """A panning scene upscaled ×4 with noise drawn anew each frame (a per-frame model's shimmer): the stage brings
    the output nearer the clean upscale (a fifth of the error gone at least: the weight blends most on texture, where
    real models shimmer, and this noise is everywhere; ×2's weight, fitted to sharper frames, blends less), 8-bit and
    16-bit alike."""
    lr = pan(12, 48, 64, speed=1.0)
    clean = _upscaled(lr, 4)
    rng = np.random.default_rng(0)
    noisy = [np.clip(c + rng.normal(0, 4, c.shape), 0, 255).astype(np.uint8) for c in clean]
    if deep:
        lr, clean, noisy = ([f.astype(np.uint16) * 257 for f in x] for x in (lr, clean, noisy))
    steady = _steadied(lr, noisy, 4)
    assert steady[5].dtype == noisy[5].dtype

    def err(frames):
        return float(np.mean([np.abs(f.astype(float) - c)[8:-8, 8:-8].mean() for f, c in zip(frames[4:], clean[4:])]))

    assert err(steady) < 0.8 * err(noisy)


def test_what_moved_away_leaves_no_ghost():
    """A bright square crosses a still background: where it was, the stabilised frame is the background again at
    once (the motion there is not trusted: the previous frame does not match)."""
    bg = scene(48, 64, 0, speed=0.0)
    frames = []
    for t in range(6):
        f = bg.copy()
        f[16:32, 4 + 8 * t:20 + 8 * t] = 250
        frames.append(f)
    sr = _upscaled(frames, 2)
    out = _steadied(frames, sr, 2)
    left = slice(2 * 4 + 2, 2 * 12 - 2)  # covered at t=0, background from t=2 on
    for t in (2, 3, 4):
        assert np.abs(out[t][36:60, left].astype(int) - sr[t][36:60, left].astype(int)).max() <= 6, t


def test_a_cut_starts_over():
    a, b = pan(4, 40, 56, speed=1.0), [scene(40, 56, t, seed=7) for t in range(3)]
    sr = _upscaled(a + b, 2)
    stab, settings = Stabiliser(2, Temporal()), Temporal()
    for t, (f, y) in enumerate(zip(a + b, sr)):
        out = stab.step(y, None if t in (0, 4) else motion(luma8((a + b)[t - 1]), luma8(f), settings), t in (0, 4))
        if t == 4:
            assert np.array_equal(out, y)


def test_off_changes_nothing_and_on_runs_inside_segments(tmp_path):
    """--temporal off writes exactly the per-frame output; on, a segmented run's frames match one pass's (the stage
    warms up in each segment's halo), through a lossless codec."""
    from vsr._testclips import make_clip
    from vsr.video.encoder import EncodeOptions
    from vsr.video.source import frames_of

    src = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=40, gop=5, audio=False)
    runner = TorchRunner(small("sr-lite"))
    lossless = EncodeOptions(codec="ffv1", pix_fmt="bgr0")  # RGB: the frames come back as they were written
    run_job(src, tmp_path / "off.mkv", runner, encode=lossless, temporal="off")
    run_job(src, tmp_path / "one.mkv", runner, encode=lossless)  # auto: on for a one-frame model
    result, _ = run_job(src, tmp_path / "seg.mkv", runner, encode=lossless, segment_seconds=0.3)

    def frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    per_frame = [runner([f]) for f in frames_of(src)]
    off, one, seg = frames(tmp_path / "off.mkv"), frames(tmp_path / "one.mkv"), frames(tmp_path / "seg.mkv")
    assert len(off) == 40 and all(np.array_equal(a, b) for a, b in zip(off, per_frame))
    assert not all(np.array_equal(a, b) for a, b in zip(off, one))  # on does something
    assert result.segments > 3 and len(seg) == len(one) == 40
    worst = max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(seg, one))
    assert worst <= 2


def test_the_weight_blends_texture_most_and_stays_below_strength():
    """The fitted weight as it ships: highest where the still LR frame is textured (where per-frame models shimmer),
    lower on flat picture, lower again where the moved previous output disagrees with the new frame, and never above
    ``strength`` (what a segment's warm-up relies on)."""
    rng = np.random.default_rng(1)
    lr = np.full((32, 64, 3), 120, np.uint8)
    lr[:, 32:] = rng.integers(0, 255, (32, 32, 3))  # flat on the left, texture on the right
    settings = Temporal()
    m = motion(luma8(lr), luma8(lr), settings)
    sr = _upscaled([lr], 2)[0]
    stab = Stabiliser(2, settings)
    still = stab.weight(sr, sr, m)
    changed = stab.weight(sr, np.clip(sr.astype(int) + 60, 0, 255).astype(np.uint8), m)
    flat, textured = still[8:56, 8:56].mean(), still[8:56, 72:120].mean()
    assert textured > 1.5 * flat > 0
    assert changed[8:56, 72:120].mean() < 0.75 * textured
    assert still.max() <= settings.strength and changed.max() <= settings.strength


def test_each_scale_takes_the_weight_fitted_at_it_or_below():
    fitted = dict(Temporal().theta)
    assert set(fitted) >= {2, 4}
    assert coefficients(Temporal(), 2) == fitted[2] and coefficients(Temporal(), 4) == fitted[4]
    assert coefficients(Temporal(), 3) == fitted[2] and coefficients(Temporal(), 8) == fitted[4]
    assert coefficients(Temporal(), 1) == fitted[min(fitted)]
