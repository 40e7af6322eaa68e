"""``vsr upscale`` for video files: one file through its journal of segments, or a folder of files as one job, here
or on Ray; progress, signals and what to say when a run stops or resumes."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import typer

from vsr.cli.app import say, stderr_console
from vsr.errors import VsrError


class JobProgress:
    """One bar for a whole job: frames done/total (segments an earlier run kept count as done), fps, ETA."""

    def __init__(self, quiet: bool, label: str = "upscaling"):
        self.quiet, self.label, self.p = quiet, label, None

    def start(self, total: int, done: int) -> None:
        if self.quiet:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.p = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                          TextColumn("{task.fields[fps]:.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"),
                          TimeRemainingColumn(), console=stderr_console(), transient=True)
        self.p.start()
        self.task = self.p.add_task("frames", total=total, completed=done, fps=0.0)
        self.t0, self.base = time.perf_counter(), done

    def update(self, done: int, total: int) -> None:
        if self.p is not None:
            elapsed = time.perf_counter() - self.t0
            self.p.update(self.task, completed=done, total=total,
                          fps=(done - self.base) / elapsed if elapsed else 0.0)

    def warn(self, msg: str) -> None:
        text = msg if msg.startswith("warning:") else f"warning: {msg}"
        if self.p is not None:
            self.p.console.print(text, markup=False, soft_wrap=True)
        else:
            say(text)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None


class _Signals:
    """SIGINT/SIGTERM set ``stop``; the job ends between frames and keeps what it finished."""

    def __enter__(self):
        self.stop, self.got = threading.Event(), {}

        def on_signal(signum, _frame):
            self.got["signal"] = signum
            self.stop.set()

        self.old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)

    @property
    def code(self) -> int:
        return 128 + self.got.get("signal", signal.SIGINT)


def _scheduler(runner, model_ref, ray: bool, ray_address: str | None):
    from vsr.jobs import Local

    if not ray:
        return Local(runner)
    from vsr.ray_jobs import RayScheduler

    return RayScheduler(model_ref, address=ray_address)


def model_ref_for(info, backend: str, precision: str):
    from vsr.jobs import ModelRef
    from vsr.zoo import entry

    shipped = info.path is not None and entry(info.name) is not None and info.path.parent.name == "weights"
    data = None if (shipped or info.path is None) else info.path.read_bytes()
    return ModelRef(name=info.name, scale=info.scale, data=data, suffix=info.path.suffix if info.path else "",
                    backend=backend, precision=precision)


def run_job(src: Path, dst: Path, runner, info, *, backend: str, precision: str, opts, stream, tile: int,
            segment_seconds: float, restart: bool, ray: bool, ray_address: str | None, quiet: bool,
            scheduler=None, deinterlace: str = "auto") -> None:
    """One video file through its journal; prints what it kept, what it wrote, or how to resume."""
    from vsr.jobs import Interrupted, upscale_file

    progress = JobProgress(quiet)
    scheduler = scheduler or _scheduler(runner, model_ref_for(info, backend, precision), ray, ray_address)

    def on_start(what, prog):
        src_info, status, kept, total = what
        if not quiet:
            say(f"input: {src_info.description}")
            if status == "resumed" and kept:
                say(f"resuming: {kept} of {total} segment(s) were finished by an earlier run")
            elif status not in ("new", "resumed"):
                say(f"starting over: {status} since the interrupted run")
        progress.start(prog.total, prog.done)
        prog.on_change = progress.update

    with _Signals() as sig:
        try:
            result = upscale_file(src, dst, runner.model, info, backend=backend, precision=precision, opts=opts,
                                  stream=stream, tile=tile, segment_seconds=segment_seconds, restart=restart,
                                  scheduler=scheduler, stop=sig.stop, on_start=on_start, warn=progress.warn,
                                  deinterlace=deinterlace)
        except Interrupted as e:
            progress.close()
            say(f"interrupted: {dst} was not written; {e.done} of {e.total} segment(s) are kept in {e.folder} "
                "(run the same command to resume)")
            raise typer.Exit(sig.code) from None
        finally:
            progress.close()
            if ray:
                scheduler.close()
    if result.lost > 0:
        say(f"warning: {result.lost} of {result.frames + result.lost} frame(s) could not be decoded (damaged input) "
            "and are missing from the output; the rest keep their timestamps")
    if result.truncated:
        say("warning: the input ends early (truncated or damaged); everything before the damage was upscaled")
    if not quiet:
        kept = f", {result.kept} segment(s) kept from an earlier run" if result.kept else ""
        say(f"wrote {dst}: {result.frames} frames, {result.duration:.2f} s of video, {result.fps:.1f} fps average "
            f"({result.elapsed:.1f} s, {result.segments} segment(s){kept})")


def upscale_folder(src: Path, dst: Path, *, model, scale: int, backend: str, precision: str, tile: int, opts, stream,
                   overwrite: bool, segment_seconds: float, restart: bool, ray: bool, ray_address: str | None,
                   quiet: bool, deinterlace: str = "auto") -> None:
    """Every video in ``src`` into ``dst`` (same names), each with its own journal, on one scheduler; a bad file
    is reported and skipped, and the exit code says that something failed."""
    from vsr.cli.app import load_runner
    from vsr.formats import VIDEO_EXTS, natural_key, output_names

    if dst.exists() and not dst.is_dir():
        raise VsrError(f"{dst}: exists and is not a folder (a folder of videos goes to a folder)")
    files = sorted((p for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS), key=natural_key)
    names = output_names(files)
    dst.mkdir(parents=True, exist_ok=True)
    runner, info = load_runner(model, scale, "video", backend, precision, quiet)
    scheduler = _scheduler(runner, model_ref_for(info, backend, precision), ray, ray_address)
    failed = []
    try:
        for i, f in enumerate(files):
            out = dst / names[f]
            if out.exists() and not overwrite:
                say(f"skipping {f.name}: {out} exists (--overwrite replaces it)")
                continue
            if not quiet:
                say(f"[{i + 1}/{len(files)}] {f.name}" + (f" → {out.name}" if out.name != f.name else ""))
            try:
                run_job(f, out, runner, info, backend=backend, precision=precision, opts=opts, stream=stream,
                        tile=tile, segment_seconds=segment_seconds or 1e9, restart=restart, ray=False,
                        ray_address=None, quiet=quiet, scheduler=scheduler, deinterlace=deinterlace)
            except VsrError as e:
                failed.append(f.name)
                say(f"error: {f.name}: {e}")
    finally:
        if ray:
            scheduler.close()
    if failed:
        raise VsrError(f"{len(failed)} of {len(files)} video(s) failed: {', '.join(failed)}")
