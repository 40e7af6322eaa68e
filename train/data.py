"""Training data: images, frame sequences, videos and pseudo-video, as LR/HR patch windows.

Every source yields ``(lr, hr)`` uint8 arrays shaped T×p×p×3 and
T×(s·p)×(s·p)×3 for a window of T consecutive frames (T = 1 for images).
HR frames are decoded once and kept with their bicubic (BI) LR counterparts
in a cache folder as memory-mapped arrays, so a 2-core machine spends its time
training, not decoding (``Frames``). Crops are aligned to the scale, so an LR
crop is exactly the BI degradation of its HR crop away from the frame border.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vsr.errors import VsrError
from vsr.files import VIDEO_EXTS, list_images, natural_key
from vsr.files import read_rgb8 as read_rgb
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
    """RGB frames of a video file (PyAV), every ``stride``-th, at most ``limit``."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            n = 0
            for i, frame in enumerate(container.decode(stream)):
                if i % stride:
                    continue
                yield frame.to_ndarray(format="rgb24")
                n += 1
                if limit and n >= limit:
                    break
    except (av.FFmpegError, IndexError) as e:
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


def load_sources(cfg_paths: list[str], scale: int, cache: Path, *, kind: str = "auto", stride: int = 1,
                 limit: int = 0, exclude: list[str] = ()) -> tuple[list[Sequence], list[Sequence]]:
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
        if files and (kind == "video"):
            videos.append(_frames_dir(root, files, scale, cache))
        elif files:
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
    key = _cache_key(["video", scale, stride, limit] + _file_sig([path]))
    hr, lr = _store(cache, key, lambda: decode_video(path, stride, limit), scale)
    return Sequence(path.name, hr, lr)


# ---------------------------------------------------------------------------
# Sampling


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


def augment(lr: np.ndarray, hr: np.ndarray, rng: np.random.Generator, temporal: bool = True, flow=None):
    """Random flips, 90° rotation and (for windows) temporal reversal, applied alike to LR and HR.

    ``flow`` (T×h×w×2, the centre frame's displacement to each frame in LR pixels, as ``camera_motion`` gives it)
    is moved along, its components flipped and swapped to match; it is returned third when given."""
    if rng.random() < 0.5:
        lr, hr = lr[:, :, ::-1], hr[:, :, ::-1]
        flow = None if flow is None else flow[:, :, ::-1] * np.array([-1, 1], np.float32)
    if rng.random() < 0.5:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
        flow = None if flow is None else flow[:, ::-1] * np.array([1, -1], np.float32)
    if rng.random() < 0.5:
        lr, hr = lr.transpose(0, 2, 1, 3), hr.transpose(0, 2, 1, 3)
        flow = None if flow is None else flow.transpose(0, 2, 1, 3)[..., ::-1]
    if temporal and lr.shape[0] > 1 and rng.random() < 0.5:
        lr, hr = lr[::-1], hr[::-1]
        flow = None if flow is None else flow[::-1]
    return (lr, hr) if flow is None else (lr, hr, flow)


def crop_window(seq: Sequence, t: slice, patch: int, scale: int, rng: np.random.Generator):
    """Frames ``t`` of ``seq``: an aligned LR/HR crop at a random place."""
    _, h, w, _ = seq.lr.shape
    y = int(rng.integers(0, h - patch + 1))
    x = int(rng.integers(0, w - patch + 1))
    lr = seq.lr[t, y : y + patch, x : x + patch]
    hr = seq.hr[t, y * scale : (y + patch) * scale, x * scale : (x + patch) * scale]
    return np.asarray(lr), np.asarray(hr)


def _line_kernel(path: np.ndarray) -> np.ndarray:
    """A normalised blur kernel: the segment from -path/2 to +path/2 (HR pixels, x and y), sampled every
    1/4 px and splatted bilinearly, so lengths and directions below a pixel still count."""
    half = int(math.ceil(np.abs(path).max() / 2)) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    n = max(2, int(math.ceil(np.abs(path).max() * 4)) + 1)
    for f in np.linspace(-0.5, 0.5, n):
        x, y = half + f * path[0], half + f * path[1]
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        ax, ay = x - x0, y - y0
        k[y0, x0] += (1 - ax) * (1 - ay)
        k[y0, x0 + 1] += ax * (1 - ay)
        k[y0 + 1, x0] += (1 - ax) * ay
        k[y0 + 1, x0 + 1] += ax * ay
    return k / k.sum()


def camera_motion(hr: np.ndarray, frames: int, out: int, rng: np.random.Generator, max_shift: float,
                  *, flow_scale: int | None = None, exposure: float = 0.0):
    """A pseudo-video: ``frames`` views of a still image along a smooth random camera path.

    The camera pans (up to ``max_shift`` HR pixels per frame), zooms (±1.5 %/frame)
    and rotates (±0.5°/frame) about the centre of a random ``out``×``out`` crop.
    With ``exposure`` e > 0 the shutter is open for that share of the frame interval: each view is blurred along
    the camera's pan over [t - e/2, t + e/2], as in real footage (the target frame too: it is the frame the camera
    took). The motion returned is that of the exposures' middles.
    With ``flow_scale`` = s, also returns the exact motion: for each frame, the displacement of the centre
    frame's pixels onto it (T×(out/s)×(out/s)×2, dx, dy; ``flow_warp``'s convention), in the pixels of the
    frames downscaled s× (sampled at their pixel centres), so the aligner can be taught the true flow.
    """
    import cv2

    h, w = hr.shape[:2]
    half = frames // 2
    margin = int(math.ceil(max_shift * half * 1.1 + out * 0.03)) + 2
    side = out + 2 * margin
    if h < side or w < side:
        raise DataError("image too small for pseudo-video")
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    region = np.ascontiguousarray(hr[y0 : y0 + side, x0 : x0 + side])
    # speeds spread from still to fast: |v| = max_shift · u², in a random direction
    angle = rng.uniform(0, 2 * math.pi)
    velocity = max_shift * rng.random() ** 2 * np.array([math.cos(angle), math.sin(angle)])
    accel = rng.uniform(-0.1, 0.1, size=2) * abs(velocity).max()
    zoom = rng.uniform(-0.015, 0.015)
    rot = rng.uniform(-0.5, 0.5)
    offset = rng.uniform(0, 1, size=2)  # sub-pixel: every frame, the centre too, is resampled alike
    c = side / 2.0
    views, maps = [], []
    for k in range(frames):
        j = k - frames // 2
        m = cv2.getRotationMatrix2D((c, c), rot * j, 1.0 + zoom * j)
        m[:, 2] += velocity * j + 0.5 * accel * j * j + offset - margin  # pan, and show the region's centre
        maps.append(m)  # region -> view k
        # an open shutter: the pan during the exposure as a line kernel (zoom and rotation move too little to
        # matter), applied to a view rendered with a border as wide as the kernel, so its edges blur real content
        kernel = _line_kernel((velocity + accel * j) * exposure) if exposure > 0 else None
        b = 0 if kernel is None else kernel.shape[0] // 2
        view = cv2.warpAffine(region, m + np.array([[0, 0, b], [0, 0, b]]), (out + 2 * b, out + 2 * b),
                              flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
        views.append(view if kernel is None else cv2.filter2D(view, -1, kernel)[b : b + out, b : b + out])
    if flow_scale is None:
        return np.stack(views)
    s = flow_scale
    n = out // s
    lattice = np.arange(n, dtype=np.float64) * s + (s - 1) / 2  # LR pixel centres in HR pixels
    xy = np.stack(np.meshgrid(lattice, lattice), -1)  # n×n×2 (x, y)
    to_region = cv2.invertAffineTransform(maps[frames // 2])
    flows = []
    for m in maps:  # centre view -> region -> view k, an affine map; minus the identity
        a = m[:, :2] @ to_region[:, :2]
        b = m[:, :2] @ to_region[:, 2] + m[:, 2]
        flows.append((xy @ a.T + b - xy) / s)
    return np.stack(views), np.stack(flows).astype(np.float32)


class TrainData:
    """Draws batches of windows from the sources; all randomness from one Generator."""

    def __init__(self, stills: list[Sequence], videos: list[Sequence], *, scale: int, patch: int, frames: int,
                 pseudo_video: float = 0.0, degrade=None, max_shift: float = 8.0, motion_blur: float = 0.0):
        if not stills and not videos:
            raise DataError("the training set is empty")
        self.stills, self.videos = stills, videos
        self.scale, self.patch, self.frames = scale, patch, frames
        self.pseudo_video = pseudo_video if stills else 0.0
        if frames > 1 and not videos and not self.pseudo_video:
            self.pseudo_video = 1.0  # only stills: make them move
        self.degrade = degrade
        self.max_shift = max_shift  # pseudo-video camera speed, LR pixels per frame
        self.motion_blur = motion_blur  # share of windows from stills shot with an open shutter
        ok = [s for s in stills if min(s.lr.shape[1:3]) >= patch]
        if stills and not ok:
            raise DataError(f"every training image is smaller than the LR patch ({patch} px)")
        self.stills = ok
        vids = [v for v in videos if min(v.lr.shape[1:3]) >= patch and v.lr.shape[0] >= frames]
        if videos and not vids and not self.stills:
            raise DataError(f"no training video has {frames} frames of at least {patch} px")
        self.videos = vids
        # weight sources by pixel count so big images are sampled more
        self._still_w = self._weights(self.stills)
        self._video_w = self._weights(self.videos)

    @staticmethod
    def _weights(seqs: list[Sequence]) -> np.ndarray | None:
        if not seqs:
            return None
        w = np.array([s.lr.shape[0] * s.lr.shape[1] * s.lr.shape[2] for s in seqs], dtype=np.float64)
        return w / w.sum()

    def sample(self, rng: np.random.Generator, flows: bool = False):
        """One (lr T×p×p×3, hr) window; with ``flows``, also its exact motion (T×p×p×2, LR pixels; NaN where
        unknown: real video)."""
        s, p, T = self.scale, self.patch, self.frames
        use_video = T > 1 and self.videos and (not self.stills or rng.random() >= self.pseudo_video)
        if T == 1 and (not self.stills or (self.videos and rng.random() < 0.5)):
            use_video = True
        flow = np.full((T, p, p, 2), np.nan, np.float32) if flows else None
        if use_video:
            seq = self.videos[int(rng.choice(len(self.videos), p=self._video_w))]
            t0 = int(rng.integers(0, seq.lr.shape[0] - T + 1))
            lr, hr = crop_window(seq, slice(t0, t0 + T), p, s, rng)
        elif T == 1:  # a still; with motion blur, as the 3-frame model's pseudo-video sees its centre frames
            exposure = self._exposure(rng)
            if exposure:
                lr, hr, _ = self._pseudo(rng, exposure)
            else:
                seq = self.stills[int(rng.choice(len(self.stills), p=self._still_w))]
                lr, hr = crop_window(seq, slice(0, 1), p, s, rng)
        else:
            lr, hr, motion = self._pseudo(rng, self._exposure(rng))
            flow = motion if flows else None
        if self.degrade is not None:
            lr = self.degrade(hr, rng)
        return augment(lr, hr, rng, flow=flow)

    def _exposure(self, rng: np.random.Generator) -> float:
        """The shutter of a window made from a still (``motion_blur``): open for 1/4 to all of the frame time
        in that share of windows, else 0."""
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
                hr, flow = camera_motion(seq.hr[0], T, (p + 2 * pad) * s, rng, max_shift=shift, flow_scale=s,
                                         exposure=exposure)
            except DataError:
                continue
            lr = np.stack([bicubic_down(f, s)[pad:-pad, pad:-pad] for f in hr])
            return lr, hr[:, pad * s : -pad * s, pad * s : -pad * s], flow[:, pad:-pad, pad:-pad]
        raise DataError("no training image is large enough for pseudo-video patches")

    def batch(self, rng: np.random.Generator, size: int, flows: bool = False):
        """(lr N×T×3×p×p, hr N×T×3×sp×sp) float32 tensors in [0, 1]; with ``flows``, a third: N×T×2×p×p, the exact
        motion of pseudo-video windows from their centre frame (NaN for real video, whose motion is unknown)."""
        import torch

        def stack(arrays, div):
            return torch.from_numpy(np.ascontiguousarray(np.stack(arrays))).permute(0, 1, 4, 2, 3).float().div_(div)

        samples = list(zip(*(self.sample(rng, flows) for _ in range(size))))
        return stack(samples[0], 255), stack(samples[1], 255), *([stack(samples[2], 1)] if flows else [])
