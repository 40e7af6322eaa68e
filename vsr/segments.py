"""Long jobs in pieces: a video cut at keyframes into segments, each upscaled and encoded on its own, then joined.

A segment is decoded from a keyframe with halo frames around it: the window's neighbours, and for a recurrent
model its warm-up (the frames it needs before a given frame for that frame to match a run from the start), so the
frames at every boundary are the frames an unsegmented run makes. Its source is the segment's own packets, remuxed
into a small in-memory file (:class:`vsr.video.probe.PacketReader`), and its result is its encoded video, also as
bytes: a segment travels whole to a worker (a thread here, a Ray task elsewhere) and back, with no shared storage
needed. A run in one pass is one task over the whole input, written straight to the output.
"""

from __future__ import annotations

import bisect
import io
import itertools
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vsr.errors import VsrError
from vsr.video.probe import StreamMap


@dataclass(frozen=True)
class Segment:
    index: int
    first: int  # display index of its first output frame
    end: int  # one past its last
    feed_from: int  # display index of the first frame fed to the model (halo included)
    feed_to: int  # one past the last frame fed
    decode_from: int  # decode index of the keyframe decoding starts at
    decode_to: int  # one past the last packet (decode order) it needs

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Halo:
    before: int  # frames fed before a segment's first output frame
    after: int  # and after its last

    @classmethod
    def of(cls, frames: int, warmup: int, reach: int = 0) -> Halo:
        """``reach``: frames a decode filter needs on each side of the ones it outputs (bwdif: 1)."""
        neighbours = frames // 2
        return cls(before=neighbours + warmup + reach, after=neighbours + reach)


# A segment travels as one in-memory file (its source packets, then its encoded video): 30 s of 4K ProRes is several
# GB, so a segment is also cut where its packets pass this size
MAX_SEGMENT_BYTES = 256 << 20


def plan(m: StreamMap, seconds: float, halo: Halo, max_bytes: int = MAX_SEGMENT_BYTES) -> list[Segment]:
    """Cut at keyframes into segments of about ``seconds``, or fewer where their packets pass ``max_bytes`` (at
    least one keyframe interval; one segment when the video is shorter, or has no keyframe but its first)."""
    n = len(m.pts)
    key_display = sorted({bisect.bisect_left(m.pts, m.packets[k].pts) for k in m.keyframes} | {0})
    before = [0] * (n + 1)  # bytes of the frames shown before display index d
    for p in m.packets:
        d = bisect.bisect_left(m.pts, p.pts)
        if d < n:
            before[d + 1] += p.size
    for d in range(n):
        before[d + 1] += before[d]
    cuts = [0]
    for d in key_display[1:]:
        long = m.seconds(m.pts[d]) - m.seconds(m.pts[cuts[-1]]) >= seconds
        big = before[d] - before[cuts[-1]] >= max_bytes
        if (long and m.seconds(m.pts[-1]) - m.seconds(m.pts[d]) >= seconds / 4) or big:
            cuts.append(d)
    bounds = list(zip(cuts, cuts[1:] + [n]))
    key_by_display = {bisect.bisect_left(m.pts, m.packets[k].pts): k for k in m.keyframes}
    # the last packet (decode order) any frame up to display index d needs: in an open GOP (MPEG-2, x264 open-gop,
    # HEVC CRA) the frames shown just before a keyframe are decoded after it
    decoded_by = [0] * n
    for k, p in enumerate(m.packets):
        d = bisect.bisect_left(m.pts, p.pts)
        if d < n:
            decoded_by[d] = max(decoded_by[d], k)
    for d in range(1, n):
        decoded_by[d] = max(decoded_by[d], decoded_by[d - 1])
    shown = sorted(key_by_display)  # keyframes by display index, and the latest decode index up to each
    latest = list(itertools.accumulate((key_by_display[d] for d in shown), max))
    decoded = sorted((k, d) for d, k in key_by_display.items())  # keyframes in decode order
    out = []
    for i, (first, end) in enumerate(bounds):
        feed_from, feed_to = max(0, first - halo.before), min(n, end + halo.after)
        j = bisect.bisect_right(shown, feed_from) - 1
        start_key = latest[j] if j >= 0 else 0
        # the first keyframe decoded after it that is shown at or after feed_to (an all-intra film: the next one)
        j = bisect.bisect_right(decoded, (start_key, n))
        stop = next((decoded[x][0] for x in range(j, len(decoded)) if decoded[x][1] >= feed_to), len(m.packets))
        stop = max(stop, decoded_by[feed_to - 1] + 1)
        out.append(Segment(i, first, end, feed_from, feed_to, start_key, stop))
    return out


def segment_suffix(codec: str, alpha: bool = False) -> str:
    """The container a segment's encoded video is kept in: NUT (exact timestamps), else the first that holds the
    encoder's packets (ProRes and QuickTime RLE are not NUT's; the join restores the timestamps either way). VP8/VP9
    with alpha go to Matroska: their alpha is packet side data that NUT drops."""
    from vsr.formats import SIDE_ALPHA_CODECS
    from vsr.video.encoder import holds

    kinds = (("nut", ".nut"), ("mov", ".mov"), ("matroska", ".mkv"))
    if alpha and codec in SIDE_ALPHA_CODECS:
        kinds = (("matroska", ".mkv"),)
    for fmt, suffix in kinds:
        if holds(fmt, codec):
            return suffix
    raise VsrError(f"{codec} video cannot be kept in segments here (no container holds it)")


@dataclass
class FrameCount:
    """Frames done over the whole job, from any thread (the progress bar's source)."""

    total: int
    done: int = 0
    on_change: Callable[[int, int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            done = self.done
        if self.on_change:
            self.on_change(done, self.total)


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for one segment (or for the whole input, in one pass) besides the model and its
    source. Timestamps left None are unbounded: the whole input's task has none."""

    segment: Segment | None  # None: the whole input
    feed_from_pts: int | None
    first_pts: int | None
    end_pts: int | None  # pts of the first frame after its outputs (None: to the end)
    feed_to_pts: int | None  # pts of the first frame not fed
    colour: object  # vsr.video.colour.Colour of the whole video
    opts: object  # vsr.video.encoder.EncodeOptions, the codec resolved from the final output
    width: int
    height: int
    tile: int = 0
    hdr: object = None  # vsr.video.colour.HDR of the whole video
    time_base: object = None  # the input stream's, and the exact timestamps of the segment's packets in it
    source_pts: tuple[int, ...] = ()
    deinterlace: str = "off"  # as the whole video was decided (vsr.video.source.VideoSource)
    rate: object = None  # the whole video's frame rate (a few frames remuxed can suggest any)
    alpha: bool = False  # the video has an alpha plane
    stream: int | None = None  # the input's stream index (the whole input's task decodes the file itself)
    fps: float = 25.0  # an image sequence's frame rate
    temporal: object = None  # vsr.temporal.Temporal: the temporal stage after the model (None: off)

    @classmethod
    def make(cls, m: StreamMap, seg: Segment, **whole) -> Task:
        """A segment's task; ``whole``: the whole video's fields (colour, opts, width, height, …)."""
        n = len(m.pts)
        return cls(seg, m.pts[seg.feed_from], m.pts[seg.first], m.pts[seg.end] if seg.end < n else None,
                   m.pts[seg.feed_to] if seg.feed_to < n else None, time_base=m.time_base,
                   source_pts=tuple(sorted(p.pts for p in m.packets[seg.decode_from:seg.decode_to])), **whole)

    @classmethod
    def whole(cls, **whole) -> Task:
        return cls(None, None, None, None, None, **whole)

    @property
    def index(self) -> int:
        return self.segment.index if self.segment else 0

    def role(self, frame) -> str:
        pts = frame.pts
        if self.feed_from_pts is not None and pts < self.feed_from_pts:
            return "skip"
        if self.first_pts is not None and pts < self.first_pts:
            return "warm"
        if self.end_pts is None or pts < self.end_pts:
            return "out"
        if self.feed_to_pts is None or pts < self.feed_to_pts:
            return "edge"
        return "end"


@dataclass(frozen=True)
class Pictures:
    """A segment of a folder of pictures: the ``first`` .. ``end`` (naturally sorted) of ``folder``'s."""

    folder: Path
    first: int
    end: int


@dataclass
class Done:
    """What a task wrote: its frames' timestamps (input time base, display order; fewer than planned where packets
    were damaged) and what the decoder met."""

    pts: list[int]
    decode_errors: int = 0
    truncated: bool = False
    expected: int | None = None  # frames the input's header promises, where it says exactly
    duration: float = 0.0  # seconds of video written


def run_segment(task: Task, source: bytes | Pictures | Path, runner, target: Path, *, overwrite: bool = False,
                stop: threading.Event | None = None, on_frame: Callable[[int], None] | None = None,
                warn: Callable[[str], None] = print, start: int = 0, warm: int = 0) -> Done:
    """Upscale a task's frames into ``target``. ``source`` is the segment's packets (vsr.video.probe.PacketReader),
    decoded as its whole video was, with the halo fed and only its own frames encoded, or its pictures (a folder
    of frames); or the input itself (a video file, or a folder of frames) for the whole input's task, whose other
    streams are then copied too.
    ``start``: frames a folder of frames being resumed already has; the ``warm`` frames before it are fed again."""
    from vsr.video.pipeline import run_stages
    from vsr.video.sink import FolderSink, VideoSink
    from vsr.video.source import FolderSource, NoFrames, VideoSource, open_source

    try:
        if isinstance(source, Pictures):
            src = FolderSource(source.folder, task.fps, source.first, source.end)
        elif isinstance(source, bytes):
            src = VideoSource(io.BytesIO(source), colour=task.colour, hdr=task.hdr, timestamps=(task.time_base,
                              task.source_pts), deinterlace=task.deinterlace, rate=task.rate,
                              size=(task.width, task.height), alpha=task.alpha, warn=warn)
        else:
            src = open_source(source, stream=task.stream, fps=task.fps, deinterlace=task.deinterlace, warn=warn)
    except NoFrames:
        if isinstance(source, bytes):  # damaged from end to end: no frames, and the join passes over it
            return Done([])
        raise
    width, height = task.width * runner.scale, task.height * runner.scale
    try:
        if frames_out(target):
            sink = FolderSink(target, src, warn, overwrite, start)
        else:
            sink = VideoSink(target, src, task.opts, width, height, warn, copy=task.segment is None)
    except BaseException:
        src.close()
        raise
    run_stages(src, sink, runner, tile=task.tile, stop=stop, on_frame=on_frame,
               role=resumed(start, warm) if start else task.role, temporal=task.temporal)
    info = src.info
    return Done(sink.written, src.decode_errors, bool(getattr(src, "truncated", False)),
                info.total if info.total_exact else None, sink.duration(info.rate))


def frames_out(target: Path) -> bool:
    """Whether ``target`` is a folder of frames (no extension, or a folder already), not a video file."""
    return target.suffix == "" or target.is_dir()


def resumed(start: int, warm: int) -> Callable[[object], str]:
    """Frames' roles, by their order, for output that continues at frame ``start``: ``warm`` frames before it
    are fed (the window's neighbours, a recurrent model's and the temporal stage's warm-up), those before skipped."""
    index = itertools.count()

    def role(_frame) -> str:
        i = next(index)
        return "skip" if i < start - warm else "warm" if i < start else "out"

    return role


def upscale_segment(task: Task, source: bytes | Pictures, runner, *, stop: threading.Event | None = None,
                    on_frame: Callable[[int], None] | None = None, warn: Callable[[str], None] = print
                    ) -> tuple[bytes, list[int]]:
    """One segment as it travels back from a worker: its encoded video (a NUT file where NUT holds the codec) and its
    frames' timestamps."""
    with tempfile.TemporaryDirectory(prefix="vsr-segment-") as d:
        target = Path(d) / f"segment{segment_suffix(task.opts.codec, task.alpha)}"
        done = run_segment(task, source, runner, target, stop=stop, on_frame=on_frame, warn=warn)
        return (target.read_bytes() if done.pts else b""), done.pts
