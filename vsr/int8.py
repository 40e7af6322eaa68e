"""int8 for vsr's models: the frames its engines calibrate on, and what each precision was measured to cost and
gain per model (``vsr/weights/int8.json``), from which ``--precision auto`` picks on OpenVINO: the fastest precision
whose PSNR-Y loss against fp32 is within ``MAX_LOSS`` (int8's SSIM-Y loss within ``MAX_SSIM_LOSS`` too; models the
record lacks keep the backend's choice).

Calibration frames (:class:`engines.quantise.Calibration`) come from ``$VSR_CALIBRATION``: video files and folders
of frames or pictures, several separated by ``os.pathsep`` (vsr's training data, ``../shared/data/train_videos``
and ``train_images``, as the benchmarks use, or one's own footage). Without it they are moving dead-leaves scenes
vsr draws itself (:func:`vsr._testclips.leaves`, with the edge, texture and occlusion statistics of natural
pictures): no data to have, one engine on every machine and for every input (built once, or ahead of time by
``vsr build-engine``), and the engine whose loss the record holds beside the training data's. The video being
upscaled would fit best, but would make each video an engine of its own, built anew, with a loss nobody measured.

Each sample is what the model is given: a run of ``RUN`` consecutive frames of a clip (a still picture: one frame),
cropped at a seeded place and downscaled by the model's scale with MATLAB's bicubic as its training LR was, made
into windows by :mod:`vsr.windows` (DIS flows, scene cuts), with the state the model's own fp32 graph carried from
the run's first frame for a recurrent model. Clips and pictures take turns until there are ``SAMPLES``. The data's
hash (the bytes of every file used, or the scenes' code) and these settings name the engine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV = "VSR_CALIBRATION"
SAMPLES = 300  # windows; NNCF's default subset size
RUN = 8  # consecutive frames from one place of a clip
CROP = 96  # LR pixels, square (smaller where a picture is)
FIRST = 64  # a run starts within a clip's first frames (a video is decoded that far)
MAX_LOSS = 0.1  # dB of PSNR-Y against fp32: what auto accepts
# and of SSIM-Y: int8 can smooth away a GAN's drawn texture, which PSNR does not count as a loss (shipped networks
# lose at most 0.0015 in int8)
MAX_SSIM_LOSS = 0.005
RECORD = Path(__file__).with_name("weights") / "int8.json"
_CODE = ("int8.py", "windows.py", "flow.py", "resize.py")  # what makes the samples from the data


@dataclass(frozen=True)
class _Source:
    path: Path
    frames: tuple[Path, ...] = ()  # a folder's frames; () for a video file or a still picture
    clip: bool = True
    count: int = 1  # frames (a video's as its header says)


def _frame_count(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            if s.frames:
                return int(s.frames)
            if s.duration and s.average_rate:
                return int(s.duration * s.time_base * s.average_rate)
    except (av.error.FFmpegError, IndexError, OSError):
        return 0
    return FIRST


def _sources(paths: list[Path]) -> list[_Source]:
    from vsr.formats import IMAGE_EXTS, VIDEO_EXTS, list_images, natural_key
    from vsr.picture import picture_size

    out = []
    for p in paths:
        if p.is_file():
            if p.suffix.lower() in VIDEO_EXTS:
                n = _frame_count(p)
                out += [_Source(p, count=n)] if n else []
            elif p.suffix.lower() in IMAGE_EXTS:
                out.append(_Source(p, clip=False))
            continue
        if not p.is_dir():
            continue
        pictures = list_images(p)
        if len(pictures) > 1 and len({picture_size(f, oriented=False) for f in pictures}) == 1:
            out.append(_Source(p, tuple(pictures), count=len(pictures)))  # a clip's frames: one size throughout
        else:
            out += [_Source(f, clip=False) for f in pictures]
        out += _sources(sorted((c for c in p.iterdir() if not c.name.startswith(".")
                                and (c.is_dir() or c.suffix.lower() in VIDEO_EXTS)), key=natural_key))
    return out


@dataclass(frozen=True)
class _Run:
    source: _Source | int  # an int: the seed of a dead-leaves scene
    start: int
    length: int
    where: tuple[float, float]  # the crop's place, as fractions of the room there is


def _plan(sources: list[_Source] | None, samples: int) -> list[_Run]:
    """Which runs make the samples: clips and pictures in turn (a picture's run is one frame), seeded."""
    rng = np.random.default_rng(0)
    runs, count = [], 0
    clips = [s for s in sources if s.clip] if sources is not None else None
    stills = [s for s in sources if not s.clip] if sources is not None else []
    i = 0
    while count < samples:
        if sources is None:
            source, length, start = i, RUN, 0
        elif stills and (not clips or i % 2):
            source, length, start = stills[(i // (2 if clips else 1)) % len(stills)], 1, 0
        else:
            source = clips[(i // (2 if stills else 1)) % len(clips)]
            length = min(RUN, source.count)
            start = int(rng.integers(0, min(FIRST, source.count) - length + 1))
        runs.append(_Run(source, start, length, (float(rng.random()), float(rng.random()))))
        count += length
        i += 1
    return runs


def _paths() -> list[Path] | None:
    env = os.environ.get(ENV, "").strip()
    if not env:
        return None
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        from vsr.errors import VsrError

        raise VsrError(f"{ENV}: no such file or folder: {', '.join(missing)}")
    return paths


def _hash_files(runs: list[_Run]) -> str:
    used: dict[Path, None] = {}
    for r in runs:
        s = r.source
        if isinstance(s, _Source):
            for f in (s.frames[r.start : r.start + r.length] if s.frames else (s.path,)):
                used[f] = None
    h = hashlib.sha256()
    for f in used:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


@functools.cache
def _code_hash(names: tuple[str, ...] = _CODE) -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / n).read_bytes() for n in names)).hexdigest()[:16]


class _Maker:
    """The calibration of one model: its key (cheap: file hashes) and its samples (made on a cache miss)."""

    def __init__(self, model, samples: int):
        self.model, self.scale, self.samples_wanted = model, int(model.scale), samples
        self.multiple = int(getattr(model, "size_multiple", 1))
        paths = _paths()
        if paths is None:
            self.sources, self.name = None, "dead-leaves scenes vsr draws (set VSR_CALIBRATION to use your own footage)"
        else:
            self.sources = _sources(paths)
            if not self.sources:
                from vsr.errors import VsrError

                raise VsrError(f"{ENV}: no video or pictures in {', '.join(map(str, paths))}")
            self.name = os.pathsep.join(str(p) for p in paths)
        self.runs = _plan(self.sources, samples)

    def key(self) -> dict:
        data = _code_hash(("_testclips.py",)) if self.sources is None else _hash_files(self.runs)  # the scenes' maker
        return {"source": "leaves" if self.sources is None else "files", "data": data, "code": _code_hash(),
                "samples": self.samples_wanted, "run": RUN, "crop": CROP, "first": FIRST, "scale": self.scale}

    def _side(self, h: int, w: int) -> int:
        """The LR crop's side in a picture of h×w."""
        side = min(CROP, min(h, w) // self.scale)
        return max(self.multiple, side // self.multiple * self.multiple)

    def _crop(self, frame: np.ndarray, where: tuple[float, float]) -> np.ndarray:
        from vsr.video.colour import to_8bit

        frame = to_8bit(frame)
        side = self._side(*frame.shape[:2]) * self.scale
        y = int(where[0] * max(0, frame.shape[0] - side))
        x = int(where[1] * max(0, frame.shape[1] - side))
        return np.ascontiguousarray(frame[y : y + side, x : x + side])

    def _hr_runs(self) -> list[list[np.ndarray]]:
        """Each run's HR crops, decoding each video once."""
        from vsr._testclips import leaves
        from vsr.picture import read_rgb8
        from vsr.video.source import frames_of

        out: list[list[np.ndarray]] = [[] for _ in self.runs]
        videos: dict[Path, list[int]] = {}
        for i, r in enumerate(self.runs):
            s = r.source
            if not isinstance(s, _Source):
                out[i] = leaves(CROP * self.scale, CROP * self.scale, r.length, seed=s)
            elif s.frames:
                out[i] = [self._crop(read_rgb8(f), r.where) for f in s.frames[r.start : r.start + r.length]]
            elif not s.clip:
                out[i] = [self._crop(read_rgb8(s.path), r.where)]
            else:
                videos.setdefault(s.path, []).append(i)
        for path, which in videos.items():
            last = max(self.runs[i].start + self.runs[i].length for i in which)
            for t, frame in enumerate(frames_of(path, last)):
                for i in which:
                    r = self.runs[i]
                    if r.start <= t < r.start + r.length:
                        out[i].append(self._crop(frame, r.where))
        return [o for o in out if o]

    def make(self) -> list[list[np.ndarray]]:
        import torch

        from engines.descriptor import Descriptor
        from engines.graph import Graph
        from vsr.resize import imresize
        from vsr.windows import options_for, windows

        d = Descriptor.of(self.model)
        graph = Graph(self.model.eval().float(), d, "u8")
        samples: list[list[np.ndarray]] = []
        for hr in self._hr_runs():
            lr = [np.ascontiguousarray(imresize(f, 1.0 / self.scale)) for f in hr]
            state = None
            for w in windows(((f, None) for f in lr), **options_for(self.model)):
                sample = [f[None] for f in w.frames] + ([w.flows[None]] if w.flows is not None else [])
                if d.recurrent:  # the state the fp32 graph carries from the run's first frame
                    if w.reset or state is None:
                        state = np.zeros((1, d.state_channels, *lr[0].shape[:2]), np.float32)
                    sample.append(state)
                    with torch.no_grad():
                        state = graph(*[torch.from_numpy(a) for a in sample])[1].numpy()
                samples.append(sample)
                if len(samples) >= self.samples_wanted:
                    return samples
        return samples


def calibration_for(model, info, samples: int | None = None, first_convolutions: str | None = None):
    """The model's int8 calibration (:class:`engines.quantise.Calibration`): its frames, whether its first
    convolutions are quantised (as the record says, else not), and what auto picks (:func:`auto_precision`); None
    for a model with nothing to quantise (bicubic)."""
    from engines.quantise import Calibration

    if getattr(model, "arch", "") == "bicubic":
        return None
    maker = _Maker(model, samples or SAMPLES)
    first = first_convolutions or (measured(info) or {}).get("first_convolutions", "float")
    return Calibration(maker.key, maker.make, auto=auto_precision(info), first_convolutions=first, source=maker.name)


# ---------------------------------------------------------------------------------------------- the record


@functools.cache
def _record() -> dict:
    try:
        return json.loads(RECORD.read_text()).get("models", {})
    except (OSError, ValueError):
        return {}


def measured(info) -> dict | None:
    """What int8 was measured to cost for this weight file at its scale (None: never measured). The record names
    the weights it was measured on, so retrained weights are not taken for the old ones."""
    from vsr.weightfile import weights_id
    from vsr.zoo import resolve

    wid = weights_id(info)
    entry = _record().get(resolve(info.name)[0], {}).get(str(info.scale))  # keyed by the zoo's names
    if entry is not None and entry.get("weights") == wid:
        return entry
    for scales in _record().values():  # a file under another name (a community file by its path)
        for e in scales.values():
            if e.get("weights") == wid:
                return e
    return None


def auto_precision(info) -> str:
    """What ``--precision auto`` runs this model in on OpenVINO here: of fp32, bf16 (where the CPU has it natively)
    and int8, the fastest measured whose PSNR-Y loss against fp32 is within MAX_LOSS dB (int8's with every
    calibration the record holds, and its SSIM-Y loss within MAX_SSIM_LOSS); "" where the record lacks its speeds
    or losses (the backend's own choice)."""
    from engines.cpu import has_native_bf16

    m = measured(info)
    fps = (m or {}).get("fps", {})
    if not fps.get("fp32") or "psnr_loss" not in m:  # speeds without losses: nothing to weigh them against
        return ""
    loss = {"fp32": 0.0, "int8": max((v for k, v in m.items() if k.startswith("psnr_loss")), default=None)}
    if max((v for k, v in m.items() if k.startswith("ssim_loss")), default=0.0) > MAX_SSIM_LOSS:
        loss["int8"] = None
    if has_native_bf16():
        loss["bf16"] = m.get("bf16_psnr_loss")
    fit = [p for p, v in loss.items() if v is not None and v <= MAX_LOSS and fps.get(p)]
    return max(fit, key=lambda p: fps[p])

