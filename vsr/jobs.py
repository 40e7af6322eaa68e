"""``vsr upscale``: one route for every video job, a file or a folder of files, here or on Ray.

    Settings (the command's options) → per input file: probe → runner → plan → journal → tasks → scheduler → join

A video file is cut at keyframes into segments (:mod:`vsr.segments`); the journal (:mod:`vsr.journal`) records
each finished segment as soon as its file is on disk, so a crash loses at most the segments being upscaled and the
same command continues the job; the join writes the output under a temporary name and renames it, then the work
folder goes. A run in one pass (``--segment-seconds 0``, or a folder of frames in or out) is the same job with one
task over the whole input, written straight to the output, and no journal. A folder of videos is one job: each file
has its own journal, finished files are kept by a rerun, and a failed file is reported and retried next time.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vsr.errors import Stopped, VsrError
from vsr.journal import Journal, fingerprint, work_dir, write_atomic
from vsr.runner import Choice
from vsr.segments import FrameCount, Halo, Pictures, Task, frames_out, plan, run_segment, upscale_segment
from vsr.video.encoder import EncodeOptions, check_encoder, check_quality, choose_pix_fmt, players_note

DEFAULT_WARMUP = 16  # frames, for a recurrent model whose weights do not say (benchmarks/warmup.py measures it)
DONE_FILE = ".vsr-done.json"  # in a folder job's output folder: which outputs it finished, from what


@dataclass(frozen=True)
class Settings:
    """What ``vsr upscale`` was asked to do: the one object handed down from the command line."""

    model: str | None = None  # a shipped name, bicubic, or a weight file (None: the default)
    scale: int | None = None  # None: 2, or a weight file's own scale
    backend: str = "auto"
    precision: str = "auto"
    tile: int = 0
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    stream: int | None = None
    fps: float = 25.0  # an image sequence's frame rate
    deinterlace: str = "auto"
    segment_seconds: float = 30.0  # 0: one pass, no journal
    temporal: str = "auto"  # the temporal stage: auto (on for models that see one frame at a time), on, off
    restart: bool = False
    overwrite: bool = False
    ray: bool = False
    ray_address: str | None = None


class Reporter:
    """What a job tells its user: ``say`` (what it does), ``warn`` (what it had to change or leave out) and one
    progress over frames. This one keeps quiet; the command line's shows a bar (vsr.cli.progress)."""

    def say(self, msg: str) -> None:
        pass

    def warn(self, msg: str) -> None:
        pass

    def start(self, total: int | None, done: int) -> None:
        pass

    def update(self, done: int, total: int | None) -> None:
        pass

    def error(self, msg: str) -> None:
        """One file of a folder failed (the job goes on)."""

    def close(self) -> None:
        pass

    def batch(self, done: float, total: float, what: str) -> None:
        """A folder job's progress over all its files (``done`` of ``total``: frames × pixels from the headers;
        ``what``: "3/120 videos"); between its files, ``close`` ends one file's progress, not this."""

    def batch_end(self) -> None:
        pass


class _InBatch(Reporter):
    """One file of a folder job: its progress also moves the folder's, by the file's share of the work."""

    def __init__(self, ui: Reporter, before: float, share: float, total: float, what: str):
        self.ui, self.before, self.share, self.total, self.what = ui, before, share, total, what
        self.say, self.warn, self.error, self.close = ui.say, ui.warn, ui.error, ui.close

    def start(self, total: int | None, done: int) -> None:
        self.ui.start(total, done)
        self.update(done, total)

    def update(self, done: int, total: int | None) -> None:
        self.ui.update(done, total)
        part = min(done / total, 1.0) if total else 0.0
        self.ui.batch(self.before + part * self.share, self.total, self.what)


@dataclass
class JobResult:
    output: Path
    frames: int
    duration: float  # seconds of video written
    elapsed: float
    segments: int = 1
    kept: int = 0  # segments an earlier run had finished
    kept_frames: int = 0
    lost: int = 0  # frames the input lists that could not be decoded (damaged packets)
    truncated: bool = False  # the container could not be read to its end
    status: str = "new"  # what became of an earlier run: new, resumed, or why it was discarded

    @property
    def fps(self) -> float:
        return (self.frames - self.kept_frames) / self.elapsed if self.elapsed else 0.0


@dataclass
class ModelRef:
    """What a worker needs to build the runner: the weight file's bytes travel, not a path."""

    choice: Choice
    data: bytes | None  # the weight file (None: a shipped model every worker has)
    backend: str
    precision: str
    file: str = ""  # the weight file's name, where its bytes travel


def temporal_for(mode: str, runner):
    """The temporal stage's settings where it runs (vsr.temporal.Temporal), else None: ``auto`` runs it after learned
    models that see one frame at a time (single-image models, community files); ``on`` after any model."""
    from vsr.temporal import MODES, Temporal

    if mode not in MODES:
        raise VsrError(f"--temporal {mode!r}: use auto, on or off")
    one_frame = runner.d.frames == 1 and not runner.d.recurrent
    learned = getattr(runner.model, "arch", "") != "bicubic"  # (interpolation cannot flicker more than its input)
    return Temporal() if mode == "on" or (mode == "auto" and one_frame and learned) else None


def warmup_of(model, info) -> int:
    if not getattr(model, "state_channels", 0):
        return 0
    return int(info.validation.get("warmup_frames", DEFAULT_WARMUP))


def _pictures(folder: Path) -> int:
    """The frames a folder of frames' work folder holds."""
    return sum(1 for p in folder.iterdir() if p.name != "journal.json" and not p.name.startswith(".")) \
        if folder.is_dir() else 0


class Local:
    """Segments one after another in this process, with one runner (its engine built once)."""

    def __init__(self, runner):
        self.runner = runner

    def run(self, todo: list[tuple[Task, Callable[[], bytes]]], done: Callable[[int, bytes, list[int]], None],
            count: FrameCount, stop: threading.Event, warn: Callable[[str], None]) -> None:
        for task, source in todo:
            data, pts = upscale_segment(task, source(), self.runner, stop=stop, warn=warn,
                                        on_frame=lambda _n: count.add(1))
            done(task.index, data, pts)

    def close(self) -> None:
        pass


def is_video_folder(path: Path) -> bool:
    """Videos in it, or no frames in it and videos in its subfolders (a library sorted into folders)."""
    from vsr.formats import list_images, list_videos, videos_under

    return path.is_dir() and (bool(list_videos(path)) or (not list_images(path) and bool(videos_under(path))))


def upscale(src: Path, dst: Path, settings: Settings, ui: Reporter | None = None,
            stop: threading.Event | None = None) -> list[JobResult]:
    """Upscale a video file, a folder of frames or a folder of videos to ``dst``."""
    job = Job(settings, ui or Reporter(), stop or threading.Event())
    try:
        if settings.ray:  # first, before any file is touched: a cluster that does not answer is an error by itself
            from vsr.ray_jobs import RayScheduler

            job.scheduler = RayScheduler(address=settings.ray_address)
        if is_video_folder(src):
            return job.folder(src, dst)
        job.check_paths(src, dst)
        return [job.file(src, dst)]
    finally:
        job.close()


class Job:
    """One run of ``vsr upscale``: its settings, its model (loaded once, for every file) and its scheduler."""

    def __init__(self, settings: Settings, ui: Reporter, stop: threading.Event):
        self.s, self.ui, self.stop = settings, ui, stop
        self.runner = self.info = self.choice = self.scheduler = self.temporal = None
        self.runners: dict[Choice, tuple] = {}  # (runner, info, temporal) of each model loaded
        self.fixed = False  # a runner given by use(): every file runs it
        self.switched = False  # the model changed since the scheduler was given one (-m auto, file by file)
        self.seen: set[str] = set()
        self.loading = 0.0  # seconds spent loading the model and building its engine (not the job's rate)

    @property
    def auto(self) -> bool:
        """Whether the model is chosen per file from the file itself (-m auto, the default): vsr.auto."""
        from vsr.auto import AUTO

        return not self.fixed and self.s.model in (None, AUTO)

    def use(self, runner, info=None) -> Job:
        """Run with a runner built elsewhere (tests, benchmarks) instead of loading the settings' model."""
        from vsr.weightfile import WeightInfo

        self.runner = runner
        self.info = info or WeightInfo(name=getattr(runner.model, "arch", "model"), arch=getattr(runner.model, "arch", ""),
                                       hparams=dict(getattr(runner.model, "hparams", {})), scale=runner.scale,
                                       frames=runner.frames)
        self.choice = Choice(self.info.name, runner.scale, runner.scale)
        self.temporal = temporal_for(self.s.temporal, runner)
        self.fixed = True
        return self

    def warn_once(self, msg: str) -> None:
        if msg not in self.seen:
            self.seen.add(msg)
            self.ui.warn(msg)

    def check_paths(self, src: Path, dst: Path) -> None:
        from vsr.formats import CONTAINERS

        if not src.exists():
            raise VsrError(f"{src}: no such file or folder")
        if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(dst, src)):
            raise VsrError("the output would overwrite the input")
        if dst.exists() and not self.s.overwrite:
            raise VsrError(f"{dst} exists; pass --overwrite to replace it")
        if dst.suffix and dst.suffix.lower() not in CONTAINERS:
            raise VsrError(f"{dst}: unknown video container {dst.suffix}; use .mp4, .mkv, .mov or .webm (or a folder)")

    def one_pass(self, src: Path, dst: Path) -> bool:
        """Whether a file runs as one task: asked for, frames out (kept picture by picture instead), or a GIF out."""
        to_frames, gif = dst.suffix == "", dst.suffix.lower() == ".gif"  # (GIFs are short)
        if (src.is_dir() or to_frames or gif) and self.s.ray:
            raise VsrError("--ray cuts a video file into segments: it needs a video file in and a video file out"
                           + (" other than a GIF" if gif else ""))
        return to_frames or gif or self.s.segment_seconds <= 0

    def copy_target(self, src: Path, stream: int):
        """Where segments of the file's video are copied to (vsr.video.probe.copy_target); None, said, where they
        cannot be: the file then runs in one pass."""
        from vsr.video.probe import CannotCut, copy_target

        try:
            return copy_target(src, stream)
        except CannotCut as e:
            if self.s.ray:
                raise VsrError(f"{src}: {e}, and --ray runs segments: run without --ray") from None
            self.ui.warn(f"{e}: it runs in one pass, and an interrupted run starts over")
            return None

    def choice_for(self, src: Path) -> Choice | None:
        """The model for one input: with -m auto (the default), chosen from the file (vsr.auto: said in one line,
        before the model's); None where the settings name it (or a runner was given)."""
        if not self.auto:
            return None
        from vsr.auto import CLEAN, decide
        from vsr.runner import DEFAULT_SCALE, choose

        try:
            d = decide(src, self.s.scale or DEFAULT_SCALE, self.s.stream, self.s.fps)
        except VsrError as e:  # the probe read the file, so this is rare: the clean model, said
            self.ui.warn(f"auto: the input could not be measured ({e}); {CLEAN}")
            return choose(CLEAN, self.s.scale, "video")
        self.ui.say(d.line)
        return choose(d.model, self.s.scale, "video")

    def runner_for(self, info, choice: Choice | None = None) -> tuple[object, object]:
        """The model on its backend (``choice``, else the settings'), loaded the first time a file needs it (its
        engine compiled for that file's size) and kept for the job's other files."""
        if self.fixed:
            return self.runner, self.info
        from vsr.runner import choose, describe, open_runner

        choice = choice or self.choice or choose(self.s.model, self.s.scale, "video")
        if choice not in self.runners:
            t0 = time.perf_counter()
            runner, minfo = open_runner(choice, self.s.backend, self.s.precision, warn=self.ui.warn, say=self.ui.say,
                                        shape=(info.height, info.width), io="u16" if info.bits > 8 else "u8")
            if self.s.tile and runner.d.recurrent:
                raise VsrError("--tile cannot be used with a recurrent model (its state spans the whole frame)")
            temporal = temporal_for(self.s.temporal, runner)
            self.ui.say(describe(runner, minfo, choice) + ("; temporal stage on" if temporal is not None else ""))
            self.runners[choice] = (runner, minfo, temporal)
            self.loading = time.perf_counter() - t0
        self.switched |= self.runner is not None and choice != self.choice
        self.choice = choice
        self.runner, self.info, self.temporal = self.runners[choice]
        return self.runner, self.info

    def scheduler_for(self):
        if self.scheduler is None:
            self.scheduler = Local(self.runner)
        elif isinstance(self.scheduler, Local):
            self.scheduler.runner = self.runner
        elif getattr(self.scheduler, "model", True) is None or self.switched:  # Ray: connected before the model
            self.scheduler.use(self.model_ref())  # was chosen, or given another for this file
        self.switched = False
        return self.scheduler

    def model_ref(self) -> ModelRef:
        from vsr.zoo import WEIGHTS_DIR

        path = self.info.path
        if path is None or path.parent == WEIGHTS_DIR:
            return ModelRef(self.choice, None, self.s.backend, self.s.precision)
        return ModelRef(self.choice, path.read_bytes(), self.s.backend, self.s.precision, path.name)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()

    # ------------------------------------------------------------------ one file

    def file(self, src: Path, dst: Path) -> JobResult:
        """One input (a video file or a folder of frames) to ``dst``, under a lock on ``dst``."""
        from vsr.journal import output_lock

        with output_lock(dst):
            return self._file(src, dst)

    def _file(self, src: Path, dst: Path) -> JobResult:
        from vsr.formats import default_codec
        from vsr.video.source import VideoSource, open_source

        t0, self.loading = time.perf_counter(), 0.0
        one_pass = self.one_pass(src, dst)
        if src.is_dir():
            probe = open_source(src, stream=None, fps=self.s.fps)
        else:
            probe = VideoSource(src, self.s.stream, deinterlace=self.s.deinterlace, warn=self.warn_once,
                                scan=not one_pass)
        info = probe.info
        stream = probe.stream.index if hasattr(probe, "stream") else None
        deinterlace = getattr(probe, "deinterlace", "off")  # decided once, for the whole video
        target = None  # where a video's segments are copied to
        try:
            if not one_pass and not src.is_dir():
                target = self.copy_target(src, stream)
                one_pass = target is None
            m = None if one_pass else probe.packet_map()
        finally:
            probe.close()
        alpha = bool(info.extras.get("alpha"))
        opts, note = self.s.encode, None
        if dst.suffix:
            codec = opts.codec or default_codec(dst.suffix, info.hdr is not None, alpha, info.codec)
            check_encoder(dst, codec)
            if not opts.pix_fmt:
                note = players_note(dst, codec, choose_pix_fmt(codec, info.pix_fmt, info.bits, alpha))
            opts = dataclasses.replace(opts, codec=codec)
        check_quality(opts.codec if dst.suffix else None, opts.crf)
        runner, minfo = self.runner_for(info, self.choice_for(src))
        whole = {"colour": info.colour, "opts": opts, "width": info.width, "height": info.height, "tile": self.s.tile,
                 "hdr": info.hdr, "deinterlace": deinterlace, "rate": info.rate, "alpha": alpha, "stream": stream,
                 "fps": self.s.fps, "temporal": self.temporal}  # what every task shares: the whole video's
        self.ui.say(f"input: {info.description}")
        if note:
            self.ui.warn(note)
        t0 += self.loading
        if one_pass:
            return self._one_pass(src, dst, Task.whole(**whole), runner, minfo, info, t0)
        return self._segmented(src, dst, m, target, whole, runner, minfo, info, t0)

    def _one_pass(self, src: Path, dst: Path, task: Task, runner, minfo, info, t0: float) -> JobResult:
        pictures = frames_out(dst)
        start, warm = self._frames_kept(src, dst, task, runner, minfo) if pictures else (0, 0)
        count = FrameCount(info.total or 0, start)
        self.ui.start(info.total, start)
        count.on_change = lambda done, total: self.ui.update(done, total if total and done <= total else None)
        try:
            done = run_segment(task, src, runner, dst, overwrite=self.s.overwrite, stop=self.stop,
                               on_frame=lambda _n: count.add(1), warn=self.warn_once, start=start, warm=warm)
        except BaseException as e:
            kept = _pictures(work_dir(dst)) if pictures else 0
            if pictures and not kept:  # ended before any frame was kept: nothing to resume
                shutil.rmtree(work_dir(dst), ignore_errors=True)
            if isinstance(e, Stopped):
                total = info.total if info.total_exact else 0
                raise (Stopped(kept, total, work_dir(dst), dst, "frame(s)") if kept else Stopped(output=dst)) from None
            raise
        finally:
            self.ui.close()
        frames = start + len(done.pts)
        lost = done.expected - frames if done.expected and done.expected > frames else 0
        if done.decode_errors:
            self.ui.warn(f"{done.decode_errors} damaged packet(s) could not be decoded"
                         + (f"; {lost} frame(s) lost" if lost else ""))
        if done.truncated:
            self.ui.warn(f"the input is truncated or damaged: {frames} frame(s) decoded, fewer than its header "
                         "promises; every frame that decoded was upscaled")
        result = JobResult(dst, frames, done.duration, time.perf_counter() - t0, kept_frames=start, lost=lost,
                           truncated=done.truncated)
        kept_note = f", {start} frame(s) kept from an earlier run" if start else ""
        self.ui.say(f"wrote {dst}: {frames} frames, {result.duration:.2f} s of video, {result.fps:.1f} fps average "
                    f"({result.elapsed:.1f} s{kept_note})")
        return result

    def _frames_kept(self, src: Path, dst: Path, task: Task, runner, minfo) -> tuple[int, int]:
        """Frames out: the frames an earlier run of the same job left in the work folder are kept (its journal says
        whose they are), and this run starts at the last of them (written again: a power cut may have torn it),
        feeding the halo before it again. Returns (frames kept, halo)."""
        from vsr.formats import frame_file, frame_files, list_images

        halo = self.halo_for(runner, minfo, task.deinterlace)
        record = self.settings_record(minfo, task.stream, task.opts, halo, task.deinterlace)
        journal, status = Journal.open(dst, fingerprint(src), record, [], self.s.restart)
        for p in journal.folder.glob(".*"):  # a picture being written when the run was killed
            p.unlink(missing_ok=True)
        names = frame_files(list_images(src)) if src.is_dir() else map(frame_file, itertools.count(1))
        written = sum(1 for _ in itertools.takewhile(lambda n: (journal.folder / n).is_file(), names))
        start = max(0, written - 1)
        if status == "resumed" and start:
            self.ui.say(f"resuming: {start} frame(s) were written by an earlier run")
        elif status not in ("new", "resumed"):
            self.ui.say(f"starting over: {status} since the interrupted run")
        return start, halo.before

    def halo_for(self, runner, minfo, deinterlace: str) -> Halo:
        """Frames fed around the ones a segment (or a resumed run) outputs."""
        warmup = warmup_of(runner.model, minfo) + (self.temporal.warmup if self.temporal is not None else 0)
        return Halo.of(int(getattr(runner.model, "frames", 1)), warmup, reach=0 if deinterlace == "off" else 1)

    def settings_record(self, minfo, stream_index: int, opts: EncodeOptions, halo: Halo, deinterlace: str) -> dict:
        """What a journal (and a folder's record of finished files) compares to tell the same job from another."""
        from vsr import __version__
        from vsr.weightfile import weights_id

        return {"vsr": __version__, "model": minfo.name, "weights": weights_id(minfo), "scale": self.choice.scale,
                "codec": opts.codec, "crf": opts.crf, "preset": opts.preset, "pix_fmt": opts.pix_fmt,
                "stream": stream_index, "tile": self.s.tile, "backend": self.s.backend,
                "precision": self.s.precision, "halo": dataclasses.asdict(halo), "deinterlace": deinterlace,
                "temporal": dataclasses.asdict(self.temporal) if self.temporal is not None else None}

    def _segmented(self, src: Path, dst: Path, m, target, whole: dict, runner, minfo, info, t0: float) -> JobResult:
        from vsr.video.join import join
        from vsr.video.probe import PacketReader

        halo = self.halo_for(runner, minfo, whole["deinterlace"])
        segments = plan(m, self.s.segment_seconds, halo)
        record = self.settings_record(minfo, whole["stream"], whole["opts"], halo, whole["deinterlace"])
        journal, status = Journal.open(dst, fingerprint(src), record, [s.to_json() for s in segments], self.s.restart)
        kept = journal.done
        if status == "resumed" and kept:
            self.ui.say(f"resuming: {len(kept)} of {len(segments)} segment(s) were finished by an earlier run")
        elif status not in ("new", "resumed"):
            self.ui.say(f"starting over: {status} since the interrupted run")

        def planned(i: int, without=()) -> list[int]:
            without = set(without)
            return [p for p in m.pts[segments[i].first:segments[i].end] if p not in without]

        def finish(i: int, data: bytes, pts: list[int]) -> None:  # what did not decode is recorded, for the join
            journal.finish_segment(i, data, len(pts), sorted(set(planned(i)) - set(pts)))

        count = FrameCount(len(m.pts), sum(s.end - s.first for s in segments if s.index in kept))
        self.ui.start(count.total, count.done)
        count.on_change = self.ui.update
        reader = PacketReader(src, whole["stream"], m, target) if target is not None else None

        def source(s):  # read as it starts
            return reader.read(s.decode_from, s.decode_to) if reader else Pictures(src, s.decode_from, s.decode_to)

        todo = [(Task.make(m, s, **whole), lambda s=s: source(s)) for s in segments if s.index not in kept]
        try:
            self.scheduler_for().run(todo, finish, count, self.stop, self.warn_once)
            if self.stop.is_set():
                raise Stopped()
        except Stopped:
            raise Stopped(len(journal.done), len(segments), journal.folder, dst) from None
        except BaseException:
            if not journal.done:  # failed before any segment was kept (an encoder refusing its settings)
                journal.remove()
            raise
        finally:
            if reader:
                reader.close()
            self.ui.close()
        done = journal.data["done"]
        join(dst, src, whole["stream"], [journal.segment_path(s.index) for s in segments],
             [planned(s.index, done[str(s.index)]["lost"]) for s in segments], info.colour, info.rotation,
             self.warn_once, info.rate)
        journal.remove()
        frames = sum(v["frames"] for v in done.values())
        duration = m.seconds(m.pts[-1]) - m.seconds(m.pts[0]) + (1 / float(info.rate) if info.rate else 0)
        result = JobResult(dst, frames, duration, time.perf_counter() - t0, len(segments), len(kept),
                           sum(done[str(i)]["frames"] for i in kept), len(m.pts) - frames, m.damaged, status)
        if result.lost > 0:
            self.ui.warn(f"{result.lost} of {len(m.pts)} frame(s) could not be decoded (damaged input) and are missing "
                         "from the output; the rest keep their timestamps")
        if result.truncated:
            self.ui.warn("the input ends early (truncated or damaged); everything before the damage was upscaled")
        kept_note = f", {result.kept} segment(s) kept from an earlier run" if result.kept else ""
        self.ui.say(f"wrote {dst}: {frames} frames, {duration:.2f} s of video, {result.fps:.1f} fps average "
                    f"({result.elapsed:.1f} s, {result.segments} segment(s){kept_note})")
        return result

    # ------------------------------------------------------------------ a folder of videos

    def folder(self, src: Path, dst: Path) -> list[JobResult]:
        """Every video in ``src`` and its subfolders into ``dst`` (same names, same subfolders), each with its own
        journal. A rerun of the same command keeps the outputs it finished (same input, same settings), resumes the
        interrupted one and retries those that failed; a bad file is reported and skipped, and the exit code says
        that something failed."""
        from vsr.errors import about
        from vsr.formats import VIDEO_EXTS, output_names, videos_under
        from vsr.journal import output_lock

        if dst.exists() and not dst.is_dir():
            raise VsrError(f"{dst}: exists and is not a folder (a folder of videos goes to a folder)")
        if not dst.exists() and dst.suffix.lower() in VIDEO_EXTS:  # one file was meant: not a folder named so
            raise VsrError(f"{dst}: a folder of videos goes to a folder, not to one {dst.suffix} file: name a folder")
        if dst.resolve() == src.resolve():
            raise VsrError("the output folder is the input folder: the outputs would overwrite the inputs")
        files = videos_under(src, skip=dst)  # an output folder inside the input is not read back
        outs = {}
        for here, group in itertools.groupby(files, key=lambda f: f.parent):  # names meet only within one folder
            for f, name in output_names(list(group)).items():
                outs[f] = dst / here.relative_to(src) / name
        dst.mkdir(parents=True, exist_ok=True)
        finished = _Finished(dst, self.s)
        results, failed, kept = [], [], 0
        from vsr.video.source import pixels_to_make

        work = [pixels_to_make(f) for f in files]  # each file's share of the folder's progress (headers only)
        known = [w for w in work if w]
        work = [w or (sum(known) / len(known) if known else 1.0) for w in work]
        ui, done, total = self.ui, 0.0, sum(work)  # total: what this run upscales (kept files leave it)
        try:
            with output_lock(dst):
                for i, f in enumerate(files):
                    out, shown = outs[f], f.relative_to(src).as_posix()
                    record = out.relative_to(dst).as_posix()  # (a name alone in the folder itself, as before)
                    key = finished.key(f)
                    if out.exists() and not work_dir(out).is_dir():
                        if finished.has(record, key) and not self.s.restart:
                            kept += 1
                            total -= work[i]
                            ui.say(f"[{i + 1}/{len(files)}] {shown}: kept (finished by an earlier run)")
                            continue
                        if not self.s.overwrite and not finished.has(record, key):
                            total -= work[i]
                            ui.say(f"skipping {shown}: {out} exists and was not made from it with these settings "
                                   "(--overwrite replaces it)")
                            continue
                    ui.say(f"[{i + 1}/{len(files)}] {shown}" + (f" → {out.name}" if out.name != f.name else ""))
                    ui.batch(done, total, f"{i}/{len(files)} videos")
                    self.ui = _InBatch(ui, done, work[i], total, f"{i}/{len(files)} videos")
                    try:
                        if out.exists() and not work_dir(out).is_dir():
                            out.unlink()  # (replaced: --overwrite, --restart, or other settings)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        results.append(self.file(f, out))
                        finished.add(record, key)
                    except VsrError as e:
                        failed.append(shown)
                        ui.error(about(f, e))
                    finally:
                        self.ui, done = ui, done + work[i]
        finally:
            ui.batch_end()
        if kept:
            self.ui.say(f"{kept} of {len(files)} video(s) were finished by an earlier run and kept")
        if failed:
            raise VsrError(f"{len(failed)} of {len(files)} video(s) failed: {', '.join(failed)}")
        return results


class _Finished:
    """A folder job's record of the outputs it finished and from what (input fingerprint, settings), beside them."""

    def __init__(self, folder: Path, settings: Settings):
        import json

        from vsr import __version__

        self.path = folder / DONE_FILE
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        what = dataclasses.asdict(settings)
        for k in ("restart", "overwrite", "ray", "ray_address"):  # how it runs, not what it makes
            what.pop(k)
        self.what = {**what, "vsr": __version__, "weights": _weights(settings)}

    def key(self, src: Path) -> dict:
        return {"input": fingerprint(src), "settings": self.what}

    def has(self, name: str, key: dict) -> bool:
        import json

        return self.data.get(name) == json.loads(json.dumps(key, default=str))

    def add(self, name: str, key: dict) -> None:
        import json

        self.data[name] = json.loads(json.dumps(key, default=str))
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode())


def _weights(settings: Settings) -> str:
    """The weights a folder job's settings run: with -m auto, those of both models it chooses between."""
    from vsr.auto import AUTO, CLEAN, REAL
    from vsr.runner import choose, weights_of

    if settings.model not in (None, AUTO):
        return weights_of(choose(settings.model, settings.scale, "video"))
    out = []
    for name in (CLEAN, REAL):
        try:
            out.append(weights_of(choose(name, settings.scale, "video")))
        except VsrError:  # no weights at this scale: auto chooses the other
            out.append("")
    return "+".join(out)
