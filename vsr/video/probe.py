"""What a video stream holds, read from its packets without decoding: every frame's timestamp, in display order,
and where the keyframes are (where a segment can start decoding); and a segment's own packets, read by seeking to
its keyframe, so reading a film's last segment costs what reading its first does."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av

from vsr.errors import VsrError


@dataclass
class PacketInfo:
    pts: int  # as read, or one after the previous where the container gives none
    dts: int | None
    key: bool
    decode_index: int
    size: int = 0  # bytes
    raw_pts: int | None = None  # as read: with dts and size, how a packet is recognised after a seek


@dataclass
class StreamMap:
    packets: list[PacketInfo]  # decode order
    pts: list[int]  # every frame's timestamp, display order
    keyframes: list[int]  # decode indices of keyframes
    time_base: object
    damaged: bool = False  # the container could not be read to its end

    def seconds(self, pts: int) -> float:
        return float(pts * self.time_base)


class MapBuilder:
    """Collects a stream's packets as they are demuxed (by the probe's single pass over the file)."""

    def __init__(self):
        self.packets: list[PacketInfo] = []
        self.last: int | None = None

    def add(self, p: av.Packet) -> None:
        if p.size == 0:
            return  # the demuxer's flush packet
        pts = p.pts if p.pts is not None else (self.last + 1 if self.last is not None else 0)
        self.last = pts
        self.packets.append(PacketInfo(pts, p.dts, bool(p.is_keyframe), len(self.packets), p.size, p.pts))

    def build(self, time_base, damaged: bool, path) -> StreamMap:
        if not self.packets:
            raise VsrError(f"{path}: no video packets")
        keys = [p.decode_index for p in self.packets if p.key] or [0]
        return StreamMap(self.packets, sorted(p.pts for p in self.packets), keys, time_base, damaged)


class PacketReader:
    """A segment's packets (decode order ``first`` .. ``end``) from one open input: it seeks to the keyframe
    before ``first`` and reads forward, and falls back to reading from the start where the container cannot seek
    to it (no index, no timestamps)."""

    def __init__(self, path: Path, stream_index: int, m: StreamMap, target: CopyTarget | None = None):
        self.path, self.index, self.m = path, stream_index, m
        self.target = target or copy_target(path, stream_index)
        self.fresh = True  # nothing demuxed yet: already at the start
        self.demuxed = 0  # packets read so far (what seeking saves: tests and benchmarks/reading.py)
        self._open()

    def _open(self) -> None:
        try:
            self.container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise VsrError(f"{self.path}: cannot read its video packets ({e.strerror or e})") from None
        self.stream = self.container.streams[self.index]

    def _rewind(self) -> None:
        if self.fresh:
            return
        try:
            self.container.seek(0)
        except av.error.FFmpegError:  # a container that cannot seek at all: open it again
            self.container.close()
            self._open()

    def packets(self, first: int, end: int, seek: bool = True):
        want = self.m.packets[first]
        if seek and first > 0 and self._seek(want):
            found = self._read(first, end, want)
            if found is not None:
                yield from found
                return
        self._rewind()
        yield from self._read(first, end, None) or []

    def _seek(self, want: PacketInfo) -> bool:
        target = want.dts if want.dts is not None else want.raw_pts
        if target is None:
            return False
        self.fresh = False
        try:
            self.container.seek(target, stream=self.stream, backward=True)
        except av.error.FFmpegError:
            return False
        return True

    def _read(self, first: int, end: int, want: PacketInfo | None) -> list[av.Packet] | None:
        """From where the container stands: ``want``'s packet and the ``end - first - 1`` after it (None where the
        seek landed past it); without ``want``, the container is at the start and packets are counted."""
        self.fresh = False
        out: list[av.Packet] = []
        index = 0 if want is None else None
        try:
            for p in self.container.demux(self.stream):
                self.demuxed += 1
                if p.size == 0:
                    continue
                if index is None:  # looking for the segment's first packet
                    if (p.pts, p.dts, p.size) == (want.raw_pts, want.dts, want.size):
                        index = first
                    elif want.dts is not None and p.dts is not None and p.dts > want.dts:
                        return None  # landed after it
                    else:
                        continue
                if index >= end:
                    break
                if index >= first:
                    out.append(p)
                index += 1
        except av.error.FFmpegError:
            pass  # damaged past here: what was read is the segment (the probe found the same)
        return out if index is not None else None

    def read(self, first: int, end: int) -> bytes:
        """The packets as a small in-memory file a worker decodes (vsr.segments.run_segment)."""
        return remux(self.stream, self.packets(first, end), self.target)

    def close(self) -> None:
        self.container.close()


class CannotCut(VsrError):
    """No container holds a copy of the video stream that decodes as the input does."""


@dataclass(frozen=True)
class CopyTarget:
    format: str  # the container a segment's packets are copied into
    tag: bool  # the copy keeps the input's codec tag


def copy_target(path: Path, stream_index: int) -> CopyTarget:
    """Where a copy of the stream's packets decodes to the frames the input does: the first of Matroska, NUT and MOV
    (for codecs Matroska does not hold, e.g. PNG or QuickTime RLE in a .mov), keeping the input's codec tag where the
    container takes it, as FFmpeg's stream copy does. Some decoders read their pixel format from the tag (Ut Video's
    ULRG, uncompressed video's 2vuy or I420), and a container may write a wrong one for uncompressed video, so the
    stream's first packet is copied and decoded to check."""
    with av.open(str(path), metadata_errors="ignore") as c:
        v = c.streams[stream_index]
        try:
            first = [next(p for p in c.demux(v) if p.size)]
        except (StopIteration, av.error.FFmpegError):
            first = []
        want = _decoded(first, v.codec_context)
        tags = (True, False) if v.codec_context.codec_tag.strip("\0 ") else (False,)
        for target in (CopyTarget(f, t) for f in ("matroska", "nut", "mov") for t in tags):
            try:
                with av.open(io.BytesIO(remux(v, first, target))) as d:
                    w = d.streams.video[0]
                    got = _decoded([p for p in d.demux(w) if p.size], w.codec_context)
            except (ValueError, av.error.FFmpegError):  # "'matroska' format does not support 'png' codec", or the tag
                continue
            if want is None or got == want:  # (None: the first packet does not decode alone, damaged)
                return target
    raise CannotCut(f"{v.codec_context.name} video cannot be cut into segments here (no container holds a copy)")


def _decoded(packets, decoder) -> list[bytes] | None:
    """The frames ``packets`` decode to, as comparable bytes; None where they do not decode."""
    try:
        frames = [f for p in packets + [None] for f in decoder.decode(p)]
        return [f.to_ndarray(format="rgb48le").tobytes() for f in frames] or None
    except (av.error.FFmpegError, ValueError):
        return None


def remux(stream, packets, target: CopyTarget) -> bytes:
    """``packets`` of ``stream``, copied without re-encoding into a small in-memory file."""
    from vsr.video.source import alpha_tag

    buf = io.BytesIO()
    with av.open(buf, "w", format=target.format) as dst:
        # opaque: the stream keeps its decoder's codec (a copy needs no encoder; AV1 is decoded by libdav1d, which has
        # none, so PyAV's default of looking one up by that name fails)
        out = dst.add_stream_from_template(stream, opaque=True)
        if target.tag:
            out.codec_context.codec_tag = stream.codec_context.codec_tag
        out.metadata.update(alpha_tag(stream))  # (the whole video's flag: the copy would drop it)
        dst.start_encoding()  # a container that refuses the stream or its tag says so here
        for p in packets:
            p.stream = out
            dst.mux(p)
    return buf.getvalue()
