"""What a long command shows while it works (one progress bar: done/total, fps, ETA), and how it is stopped
(SIGINT/SIGTERM set an event; the work ends between frames and keeps what it finished)."""

from __future__ import annotations

import signal
import threading
import time

from vsr.cli.app import say, stderr_console
from vsr.jobs import Reporter


class Progress(Reporter):
    """A job's messages on stderr and a bar over its frames (a folder job: one more over all its videos);
    ``quiet`` keeps only warnings and errors. A total of None (unknown, or an estimate that fell short) makes the
    bar indeterminate."""

    def __init__(self, quiet: bool, label: str = "upscaling"):
        self.quiet, self.label, self.p = quiet, label, None
        self.task = self.all = None

    def say(self, msg: str) -> None:
        if not self.quiet:
            self._print(msg)

    def warn(self, msg: str) -> None:
        self._print(msg if msg.startswith("warning:") else f"warning: {msg}")

    def error(self, msg: str) -> None:
        self._print(f"error: {msg}")

    def _print(self, text: str) -> None:
        if self.p is not None:
            self.p.console.print(text, markup=False, soft_wrap=True)
        else:
            say(text)

    def _bar(self):
        if self.p is None:
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self.p = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
                         TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                         console=stderr_console(), transient=True)
            self.p.start()
        return self.p

    def start(self, total: int | None, done: int) -> None:
        if self.quiet:
            return
        self.task = self._bar().add_task(self.label, total=total, completed=done, count="")
        self.t0, self.base = time.perf_counter(), done
        self.update(done, total)

    def update(self, done: int, total: int | None) -> None:
        if self.p is not None and self.task is not None:
            elapsed = time.perf_counter() - self.t0
            fps = (done - self.base) / elapsed if elapsed else 0.0
            self.p.update(self.task, completed=done, total=total,
                          count=f"{done}/{total if total else '?'} frames {fps:.1f} fps")

    def close(self) -> None:
        if self.p is not None and self.task is not None:
            self.p.remove_task(self.task)
        self.task = None
        if self.all is None:
            self.batch_end()

    def batch(self, done: float, total: float, what: str) -> None:
        if self.quiet:
            return
        if self.all is None:
            self.all = self._bar().add_task("all", total=total, count=what)
        self.p.update(self.all, completed=done, total=total, count=what)

    def batch_end(self) -> None:
        if self.p is not None:
            self.p.stop()
        self.p = self.task = self.all = None


class Signals:
    """SIGINT/SIGTERM set ``stop`` while inside; ``code`` is the exit code the signal asks for."""

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
