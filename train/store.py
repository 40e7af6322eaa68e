"""The frame store: training images, frame folders and videos, decoded once, with their BI LR twins.

HR frames are decoded (as ``vsr upscale`` decodes them: :mod:`vsr.video.source`, :mod:`vsr.picture`) and kept
with their bicubic (BI) LR counterparts in a cache folder as memory-mapped arrays, so a 2-core machine spends its
time training, not decoding. ``load_sources`` finds what a config's ``data.train`` paths hold.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vsr.errors import VsrError
from vsr.formats import VIDEO_EXTS, list_images, natural_key
from vsr.picture import read_rgb8 as read_rgb
from vsr.resize import imresize


class DataError(VsrError):
    pass


def bicubic_down(hr: np.ndarray, scale: int) -> np.ndarray:
    """HR (modcropped) → LR with MATLAB's imresize, uint8."""
    return imresize(hr, 1.0 / scale)


# ---------------------------------------------------------------------------
# Frame store: sequences of HR frames with their LR twins, memory-mapped


@dataclass
class Sequence:
    name: str
    hr: np.ndarray  # T×H×W×3 uint8 (memmap)
    lr: np.ndarray  # T×h×w×3 uint8 (memmap)


def _cache_key(parts: list[str]) -> str:
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


def _store(cache: Path, key: str, frames_fn, scale: int, lr_fn=None) -> tuple[np.ndarray, np.ndarray]:
    """Decode once into ``cache/key.{hr,lr}.npy``; later calls map the files.

    Frames stream straight to disk (no list of decoded frames in memory), so a
    long video costs a few frames of RAM; a frame of another size is skipped.
    """
    hr_path, lr_path = cache / f"{key}.hr.npy", cache / f"{key}.lr.npy"
    if hr_path.exists() and lr_path.exists():
        try:
            return np.load(hr_path, mmap_mode="r"), np.load(lr_path, mmap_mode="r")
        except (ValueError, OSError):
            pass  # a broken cache entry is rebuilt
    cache.mkdir(parents=True, exist_ok=True)
    raw_hr, raw_lr = cache / f"{key}.hr.raw{os.getpid()}", cache / f"{key}.lr.raw{os.getpid()}"
    n, shape, lr_shape = 0, None, None
    lr_iter = iter(lr_fn()) if lr_fn else None
    try:
        with open(raw_hr, "wb") as fh, open(raw_lr, "wb") as fl:
            for f in frames_fn():
                f = f[: f.shape[0] - f.shape[0] % scale, : f.shape[1] - f.shape[1] % scale]
                lr = next(lr_iter) if lr_iter is not None else bicubic_down(f, scale)
                if shape is None:
                    shape, lr_shape = f.shape, lr.shape
                elif f.shape != shape:
                    continue
                fh.write(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
                fl.write(np.ascontiguousarray(lr, dtype=np.uint8).tobytes())
                n += 1
        if n == 0:
            raise DataError(f"no frames in {key}")
        _raw_to_npy(raw_hr, hr_path, (n, *shape))
        _raw_to_npy(raw_lr, lr_path, (n, *lr_shape))
    finally:
        raw_hr.unlink(missing_ok=True)
        raw_lr.unlink(missing_ok=True)
    return np.load(hr_path, mmap_mode="r"), np.load(lr_path, mmap_mode="r")


def _raw_to_npy(raw: Path, path: Path, shape: tuple[int, ...]) -> None:
    """A .npy file from raw uint8 bytes: header, then the bytes (copied, never loaded)."""
    import shutil

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as out, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": shape})
        shutil.copyfileobj(src, out, 1 << 22)
    os.replace(tmp, path)


def _file_sig(paths: list[Path]) -> list[str]:
    return [f"{p.resolve()}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in paths]


def decode_video(path: Path, stride: int = 1, limit: int = 0):
    """8-bit RGB frames of a video file, every ``stride``-th, at most ``limit``."""
    from vsr.video.colour import to_8bit
    from vsr.video.source import frames_of

    try:
        for f in frames_of(path, limit, stride):
            yield to_8bit(f)
    except VsrError as e:
        raise DataError(f"cannot decode video {path}: {e}") from None


def find_div2k(root: Path, scale: int) -> tuple[Path, Path] | None:
    """(HR folder, LR folder) if ``root`` is laid out like DIV2K."""
    subdirs = [d for d in root.iterdir() if d.is_dir()]
    hr = [d for d in subdirs if d.name == "HR" or d.name.endswith("_HR")]
    lr = [d for d in subdirs if "LR_bicubic" in d.name]
    for h in hr:
        for l in lr:
            x = l / f"X{scale}"
            if x.is_dir():
                return h, x
    return None


def load_sources(cfg_paths: list[str], scale: int, cache: Path, *, stride: int = 1, limit: int = 0,
                 exclude: list[str] = ()) -> tuple[list[Sequence], list[Sequence]]:
    """Resolve training paths into (still images, video sequences)."""
    stills: list[Sequence] = []
    videos: list[Sequence] = []
    for raw in cfg_paths:
        root = Path(raw).expanduser()
        if not root.exists():
            raise DataError(f"training data not found: {root}")
        if any(e and e in str(root) for e in exclude):
            continue
        if root.is_file():
            if root.suffix.lower() not in VIDEO_EXTS:
                raise DataError(f"{root}: not a video file or folder")
            videos.append(_video_file(root, scale, cache, stride, limit))
            continue
        div2k = find_div2k(root, scale)
        if div2k is not None:
            stills += _div2k(*div2k, scale, cache)
            continue
        files = [p for p in list_images(root) if not any(e and e in str(p) for e in exclude)]
        vids = sorted((p for p in root.iterdir() if p.suffix.lower() in VIDEO_EXTS), key=natural_key)
        vids = [p for p in vids if not any(e and e in str(p) for e in exclude)]
        seq_dirs = _sequence_dirs(root)
        if files:
            stills += [_still(p, scale, cache) for p in files]
        for v in vids:
            videos.append(_video_file(v, scale, cache, stride, limit))
        for d in seq_dirs:
            videos.append(_frames_dir(d, list_images(d), scale, cache))
        if not (files or vids or seq_dirs):
            raise DataError(f"no images or videos in {root}")
    return stills, videos


def _sequence_dirs(root: Path) -> list[Path]:
    """REDS (root/train_sharp/000/*.png) and Vimeo-90K (root/sequences/a/b/im*.png) frame folders."""
    out: list[Path] = []
    vimeo_list = next((p for p in (root / "sep_trainlist.txt", root / "tri_trainlist.txt") if p.exists()), None)
    if vimeo_list is not None and (root / "sequences").is_dir():
        for line in vimeo_list.read_text().split():
            d = root / "sequences" / line.strip()
            if d.is_dir():
                out.append(d)
        return out
    for sub in sorted((d for d in root.iterdir() if d.is_dir()), key=natural_key):
        if list_images(sub):
            out.append(sub)
        else:
            out += [d for d in sorted(sub.iterdir(), key=natural_key) if d.is_dir() and list_images(d)]
    return out


def _still(path: Path, scale: int, cache: Path) -> Sequence:
    key = _cache_key(["still", scale] + _file_sig([path]))
    hr, lr = _store(cache, key, lambda: [read_rgb(path)], scale)
    return Sequence(path.name, hr, lr)


def _div2k(hr_dir: Path, lr_dir: Path, scale: int, cache: Path) -> list[Sequence]:
    out = []
    for hp in list_images(hr_dir):
        candidates = [lr_dir / f"{hp.stem}x{scale}{hp.suffix}", lr_dir / hp.name]
        lp = next((c for c in candidates if c.exists()), None)
        if lp is None:
            raise DataError(f"{hp}: no LR image for it in {lr_dir}")
        hr_img, lr_img = read_rgb(hp), read_rgb(lp)
        h, w = lr_img.shape[:2]
        if hr_img.shape[0] < h * scale or hr_img.shape[1] < w * scale:
            raise DataError(f"{hp} ({hr_img.shape[1]}×{hr_img.shape[0]}) and {lp} ({w}×{h}) are not ×{scale} apart")
        key = _cache_key(["div2k", scale] + _file_sig([hp, lp]))
        hr, lr = _store(cache, key, lambda: [hr_img[: h * scale, : w * scale]], scale, lambda: [lr_img])
        out.append(Sequence(hp.name, hr, lr))
    return out


def _frames_dir(folder: Path, files: list[Path], scale: int, cache: Path) -> Sequence:
    key = _cache_key(["frames", scale] + _file_sig(files))
    hr, lr = _store(cache, key, lambda: (read_rgb(p) for p in files), scale)
    return Sequence(str(folder), hr, lr)


def _video_file(path: Path, scale: int, cache: Path, stride: int, limit: int) -> Sequence:
    key = _cache_key(["video", "colour-aware", scale, stride, limit] + _file_sig([path]))
    hr, lr = _store(cache, key, lambda: decode_video(path, stride, limit), scale)
    return Sequence(path.name, hr, lr)


