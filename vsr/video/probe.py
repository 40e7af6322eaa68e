"""What a video stream holds, read from its packets without decoding: every frame's timestamp, in display order,
and where the keyframes are (where a segment can start decoding)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from vsr.errors import VsrError


@dataclass
class Packet:
    pts: int
    dts: int | None
    key: bool
    decode_index: int
    size: int = 0  # bytes


@dataclass
class StreamMap:
    packets: list[Packet]  # decode order
    pts: list[int]  # every frame's timestamp, display order
    keyframes: list[int]  # decode indices of keyframes
    time_base: object
    damaged: bool = False  # the container could not be read to its end

    def seconds(self, pts: int) -> float:
        return float(pts * self.time_base)


def probe(path: Path, stream: int | None = None) -> StreamMap:
    """Demux the chosen video stream (``stream``, or the first that is not cover art)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            candidates = c.streams.video if stream is None else [c.streams[stream]]
            v = next(s for s in candidates if not s.disposition & av.stream.Disposition.attached_pic)
            packets = []
            last = None
            damaged = False
            demux = c.demux(v)
            while True:
                try:
                    p = next(demux)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    damaged = True  # the file ends early or is damaged past recovery: plan what can be read
                    break
                if p.size == 0:
                    continue  # the demuxer's flush packet
                pts = p.pts if p.pts is not None else (last + 1 if last is not None else 0)
                last = pts
                packets.append(Packet(pts, p.dts, bool(p.is_keyframe), len(packets), p.size))
            tb = v.time_base
    except (av.error.FFmpegError, StopIteration, IndexError) as e:
        raise VsrError(f"{path}: cannot read its video packets ({e})") from None
    if not packets:
        raise VsrError(f"{path}: no video packets")
    keys = [p.decode_index for p in packets if p.key] or [0]
    return StreamMap(packets, sorted(p.pts for p in packets), keys, tb, damaged)
