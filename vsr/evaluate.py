"""Scoring models on image folders and videos with the SR protocol (see :mod:`vsr.metrics`).

Sources:

* an HR image or a folder of them: LR made with MATLAB-compatible bicubic (BI);
* a paired folder (``HR/`` and ``LR/`` or DIV2K's ``*_HR``/``*_LR_bicubic/X<s>``);
* a video file, a folder of frames, or a folder of videos or frame folders (``../shared/data/val_video``): every frame
  BI-downscaled, scored per frame, averaged per clip; models see the windows the pipeline makes
  (:mod:`vsr.windows`: t-1, t, t+1 with edges repeated, flows, a recurrent state carried from the first frame).

Frames are decoded as ``vsr upscale`` decodes them (:mod:`vsr.video.source`, :mod:`vsr.picture`) and upscaled
through a runner (:mod:`engines`), so a score is what the product makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsr.errors import VsrError
from vsr.formats import IMAGE_EXTS, VIDEO_EXTS, clips_in, is_clip_folder, list_images
from vsr.metrics import modcrop, psnr, ssim, tof_pair
from vsr.picture import read_rgb8
from vsr.resize import imresize
from vsr.video.colour import to_8bit
from vsr.video.source import frames_of
from vsr.windows import options_for, windows


@dataclass
class Item:
    name: str
    hr: list[np.ndarray]  # HR frames (one for an image)
    lr: list[np.ndarray]  # their LR twins


@dataclass
class Source:
    name: str
    kind: str  # "images" | "video"
    items: list[Item] = field(default_factory=list)
    count: int = 0  # how many items it has (known before they are read)


def _paired_dirs(root: Path, scale: int) -> tuple[Path, Path] | None:
    subdirs = {d.name: d for d in root.iterdir() if d.is_dir()}
    if "HR" in subdirs and "LR" in subdirs:
        lr = subdirs["LR"] / f"X{scale}"
        return subdirs["HR"], lr if lr.is_dir() else subdirs["LR"]
    hr = [d for n, d in subdirs.items() if n.endswith("_HR")]
    lr = [d / f"X{scale}" for n, d in subdirs.items() if "LR_bicubic" in n and (d / f"X{scale}").is_dir()]
    if hr and lr:
        return hr[0], lr[0]
    return None


def is_video(path: Path) -> bool:
    """A video file or a folder of clips: scored as video (first frames, tOF)."""
    return (path.is_file() and path.suffix.lower() in VIDEO_EXTS) or is_clip_folder(path)


def load_source(path: str | Path, scale: int, *, max_frames: int = 0, crop: int = 0,
                crf: int = 0) -> Source:
    """HR, and LR made (or read) from it, for a folder of images, a paired folder, a video, a frame folder or a
    folder of clips. ``max_frames`` (videos) keeps the first frames; ``crf`` puts each clip's BI LR frames through
    libx264 at that CRF, as real footage arrives (``vsr eval --crf``, the real-footage protocol)."""
    src, items = iter_source(path, scale, max_frames=max_frames, crop=crop, crf=crf)
    src.items.extend(items)
    return src


def iter_source(path: str | Path, scale: int, *, max_frames: int = 0, crop: int = 0,
                crf: int = 0) -> tuple[Source, Iterator[Item]]:
    """:func:`load_source`'s source without its items, and the items one at a time: memory holds one clip or
    picture however many the folder has. What is wrong with the path as a whole is raised here, at once."""
    path = Path(path)
    if not path.exists():
        raise VsrError(f"evaluation data not found: {path}")
    if path.is_file() and path.suffix.lower() in IMAGE_EXTS:
        return Source(path.stem, "images", count=1), iter([_picture(path, scale)])
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTS:
            raise VsrError(f"{path}: not an image, a folder of images or a video")
        return Source(path.stem, "video", count=1), iter([_clip(path.stem, frames_of(path, max_frames), scale, crop,
                                                                crf)])
    if is_clip_folder(path):
        clips = clips_in(path)
        return Source(path.name, "video", count=len(clips)), (_clip(c.name, frames_of(c, max_frames), scale, crop, crf)
                                                               for c in clips)
    paired = _paired_dirs(path, scale)
    if paired is not None:
        return Source(path.name, "images", count=len(list_images(paired[0]))), _paired(*paired, scale)
    files = list_images(path)
    if not files:
        raise VsrError(f"no images in {path}")
    if max_frames:  # a folder of frames is a video
        return Source(path.name, "video", count=1), iter([_clip(path.name, frames_of(path, max_frames), scale, crop,
                                                                crf)])
    return Source(path.name, "images", count=len(files)), (_picture(p, scale) for p in files)


def _paired(hr_dir: Path, lr_dir: Path, scale: int) -> Iterator[Item]:
    for hp in list_images(hr_dir):
        lp = next((c for c in (lr_dir / f"{hp.stem}x{scale}{hp.suffix}", lr_dir / hp.name) if c.exists()), None)
        if lp is None:
            raise VsrError(f"{hp}: no LR image for it in {lr_dir}")
        lr = read_rgb8(lp)
        hr = read_rgb8(hp)[: lr.shape[0] * scale, : lr.shape[1] * scale]
        if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
            raise VsrError(f"{hp} and {lp} are not ×{scale} apart")
        yield Item(hp.stem, [hr], [lr])


def _picture(p: Path, scale: int) -> Item:
    hr = modcrop(read_rgb8(p), scale)
    return Item(p.stem, [hr], [imresize(hr, 1.0 / scale)])


def _clip(name: str, frames, scale: int, crop: int, crf: int) -> Item:
    hrs = []
    for f in frames:
        f = to_8bit(f)  # the SR protocol scores 8-bit frames
        if crop:
            h, w = f.shape[:2]
            y, x = max((h - crop) // 2, 0), max((w - crop) // 2, 0)
            f = f[y : y + crop, x : x + crop]
        hrs.append(modcrop(f, scale))
    if not hrs:
        raise VsrError(f"no frames in {name}")
    lrs = [imresize(hr, 1.0 / scale) for hr in hrs]
    if crf:
        from vsr.video.recompress import recompress

        lrs = recompress(lrs, crf=crf)
    return Item(name, hrs, lrs)


def upscale_clip(runner, lr: list[np.ndarray], *, state: bool = True, temporal=None) -> Iterator[np.ndarray]:
    """A runner over a clip's LR frames, as the pipeline runs it: uint8 SR frames in order. ``state=False`` starts
    a recurrent model's state from zero at every frame (what the state adds, measured on the trained model);
    ``temporal`` (vsr.temporal.Temporal) runs the temporal stage after the model, as ``vsr upscale`` does."""
    from vsr.temporal import Stabiliser

    stab = Stabiliser(runner.scale, temporal) if temporal is not None else None
    for w in windows(((f, None) for f in lr), **options_for(runner.model, temporal)):
        y = runner(w.frames, w.flows, w.reset or not state)
        yield y if stab is None else stab.step(y, w.motion, w.reset)


@dataclass
class Score:
    name: str
    psnr: float
    ssim: float
    tof: float | None = None  # videos: temporal flicker (TecoGAN tOF), lower is better


def evaluate(runner, source: Source, *, with_ssim: bool = True, with_tof: bool = False, state: bool = True,
             keep: Callable[[str, int, np.ndarray], None] | None = None, temporal=None) -> list[Score]:
    """Per-item PSNR/SSIM-Y (a video's are means over its frames) and, for videos, tOF if asked."""
    scale = runner.scale
    scores = []
    for item in source.items:
        ps, ss, tofs = [], [], []
        prev = None
        for t, sr in enumerate(upscale_clip(runner, item.lr, state=state, temporal=temporal)):
            if keep is not None:
                keep(item.name, t, sr)
            ps.append(psnr(sr, item.hr[t], shave=scale))
            ss.append(ssim(sr, item.hr[t], shave=scale) if with_ssim else float("nan"))
            if with_tof and prev is not None:
                tofs.append(tof_pair(prev, sr, item.hr[t - 1], item.hr[t]))
            prev = sr
        tof = float(np.mean(tofs)) if tofs else None
        scores.append(Score(item.name, float(np.mean(ps)), float(np.mean(ss)), tof))
    return scores


def mean(scores: list[Score]) -> tuple[float, float]:
    return float(np.mean([s.psnr for s in scores])), float(np.mean([s.ssim for s in scores]))


def mean_tof(scores: list[Score]) -> float | None:
    vals = [s.tof for s in scores if s.tof is not None]
    return float(np.mean(vals)) if vals else None
