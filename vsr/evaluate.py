"""Scoring models on image folders and videos with the SR protocol (see :mod:`vsr.metrics`).

Sources:

* a folder of HR images: LR made with MATLAB-compatible bicubic (BI);
* a paired folder (``HR/`` and ``LR/`` or DIV2K's ``*_HR``/``*_LR_bicubic/X<s>``);
* a video file or a folder of frames: every frame BI-downscaled, scored per
  frame; multi-frame models see (t-1, t, t+1) with the edges repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vsr.errors import VsrError
from vsr.files import VIDEO_EXTS, list_images, read_rgb8
from vsr.metrics import modcrop, psnr, ssim, to_uint8, tof_pair
from vsr.resize import imresize
from vsr.tiling import run_padded

Model = Callable[[torch.Tensor], torch.Tensor]


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


def load_source(path: str | Path, scale: int, *, max_frames: int = 0, crop: int = 0) -> Source:
    """Read HR (and make or read LR) for a folder of images, a paired folder, a video or a frame folder."""
    path = Path(path)
    if not path.exists():
        raise VsrError(f"evaluation data not found: {path}")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTS:
            raise VsrError(f"{path}: not a folder of images or a video")
        return _video_source(path, _decode(path, max_frames), scale, crop)
    paired = _paired_dirs(path, scale)
    src = Source(path.name, "images")
    if paired is not None:
        hr_dir, lr_dir = paired
        for hp in list_images(hr_dir):
            lp = next((c for c in (lr_dir / f"{hp.stem}x{scale}{hp.suffix}", lr_dir / hp.name) if c.exists()), None)
            if lp is None:
                raise VsrError(f"{hp}: no LR image for it in {lr_dir}")
            lr = read_rgb8(lp)
            hr = read_rgb8(hp)[: lr.shape[0] * scale, : lr.shape[1] * scale]
            if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
                raise VsrError(f"{hp} and {lp} are not ×{scale} apart")
            src.items.append(Item(hp.stem, [hr], [lr]))
    else:
        files = list_images(path)
        if not files:
            raise VsrError(f"no images in {path}")
        if max_frames:  # a folder of frames is a video
            return _video_source(path, (read_rgb8(p) for p in files[:max_frames]), scale, crop)
        for p in files:
            hr = modcrop(read_rgb8(p), scale)
            src.items.append(Item(p.stem, [hr], [imresize(hr, 1.0 / scale)]))
    return src


def _decode(path: Path, max_frames: int):
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(c.decode(stream)):
                if max_frames and i >= max_frames:
                    break
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, IndexError) as e:
        raise VsrError(f"cannot decode {path}: {e}") from None


def _video_source(path: Path, frames, scale: int, crop: int) -> Source:
    hrs, lrs = [], []
    for f in frames:
        if crop:
            h, w = f.shape[:2]
            y, x = max((h - crop) // 2, 0), max((w - crop) // 2, 0)
            f = f[y : y + crop, x : x + crop]
        hr = modcrop(f, scale)
        hrs.append(hr)
        lrs.append(imresize(hr, 1.0 / scale))
    if not hrs:
        raise VsrError(f"no frames in {path}")
    return Source(path.stem, "video", [Item(path.stem, hrs, lrs)])


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.concatenate(frames, axis=2)).permute(2, 0, 1)[None].float().div_(255)


def upscale_frames(fn: Model, lr: list[np.ndarray], t: int, frames: int, scale: int, multiple: int) -> np.ndarray:
    """SR of frame ``t`` of ``lr`` with a window of ``frames`` (edges repeated), as uint8."""
    half = frames // 2
    window = [lr[min(max(i, 0), len(lr) - 1)] for i in range(t - half, t + half + 1)]
    with torch.inference_mode():
        out = run_padded(fn, _to_tensor(window), scale, multiple)
    return to_uint8(out[0].permute(1, 2, 0).float().numpy())


@dataclass
class Score:
    name: str
    psnr: float
    ssim: float
    tof: float | None = None  # videos: temporal flicker (TecoGAN tOF), lower is better


def evaluate(fn: Model, source: Source, *, scale: int, frames: int = 1, multiple: int = 1,
             with_ssim: bool = True, with_tof: bool = False,
             keep: Callable[[str, int, np.ndarray], None] | None = None) -> list[Score]:
    """Per-item PSNR/SSIM-Y (a video's are means over its frames) and, for videos, tOF if asked."""
    scores = []
    for item in source.items:
        ps, ss, tofs = [], [], []
        prev = None
        for t in range(len(item.hr)):
            sr = upscale_frames(fn, item.lr, t, frames, scale, multiple)
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
