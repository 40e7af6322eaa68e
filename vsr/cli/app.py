"""The ``vsr`` Typer app, the options its commands share, and how a command gets its model's runner.

Every user-facing failure is a ``VsrError`` (or an engine's ``BackendError``): one ``error: …`` line on stderr
and a non-zero exit code, never a traceback. Heavy modules (torch, PyAV, engines) load inside the commands that
need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="vsr: learned super-resolution for video and images.\n\nExample: vsr upscale in.mp4 out.mp4 -s 2",
)

ScaleOpt = Annotated[Optional[int], typer.Option("--scale", "-s", min=1, max=8, help="upscaling factor (default 2, or "
                    "a single-scale model's own; below a model's scale its output is resized down)")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="model name or .safetensors path (see `vsr models`)")]
BackendOpt = Annotated[str, typer.Option(help="auto | torch | openvino | tensorrt")]
PrecisionOpt = Annotated[str, typer.Option(help="auto | fp32 | bf16 | fp16 | int8 (OpenVINO, quantised with NNCF)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def count_bar(quiet: bool = False):
    """A bar over a count of things (pictures, frames of clips) on stderr: done/total, elapsed, ETA; gone when done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=stderr_console(), disable=quiet, transient=True)


def default_folder(input: Path, scale: int) -> Path:
    """``<folder>_x<scale>`` beside the input folder (``.`` and ``..`` named by where they lead)."""
    folder = input.resolve() if input.name in ("", "..") else input
    return folder.with_name(f"{folder.name}_x{scale}")


def positive(value: float | None) -> float | None:
    """A Typer callback: numbers that must be above zero (a frame rate)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0")
    return value


def load_runner(model_ref: str | None, scale: int | None, job: str, backend: str, precision: str, quiet: bool,
                shape: tuple[int, int] | None = None, io: str = "u8", announce: bool | None = None):
    """(runner, info): ``-m`` and ``-s`` resolved (vsr.runner.choose), the model on its backend, compiled ahead for
    ``shape`` where the backend compiles; says which model runs where unless ``quiet``, and announces a long first
    build (int8) unless ``announce`` is False (default: not ``quiet``)."""
    from vsr.runner import choose, describe, open_runner

    choice = choose(model_ref, scale, job)
    announce = not quiet if announce is None else announce
    # quantising takes longer than most pictures take to upscale: int8 for images only when asked for
    runner, info = open_runner(choice, backend, precision, warn=say, shape=shape, io=io, say=say if announce else None,
                               auto_int8=job != "image")
    if not quiet:
        say(describe(runner, info, choice))
    return runner, info


def is_user_error(e: BaseException) -> bool:
    """A failure the user can act on: shown as one line. Engines are only imported once a command used them."""
    from vsr.errors import VsrError

    engine_errors = sys.modules.get("engines.errors")
    return isinstance(e, VsrError) or (engine_errors is not None and isinstance(e, engine_errors.BackendError))
