"""Long jobs in pieces: a video cut at keyframes into segments, each upscaled and encoded on its own, then joined.

A segment is decoded from a keyframe with halo frames around it: the window's neighbours, and for a recurrent
model its warm-up (the frames it needs before a given frame for that frame to match a run from the start), so the
frames at every boundary are the frames an unsegmented run makes. Its source is the segment's own packets, remuxed
into a small in-memory file, and its result is its encoded video, also as bytes: a segment travels whole to a
worker (a thread here, a Ray task elsewhere) and back, with no shared storage needed.
"""

from __future__ import annotations

import bisect
import io
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

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
    out = []
    for i, (first, end) in enumerate(bounds):
        feed_from, feed_to = max(0, first - halo.before), min(n, end + halo.after)
        start_key = max((k for d, k in key_by_display.items() if d <= feed_from), default=0)
        stop = next((k for d, k in sorted(key_by_display.items(), key=lambda kv: kv[1]) if k > start_key and d >= feed_to),
                    len(m.packets))
        stop = max(stop, decoded_by[feed_to - 1] + 1)
        out.append(Segment(i, first, end, feed_from, feed_to, start_key, stop))
    return out


def segment_source(path: Path, stream_index: int, seg: Segment) -> bytes:
    """The segment's packets (decode order ``decode_from`` .. ``decode_to``), remuxed without re-encoding into an
    in-memory Matroska file (NUT for codecs Matroska does not hold, e.g. PNG or QuickTime RLE in a .mov): all a
    worker needs to decode its frames."""
    from vsr.video.source import alpha_tag

    with av.open(str(path), metadata_errors="ignore") as src:
        v = src.streams[stream_index]
        buf, dst, out = _remux_target(v)
        out.metadata.update(alpha_tag(v))  # (the whole video's flag: the remux would drop it)
        with dst:
            i = 0
            for p in src.demux(v):
                if p.size == 0:
                    continue
                if i >= seg.decode_to:
                    break
                if i >= seg.decode_from:
                    p.stream = out
                    dst.mux(p)
                i += 1
    return buf.getvalue()


def _remux_target(v):
    for fmt in ("matroska", "nut", "mov"):
        buf = io.BytesIO()
        dst = av.open(buf, "w", format=fmt)
        try:
            # opaque: the stream keeps its decoder's codec (a copy needs no encoder; AV1 is decoded by libdav1d,
            # which has none, so PyAV's default of looking one up by that name fails)
            return buf, dst, dst.add_stream_from_template(v, opaque=True)
        except ValueError:  # "'matroska' format does not support 'png' codec"
            dst.close()
    raise VsrError(f"{v.codec_context.name} video cannot be cut into segments here (no container holds it)")


def segment_suffix(codec: str, alpha: bool = False) -> str:
    """The container a segment's encoded video is kept in: NUT (exact timestamps), else the first that holds the
    encoder's packets (ProRes and QuickTime RLE are not NUT's; the join restores the timestamps either way). VP8/VP9
    with alpha go to Matroska: their alpha is packet side data that NUT drops."""
    from vsr.formats import SIDE_ALPHA_CODECS
    from vsr.video.sink import holds

    kinds = (("nut", ".nut"), ("mov", ".mov"), ("matroska", ".mkv"))
    if alpha and codec in SIDE_ALPHA_CODECS:
        kinds = (("matroska", ".mkv"),)
    for fmt, suffix in kinds:
        if holds(fmt, codec):
            return suffix
    raise VsrError(f"{codec} video cannot be kept in segments here (no container holds it)")


@dataclass
class Progress:
    """Frames done over the whole job, from any thread."""

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
    """Everything a worker needs for one segment besides the model and its source bytes."""

    segment: Segment
    feed_from_pts: int
    first_pts: int
    end_pts: int | None  # pts of the first frame after its outputs (None: to the end)
    feed_to_pts: int | None  # pts of the first frame not fed
    colour: object  # vsr.video.colour.Colour of the whole video
    opts: object  # vsr.video.sink.EncodeOptions, the codec resolved from the final output
    width: int
    height: int
    tile: int = 0
    hdr: object = None  # vsr.video.colour.HDR of the whole video
    time_base: object = None  # the input stream's, and the exact timestamps of the segment's packets in it
    source_pts: tuple[int, ...] = ()
    deinterlace: str = "off"  # as the whole video was decided (vsr.video.source.VideoSource)
    rate: object = None  # the whole video's frame rate (a few frames remuxed can suggest any)

    @classmethod
    def make(cls, m: StreamMap, seg: Segment, colour, opts, width: int, height: int, tile: int = 0,
             hdr=None, deinterlace: str = "off", rate=None) -> Task:
        n = len(m.pts)
        return cls(seg, m.pts[seg.feed_from], m.pts[seg.first], m.pts[seg.end] if seg.end < n else None,
                   m.pts[seg.feed_to] if seg.feed_to < n else None, colour, opts, width, height, tile, hdr,
                   m.time_base, tuple(sorted(p.pts for p in m.packets[seg.decode_from:seg.decode_to])), deinterlace,
                   rate)

    def role(self, frame) -> str:
        pts = frame.pts
        if pts < self.feed_from_pts:
            return "skip"
        if pts < self.first_pts:
            return "warm"
        if self.end_pts is None or pts < self.end_pts:
            return "out"
        if self.feed_to_pts is None or pts < self.feed_to_pts:
            return "edge"
        return "end"


def run_segment(task: Task, source: bytes, runner, *, stop: threading.Event | None = None,
                on_frame: Callable[[int], None] | None = None, warn: Callable[[str], None] = print
                ) -> tuple[bytes, list[int]]:
    """Upscale one segment: its frames decoded from ``source`` (vsr.segments.segment_source), run with their halo,
    encoded as the final output's video. Returns the encoded segment (a NUT file where NUT holds the codec) and its
    frames' timestamps in the input's time base, in display order: fewer than planned where packets were damaged."""
    import tempfile

    from vsr.video.pipeline import run_stages
    from vsr.video.sink import VideoSink
    from vsr.video.source import NoFrames, VideoSource

    try:
        src = VideoSource(io.BytesIO(source), colour=task.colour, hdr=task.hdr, timestamps=(task.time_base,
                          task.source_pts), deinterlace=task.deinterlace, rate=task.rate,
                          size=(task.width, task.height), warn=warn)
    except NoFrames:  # damaged from end to end: no frames, and the join passes over it
        return b"", []
    with tempfile.TemporaryDirectory(prefix="vsr-segment-") as d:
        target = Path(d) / f"segment{segment_suffix(task.opts.codec, src.info.extras.get('alpha', False))}"
        try:
            sink = VideoSink(target, src, task.opts, task.width * runner.scale, task.height * runner.scale, warn,
                             copy=False)
        except BaseException:
            src.close()
            raise
        run_stages(src, sink, runner, tile=task.tile, stop=stop, on_frame=on_frame, role=task.role)
        return target.read_bytes(), sink.written
