"""Joining a segmented job: the segments' video, in order and with the original timestamps, plus the source's
audio, subtitles, attachments, chapters and metadata copied once, written to a temporary name and renamed."""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import av

from vsr.errors import VsrError
from vsr.formats import CONTAINERS
from vsr.video.colour import Colour, tag_encoder
from vsr.video.source import alpha_tag
from vsr.video.streams import copy_extras, flush_converted, mux_copy, muxer_options


def _timed(packets, stream_order: int) -> Iterator[tuple[float, int, int, av.Packet]]:
    for n, p in enumerate(packets):
        t = p.dts if p.dts is not None else p.pts
        yield (float(t * p.time_base) if t is not None else 0.0, stream_order, n, p)


def _segment_packets(files: list[Path], frame_pts: list[list[int]], tb) -> Iterator[av.Packet]:
    """The segments' packets in decode order with the input's exact timestamps: a segment's k-th frame in display
    order is its k-th planned frame (a muxer may have shifted or rounded its clock). Decode timestamps are rebuilt
    for the whole stream as an encoder makes them, the i-th smallest PTS minus the largest reordering delay: each
    segment's encoder delay started afresh, and its file may leave the first ones unset."""

    def packets():
        for f in files:
            with av.open(str(f)) as c:
                for p in c.demux(c.streams.video[0]):
                    if p.size:
                        yield p

    pts: list[int] = []
    for f, planned in zip(files, frame_pts):
        with av.open(str(f)) as c:
            own = [p.pts for p in c.demux(c.streams.video[0]) if p.size]
        if len(own) != len(planned):
            raise VsrError(f"{f.name} holds {len(own)} frames where {len(planned)} were planned; run the same "
                           "command with --restart")
        rank = {q: i for i, q in enumerate(sorted(own))}
        pts += [planned[rank[q]] for q in own]
    order = sorted(pts)
    delay = max(o - q for o, q in zip(order, pts))
    for i, p in enumerate(packets()):
        if p.duration:  # in the segment file's clock (NUT picks its own): the last frame's lasts as the input's did
            p.duration = round(p.duration * p.time_base / tb)
        p.pts, p.dts, p.time_base = pts[i], order[i] - delay, tb
        yield p


def join(target: Path, source: Path, stream_index: int | None, files: list[Path], frame_pts: list[list[int]],
         colour: Colour | None, rotation: int, warn: Callable[[str], None], rate=None) -> None:
    """``frame_pts``: each segment's frames' timestamps in the input stream's time base. A folder of pictures as
    ``source`` has no other streams to copy; its frames are counted at ``rate``."""
    kept = [(f, pts) for f, pts in zip(files, frame_pts) if pts]  # a segment damaged end to end holds nothing
    if not kept:
        raise VsrError(f"{source}: no decodable video frames" if files else "nothing to join: no segment was upscaled")
    files, frame_pts = [f for f, _ in kept], [pts for _, pts in kept]
    tmp = target.with_name(f".{target.stem}.vsr-tmp-{os.getpid()}{target.suffix}")
    muxer = CONTAINERS[target.suffix.lower()].muxer if target.suffix.lower() in CONTAINERS else None
    try:
        with (contextlib.nullcontext() if source.is_dir() else av.open(str(source), metadata_errors="ignore")) as src, \
                av.open(str(files[0])) as first, \
                av.open(str(tmp), "w", format=muxer, options=muxer_options(target, src) if src else {}) as out:
            v_in = src.streams[stream_index] if src else None
            v_out = out.add_stream_from_template(first.streams.video[0], opaque=True)  # see vsr.video.probe.remux
            v_out.metadata.update(alpha_tag(first.streams.video[0]))  # VP8/VP9 alpha, copied as side data
            tb = v_out.time_base = v_in.time_base if v_in else 1 / rate
            rate = v_in.average_rate if v_in else rate
            if rate:  # a copied stream has none, and MOV's timecode track is counted in frames
                v_out.codec_context.framerate = rate
            if colour is not None and not av.VideoFormat(v_out.codec_context.pix_fmt or "yuv420p").is_rgb:
                tag_encoder(v_out.codec_context, colour)
            mapping = copy_extras(out, src, v_in, v_out, target, warn, rotation) if src else {}

            def copied():
                for p in src.demux(*[src.streams[i] for i in mapping]) if mapping else ():
                    if p.size or p.dts is not None:
                        yield p

            for _, order, _, p in heapq.merge(_timed(_segment_packets(files, frame_pts, tb), 0), _timed(copied(), 1)):
                if order == 0:
                    p.stream = v_out
                    out.mux(p)
                else:
                    mux_copy(out, mapping, p)
            flush_converted(out, mapping)
        os.replace(tmp, target)
    except OSError as e:
        from vsr.errors import FULL, DiskFull

        tmp.unlink(missing_ok=True)
        if e.errno in FULL:
            raise DiskFull(f"the disk is full writing {target} ({e.strerror}); free some space and run the same "
                           "command again: the upscaled segments are kept") from None
        raise VsrError(f"cannot write {target}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
