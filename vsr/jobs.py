"""A video job, resumable and spreadable: plan segments, upscale those the journal lacks (here, or on Ray), join.

    vsr upscale in.mp4 out.mp4            # segments of about 30 s, one after another, in this process
    vsr upscale in.mp4 out.mp4 --ray      # the same segments as Ray tasks (an embedded Ray, or --ray-address)

The journal (:mod:`vsr.journal`) records each finished segment as soon as its file is on disk, so a crash loses at
most the segments being upscaled, and the same command continues the job. The join writes the output under a
temporary name and renames it; then the work folder goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from vsr.errors import VsrError
from vsr.journal import Journal, fingerprint
from vsr.segments import Halo, Progress, Task, plan, run_segment, segment_source
from vsr.video.pipeline import Stopped
from vsr.video.probe import probe
from vsr.video.sink import EncodeOptions, check_encoder

DEFAULT_SEGMENT_SECONDS = 30.0
DEFAULT_WARMUP = 16  # frames, for a recurrent model whose weights do not say (benchmarks/warmup.py measures it)


@dataclass
class ModelRef:
    """What a worker needs to build the runner: the weight file's bytes travel, not a path."""

    name: str  # a shipped name, or a file's name
    scale: int
    data: bytes | None  # the weight file (None: a shipped model every worker has)
    suffix: str  # the file's extension, so a worker reads it as vsr's or a community file
    backend: str
    precision: str


def warmup_of(model, info) -> int:
    if not getattr(model, "state_channels", 0):
        return 0
    return int(info.validation.get("warmup_frames", DEFAULT_WARMUP))


@dataclass
class JobResult:
    frames: int
    duration: float
    elapsed: float
    segments: int
    kept: int  # segments an earlier run had finished
    status: str  # what became of an earlier run: new, resumed, or why it was discarded

    @property
    def fps(self) -> float:
        return (self.frames - self.kept_frames) / self.elapsed if self.elapsed else 0.0

    kept_frames: int = 0
    lost: int = 0  # frames the input lists that could not be decoded (damaged packets)
    truncated: bool = False  # the container could not be read to its end


class Local:
    """Segments one after another in this process, with one runner (its engine built once)."""

    def __init__(self, runner):
        self.runner = runner

    def run(self, todo: list[tuple[Task, Callable[[], bytes]]], done: Callable[[int, bytes, list[int]], None],
            progress: Progress, stop: threading.Event, warn: Callable[[str], None]) -> None:
        for task, source in todo:
            data, pts = run_segment(task, source(), self.runner, stop=stop, warn=warn,
                                    on_frame=lambda _n: progress.add(1))
            done(task.segment.index, data, pts)


def upscale_file(src: Path, dst: Path, model, info, *, backend: str, precision: str, opts: EncodeOptions,
                 stream: int | None, tile: int, segment_seconds: float, restart: bool, scheduler, stop: threading.Event,
                 on_start: Callable[[object, Progress], None] | None = None, warn: Callable[[str], None] = print,
                 deinterlace: str = "auto") -> JobResult:
    """Upscale a video file to ``dst`` through the journal's segments; ``scheduler`` runs what is left."""
    from vsr.formats import default_codec
    from vsr.video.join import join
    from vsr.video.source import VideoSource

    t0 = time.perf_counter()
    head = VideoSource(src, stream, deinterlace=deinterlace)
    info_src, stream_index, colour, hdr = head.info, head.stream.index, head.colour, head.info.hdr
    deinterlace = head.deinterlace  # decided once for the whole video
    head.close()
    m = probe(src, stream_index)
    codec = opts.codec or default_codec(dst.suffix, info_src.hdr is not None, info_src.extras.get("alpha", False),
                                        info_src.codec)
    check_encoder(dst, codec)
    opts = EncodeOptions(codec=codec, crf=opts.crf, preset=opts.preset, pix_fmt=opts.pix_fmt, threads=opts.threads,
                         convert_threads=opts.convert_threads)
    halo = Halo.of(int(getattr(model, "frames", 1)), warmup_of(model, info), reach=0 if deinterlace == "off" else 1)
    segments = plan(m, segment_seconds, halo)
    from vsr.weightfile import weights_id

    from vsr import __version__

    settings = {"vsr": __version__, "model": info.name, "weights": weights_id(info), "scale": info.scale, "codec": opts.codec,
                "crf": opts.crf, "preset": opts.preset, "pix_fmt": opts.pix_fmt, "stream": stream_index, "tile": tile,
                "backend": backend, "precision": precision, "halo": asdict(halo), "deinterlace": deinterlace}
    journal, status = Journal.open(dst, fingerprint(src), settings, [s.to_json() for s in segments], restart)
    kept = journal.done
    progress = Progress(total=len(m.pts), done=sum(s.end - s.first for s in segments if s.index in kept))
    if on_start:
        on_start((info_src, status, len(kept), len(segments)), progress)
    seen: set[str] = set()

    def warn_once(msg: str) -> None:
        if msg not in seen:
            seen.add(msg)
            warn(msg)

    def planned(i: int, without=()) -> list[int]:
        without = set(without)
        return [p for p in m.pts[segments[i].first:segments[i].end] if p not in without]

    def finish(i: int, data: bytes, pts: list[int]) -> None:  # what did not decode is recorded, for the join
        journal.finish_segment(i, data, len(pts), sorted(set(planned(i)) - set(pts)))

    todo = [(Task.make(m, s, colour, opts, info_src.width, info_src.height, tile, hdr, deinterlace, info_src.rate),
             lambda s=s: segment_source(src, stream_index, s))  # read when the segment starts: memory stays small
            for s in segments if s.index not in kept]
    try:
        scheduler.run(todo, finish, progress, stop, warn_once)
    except Stopped:
        raise Interrupted(journal.folder, len(journal.done), len(segments)) from None
    except Exception:
        if not journal.done:  # failed before any segment was kept (an encoder refusing its settings): nothing to resume
            journal.remove()
        raise
    if stop.is_set():
        raise Interrupted(journal.folder, len(journal.done), len(segments))
    done = journal.data["done"]
    join(dst, src, stream_index, [journal.segment_path(s.index) for s in segments],
         [planned(s.index, done[str(s.index)]["lost"]) for s in segments], colour, info_src.rotation, warn_once)
    journal.remove()
    frames = sum(v["frames"] for v in done.values())
    kept_frames = sum(done[str(i)]["frames"] for i in kept)
    duration = m.seconds(m.pts[-1]) - m.seconds(m.pts[0]) + (1 / float(info_src.rate) if info_src.rate else 0)
    return JobResult(frames=frames, duration=duration, elapsed=time.perf_counter() - t0, segments=len(segments),
                     kept=len(kept), status=status, kept_frames=kept_frames, lost=len(m.pts) - frames,
                     truncated=m.damaged)


class Interrupted(VsrError):
    """Stopped between or inside segments: the finished ones are in the journal."""

    def __init__(self, folder: Path, done: int, total: int):
        super().__init__(f"stopped: {done} of {total} segment(s) are kept in {folder}; run the same command to resume")
        self.folder, self.done, self.total = folder, done, total
