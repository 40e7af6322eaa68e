"""The ``vsr`` Typer app, the options its commands share, and how a command gets its model's runner.

Every user-facing failure is a ``VsrError`` (or an engine's ``BackendError``): one ``error: …`` line on stderr
and a non-zero exit code, never a traceback. Heavy modules (torch, PyAV, engines) load inside the commands that
need them.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="vsr: learned super-resolution for video and images.\n\nExample: vsr upscale in.mp4 out.mp4 -s 2",
)

ScaleOpt = Annotated[int, typer.Option("--scale", "-s", help="upscaling factor: 2, 3 or 4 (the scales a model ships)")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="model name or .safetensors path (see `vsr models`)")]
BackendOpt = Annotated[str, typer.Option(help="auto | torch | openvino | tensorrt")]
PrecisionOpt = Annotated[str, typer.Option(help="auto | fp32 | bf16 | fp16")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def scale_for(model_ref: str | None, scale: int) -> int:
    """The scale a command works at: a weight file's own, else ``--scale``."""
    from vsr.zoo import file_scale, looks_like_path

    return file_scale(model_ref) if model_ref and looks_like_path(model_ref) else scale


def load_model(model_ref: str | None, scale: int, job: str):
    """(model, info) for ``-m`` (a shipped name, bicubic, or a weight file) or the job's default at ``scale``."""
    from vsr.zoo import default_model, load_model as load, looks_like_path

    ref = model_ref or default_model(job, scale)
    return load(ref, None if looks_like_path(ref) else scale)


def load_runner(model_ref: str | None, scale: int, job: str, backend: str, precision: str, quiet: bool,
                shape: tuple[int, int] | None = None, io: str = "u8"):
    """(runner, info): the model on its backend, compiled ahead for ``shape`` where the backend compiles."""
    from engines import Identity, create_runner
    from vsr.weightfile import weights_id

    model, info = load_model(model_ref, scale, job)
    runner = create_runner(model, backend=backend, precision=precision,
                           identity=Identity.of(model, weights_id(info), info.name), warn=say, shape=shape, io=io)
    if not quiet:
        say(f"model {info.name} ×{info.scale} ({info.frames} frame{'s' if info.frames > 1 else ''}"
            f"{', recurrent' if runner.d.recurrent else ''}) on {runner.describe()}")
    return runner, info


def is_user_error(e: BaseException) -> bool:
    """A failure the user can act on: shown as one line. Engines are only imported once a command used them."""
    from vsr.errors import VsrError

    engine_errors = sys.modules.get("engines.errors")
    return isinstance(e, VsrError) or (engine_errors is not None and isinstance(e, engine_errors.BackendError))
