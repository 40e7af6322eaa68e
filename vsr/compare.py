"""``vsr compare``: a few frames of the user's own video (or an image) through several models, next to bicubic, as one
self-contained HTML page (vsr.compare_page): models are chosen by looking, and by their speed on this machine.

    input → excerpt (the frames at --at, with the lead-in each model needs) → per model, as ``vsr upscale`` runs it
    (vsr.evaluate.upscale_clip, the temporal stage where ``--temporal`` puts it) → the first shown frame whole, 100 %
    crops of every shown frame, the time the model took → the page

Each model runs over a few frames before the shown ones: a recurrent model's state and the temporal stage need them
to settle (as a segment of a long job starts early), and a 3-frame window needs its real previous frame. The first
of them also warms the backend up, so the speed is timed on the shown frames only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsr.errors import VsrError

CROP = (384, 256)  # an automatic crop, in output pixels (its input window is this ÷ the scale)
CROPS = 2  # automatic crops per page, where the reference frame has the most detail
MAX_FULL = 3840 * 2160  # output pixels of a whole frame on the page; a larger one is shown smaller
DEFAULT_FRAMES = 8
LEAD = 8  # at most this many frames run before the shown ones: the temporal stage keeps 0.6^8 < 2 % of its start


@dataclass
class Excerpt:
    """What the models see: for a video, ``lead`` frames before the shown ones, the ``shown`` frames, and the frame
    after them where there is one (a 3-frame window needs it); for an image, the picture."""

    kind: str  # "video" | "image"
    frames: list[np.ndarray]
    lead: int
    shown: int
    width: int
    height: int
    description: str
    start: float = 0.0  # seconds from the video's start to the first shown frame
    rate: float = 0.0  # frames per second
    total: int | None = None  # frames in the whole video (an estimate where the container does not say)
    picture: object = None  # vsr.picture.Picture (an image)


@dataclass
class Result:
    """One model's part of the page."""

    key: str  # "ref", "m0", "m1", …
    name: str
    line: str  # what runs, as vsr upscale says it
    reference: bool
    still: np.ndarray | None = None  # the first shown frame, upscaled (8-bit)
    crops: list[list[np.ndarray]] = field(default_factory=list)  # per crop window, the shown frames (8-bit)
    seconds: float = 0.0  # time over the timed frames
    timed: int = 0  # frames timed (after the warm-up)
    warmup: int = 0  # frames run before the timed ones

    @property
    def fps(self) -> float:
        return self.timed / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Page:
    input: Path
    kind: str
    description: str
    scale: int
    width: int
    height: int
    rate: float
    start: float
    shown: int
    total: int | None
    windows: list[tuple[int, int, int, int]]  # crops (x, y, w, h) in input pixels
    chosen: bool  # the crop was given (--crop), not picked
    machine: str
    results: list[Result]


def parse_time(text: str) -> float:
    """Seconds from "90", "90.5", "1:30" or "1:02:03.5"."""
    try:
        parts = [float(p) for p in text.strip().split(":")]
        if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts) or any(p >= 60 for p in parts[1:]):
            raise ValueError
    except ValueError:
        raise VsrError(f"--at {text!r}: use seconds (90.5) or [h:]m:s (1:30.5)") from None
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise VsrError(f"--crop {text!r}: use X,Y,W,H in input pixels (e.g. 100,50,192,128)") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise VsrError(f"--crop {text!r}: X and Y must be 0 or more, W and H 1 or more")
    return x, y, w, h


def model_list(text: str | None) -> list[str | None]:
    """``-m a,b,c`` as names in order, once each (None: the job's default model)."""
    if text is None:
        return [None]
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise VsrError("-m: name at least one model (e.g. -m mf-fast,mf-fast-real)")
    return names


def kind_of(path: Path) -> str:
    """"image", or "video": a video file or a folder of pictures (an image sequence, as vsr upscale reads it)."""
    from vsr.formats import IMAGE_EXTS, list_images

    if not path.exists():
        raise VsrError(f"{path}: no such file")
    if path.is_dir() and not list_images(path):
        raise VsrError(f"{path}: a folder without pictures; vsr compare takes a video, an image or an image sequence")
    return "image" if path.suffix.lower() in IMAGE_EXTS and not path.is_dir() else "video"


def open_video(path: Path, warn: Callable[[str], None]):
    from vsr.video.source import FolderSource, VideoSource

    if path.is_dir():
        return FolderSource(path, 25.0)  # (vsr upscale's --fps default: times on the page count frames at it)
    try:
        return VideoSource(path, warn=warn)
    except VsrError as e:
        if "not a video FFmpeg can read" in str(e):
            raise VsrError(f"{path}: not a video or an image vsr can read") from None
        raise


def duration_of(src) -> float | None:
    s, info = getattr(src, "stream", None), src.info  # (an image sequence has no stream: its count and rate say)
    if s is not None and s.duration and s.time_base:
        return float(s.duration * s.time_base)
    if s is not None and src.container.duration:
        return src.container.duration / 1e6
    return info.total / float(info.rate) if info.total and info.rate else None


def read_excerpt(src, at: float | None, shown: int, lead: int) -> Excerpt:
    """``shown`` frames from ``at`` seconds (None: centred on the middle), the ``lead`` frames before them and the
    one after, from an open VideoSource (which this closes)."""
    from vsr.video.source import Frame

    info = src.info
    rate = float(info.rate) if info.rate else 25.0
    duration = duration_of(src)
    try:
        if duration is not None:
            if at is not None and at >= duration:
                raise VsrError(f"--at {_clock(at)} is past the end of the video ({_clock(duration)} long)")
            last = max(0.0, duration - (shown + 1) / rate)  # room for the shown frames and the one after
            at = min(last, max(0.0, duration / 2 - shown / (2 * rate)) if at is None else at)
        at = at or 0.0
        begin = at - (lead + 1) / rate
        if begin > 0:
            src.seek(begin)
        stream = getattr(src, "stream", None)  # (an image sequence has none: its pictures start at 0)
        origin = float(((stream.start_time if stream is not None else 0) or 0) * info.time_base)
        before: deque[np.ndarray] = deque(maxlen=lead)
        frames, times = [], []
        for item in src.items():
            if not isinstance(item, Frame):
                continue
            t = float(item.pts * item.time_base) - origin
            if t < at - 0.5 / rate and not frames:
                before.append(item.rgb)
                continue
            frames.append(item.rgb)
            times.append(t)
            if len(frames) > shown:
                break
    finally:
        src.close()
    if not frames:
        raise VsrError(f"no frames decode at or after {_clock(at)}")
    n = min(shown, len(frames))
    k = turns(info.rotation)
    every = [np.ascontiguousarray(np.rot90(f, k)) if k else f for f in [*before, *frames]]
    width, height = display_size(info)
    description = info.description + (f", turned {info.rotation}° as players show it" if k else "")
    return Excerpt("video", every, len(before), n, width, height, description, start=times[0], rate=rate,
                   total=info.total)


def turns(rotation: int) -> int:
    """Quarter turns counterclockwise (numpy's rot90) that show a frame as players do: a video's rotation (its
    display matrix, as PyAV reads it) is the angle the frame is turned counterclockwise for display. The models
    see the frames turned, so that the page and --crop are in the picture's own orientation."""
    return round(rotation / 90) % 4


def display_size(info) -> tuple[int, int]:
    return (info.height, info.width) if turns(info.rotation) % 2 else (info.width, info.height)


def read_image(path: Path) -> Excerpt:
    from vsr.picture import DEFAULT_MAX_PIXELS, check_size, picture_size, read_picture

    check_size(path, *picture_size(path, oriented=False), DEFAULT_MAX_PIXELS)
    pic = read_picture(path)
    h, w = pic.color.shape[:2]
    desc = f"{path.suffix.lstrip('.').upper() or 'image'} {w}×{h}, {pic.bits}-bit{', gray' if pic.gray else ''}"
    return Excerpt("image", [pic.color], 0, 1, w, h, desc, picture=pic)


def crop_size(width: int, height: int, scale: int) -> tuple[int, int]:
    return min(width, max(8, -(-CROP[0] // scale))), min(height, max(8, -(-CROP[1] // scale)))


def detail_windows(frame: np.ndarray, scale: int, size: tuple[int, int], count: int = CROPS) -> list[tuple[int, ...]]:
    """Up to ``count`` non-overlapping windows (x, y, w, h in input pixels) of ``size`` where ``frame`` (an upscaled
    frame, 8-bit RGB) has the highest mean gradient magnitude: where the frame has the most detail to judge."""
    import cv2

    luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(luma, cv2.CV_32F, 1, 0), cv2.Sobel(luma, cv2.CV_32F, 0, 1))
    h, w = frame.shape[0] // scale, frame.shape[1] // scale
    grid = cv2.resize(magnitude, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)  # per input pixel
    cw, ch = size
    ii = cv2.integral(grid)
    sums = ii[ch:, cw:] - ii[:-ch, cw:] - ii[ch:, :-cw] + ii[:-ch, :-cw]  # every window's total, by its corner
    found = []
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
        if not np.isfinite(sums[y, x]) or (found and sums[y, x] <= 0):
            break
        found.append((int(x), int(y), cw, ch))
        sums[max(0, y - ch + 1): y + ch, max(0, x - cw + 1): x + cw] = -np.inf  # the windows that would overlap
    return found


def cut(frame: np.ndarray, window: tuple[int, ...], scale: int) -> np.ndarray:
    x, y, w, h = window
    return np.ascontiguousarray(frame[y * scale:(y + h) * scale, x * scale:(x + w) * scale])


@dataclass
class Contender:
    """A model loaded for the page: its runner, and the frames it runs before the shown ones."""

    result: Result
    runner: object
    temporal: object = None
    lead: int = 1


def lead_of(runner, info, temporal) -> int:
    """Frames a model runs before the shown ones, as a long job's segment starts early: a recurrent model's warm-up
    or the temporal stage's, up to ``LEAD`` (enough to look settled; a segment takes more, to match a run from the
    start to the rounding), and at least one (a 3-frame window's real previous frame; the backend's warm-up)."""
    from vsr.jobs import warmup_of

    return max(1, min(LEAD, max(warmup_of(runner.model, info), temporal.warmup if temporal is not None else 0)))


def run_video(c: Contender, ex: Excerpt, windows: list[tuple[int, ...]], scale: int,
              tick: Callable[[], None]) -> None:
    """The model over the excerpt as vsr upscale runs it; keeps the first shown frame whole and the shown frames'
    crops, and times the shown frames that follow a warm-up."""
    from vsr.evaluate import upscale_clip
    from vsr.video.colour import to_8bit

    own = min(c.lead, ex.lead)
    skip = ex.lead - own
    r = c.result
    r.warmup, r.crops = own, [[] for _ in windows]
    t = time.perf_counter()
    for j, y in enumerate(upscale_clip(c.runner, ex.frames[skip:], temporal=c.temporal)):
        now = time.perf_counter()
        tick()
        k = j - own  # the shown frame's index
        if k >= 0:
            if j > 0:
                r.seconds += now - t
                r.timed += 1
            y8 = to_8bit(y)
            if k == 0:
                r.still = y8
            for i, w in enumerate(windows):
                r.crops[i].append(cut(y8, w, scale))
            if k + 1 >= ex.shown:
                break
        t = time.perf_counter()
    if not r.timed:  # (one frame and nothing before it: its time includes the warm-up)
        r.seconds, r.timed = time.perf_counter() - t, 1


def run_image(c: Contender, ex: Excerpt, tick: Callable[[], None]) -> None:
    """The model over the picture as vsr image runs it (tiled), after a warm-up on one tile; times the whole run."""
    import dataclasses

    from vsr.upscale_picture import DEFAULT_TILE, upscale_picture
    from vsr.video.colour import to_8bit

    pic = dataclasses.replace(ex.picture, alpha=None)  # (the page shows colour)
    corner = dataclasses.replace(pic, color=pic.color[:DEFAULT_TILE, :DEFAULT_TILE])
    upscale_picture(corner, c.runner)
    t = time.perf_counter()
    out = upscale_picture(pic, c.runner).color
    c.result.seconds, c.result.timed = time.perf_counter() - t, 1
    out = np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out
    c.result.still = to_8bit(out)
    tick()


def _reference_frame(runner, frame: np.ndarray) -> np.ndarray:
    """Bicubic's upscale of one frame (8-bit RGB): where the crops go is decided on it, before any model runs."""
    from vsr.video.colour import to_8bit

    rgb = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame
    return to_8bit(runner([rgb], None, True))


def pick_windows(still: np.ndarray, ex: Excerpt, scale: int, crop: tuple[int, int, int, int] | None):
    if crop is None:
        return detail_windows(still, scale, crop_size(ex.width, ex.height, scale))
    return [crop]


def check_crop(crop: tuple[int, int, int, int], width: int, height: int) -> None:
    x, y, w, h = crop
    if x + w > width or y + h > height:
        raise VsrError(f"--crop {x},{y},{w},{h} is not inside the {width}×{height} frame (X,Y,W,H in input pixels)")


def compare(src: Path, dst: Path, models: list[str | None], *, scale: int | None = None, at: float | None = None,
            frames: int = DEFAULT_FRAMES, crop: tuple[int, int, int, int] | None = None, backend: str = "auto",
            precision: str = "auto", temporal: str = "auto", ui=None) -> Page:
    """Make the page: ``models`` (names, files; None: the default) next to bicubic on ``src``, written to ``dst``
    (a temporary name, renamed once whole). ``ui``: a vsr.jobs.Reporter (messages and the progress over frames)."""
    from vsr.jobs import Reporter, temporal_for
    from vsr.runner import DEFAULT_SCALE, choose, describe, open_runner

    ui = ui or Reporter()
    kind = kind_of(src)
    if kind == "image" and at is not None:
        raise VsrError(f"--at: {src} is an image")
    job = "video" if kind == "video" else "image"
    named = [m for m in models if m != "bicubic"]
    scale = scale or (choose(named[0], None, job).scale if named else DEFAULT_SCALE)
    choices = list({c.ref: c for c in (choose(m, scale, job) for m in named)}.values())
    source = open_video(src, ui.warn) if kind == "video" else None  # a bad input fails before any model loads
    try:
        ex = read_image(src) if source is None else None
        info = source.info if source is not None else None
        if crop is not None:
            check_crop(crop, *(display_size(info) if info is not None else (ex.width, ex.height)))
        bits = info.bits if info is not None else ex.picture.bits
        shape = display_size(info)[::-1] if info is not None else None
        io = "u16" if bits > 8 and kind == "video" else "u8"  # (as vsr upscale and vsr image open it)
        contenders = []
        ref_choice = choose("bicubic", scale, job)
        runner, minfo = open_runner(ref_choice, "torch", "fp32", warn=ui.warn, io=io)  # (exact everywhere)
        contenders.append(Contender(Result("ref", "bicubic", describe(runner, minfo, ref_choice), True), runner))
        for i, choice in enumerate(choices):
            runner, minfo = open_runner(choice, backend, precision, warn=ui.warn, shape=shape, io=io, say=ui.say)
            stage = temporal_for(temporal, runner) if kind == "video" else None
            line = describe(runner, minfo, choice) + ("; temporal stage on" if stage is not None else "")
            ui.say(line)
            contenders.append(Contender(Result(f"m{i}", minfo.name, line, False), runner, stage,
                                        lead_of(runner, minfo, stage)))
        if source is not None:
            ex = read_excerpt(source, at, frames, max(c.lead for c in contenders))
    finally:
        if source is not None:
            source.close()
    if ex.kind == "video":
        ui.say(f"input: {ex.description}; {ex.shown} frame(s) from {_clock(ex.start)}")
    steps = [min(c.lead, ex.lead) + ex.shown for c in contenders] if ex.kind == "video" else [1] * len(contenders)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        ui.update(done, sum(steps))

    ref = contenders[0]
    first = ex.frames[ex.lead] if ex.kind == "video" else ex.picture.color
    windows = pick_windows(_reference_frame(ref.runner, first), ex, scale, crop)
    ui.start(sum(steps), 0)
    try:
        for c in contenders:
            if ex.kind == "video":
                run_video(c, ex, windows, scale, tick)
            else:
                run_image(c, ex, tick)
                c.result.crops = [[cut(c.result.still, w, scale)] for w in windows]
    finally:
        ui.close()
    page = Page(src, ex.kind, ex.description, scale, ex.width, ex.height, ex.rate, ex.start, ex.shown, ex.total,
                windows, crop is not None, _machine(), [c.result for c in contenders])
    from vsr.compare_page import render
    from vsr.journal import write_atomic

    write_atomic(dst, render(page).encode())
    return page


def _machine() -> str:
    from vsr.bench import machine

    return machine()


def _clock(seconds: float) -> str:
    """1:23.40, 1:02:03.00"""
    m, s = divmod(max(0.0, seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:05.2f}" if h else f"{m}:{s:05.2f}"


def estimate(seconds: float) -> str:
    """A duration as people say it: 40 s, 3 min 20 s, 2 h 05 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"

