"""``python -m train CONFIG [--data PATH] [--set k=v] [--resume RUN]``, ``python -m train export RUN OUT`` and
``python -m train validate WEIGHTS... --on SET``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.errors import VsrError

train_app = typer.Typer(add_completion=False, help="Train a vsr model.")
export_app = typer.Typer(add_completion=False)
validate_app = typer.Typer(add_completion=False)


@train_app.command()
def run(
    config: Annotated[Optional[Path], typer.Argument(help="TOML config (see train/configs/)")] = None,
    data: Annotated[list[str], typer.Option("--data", help="train on these images or videos instead of the config's "
                                                          "(a folder or a video file; repeatable)")] = [],
    set_: Annotated[list[str], typer.Option("--set", help="override, e.g. --set optim.lr=1e-4")] = [],
    resume: Annotated[Optional[Path], typer.Option(help="run folder to continue")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train a model.

    Example: python -m train train/configs/sr-lite_x2.toml --data ~/my_photos --set optim.steps=2000"""
    from train.config import load_config
    from train.loop import Interrupted, train

    if config is None and resume is None:
        raise VsrError("give a CONFIG file, or --resume RUN_DIR")
    if config is not None and resume is not None:
        raise VsrError("give either a CONFIG (a new run) or --resume RUN_DIR (its saved config, plus any --set)")
    overrides = [*data_overrides(data), *set_]
    cfg = load_config(config, overrides) if config is not None else None
    try:
        run_dir = train(cfg, str(resume) if resume else None, quiet=quiet, overrides=overrides if resume else ())
    except Interrupted as e:
        typer.echo(f"interrupted: checkpoint saved; continue with: python -m train --resume {e.run_dir}", err=True)
        raise typer.Exit(128 + e.signum) from None
    typer.echo(f"done: {run_dir}")


def data_overrides(paths: list[str]) -> list[str]:
    """--data as overrides: the paths replace data.train, and data.exclude, which names clips of the configs' own
    data (../shared/data), is emptied so none of the user's files is left out by name."""
    if not paths:
        return []
    return [f"data.train={json.dumps([str(Path(p).expanduser()) for p in paths])}", "data.exclude=[]"]


@export_app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    out: Annotated[Path, typer.Argument(help="output .safetensors")],
    name: Annotated[Optional[str], typer.Option(
        help="model name stored in the file (default: the run's name, or the output file's; a shipped model's name "
             "only when given here)")] = None,
    last: Annotated[bool, typer.Option("--last", help="the latest checkpoint, not the best-validated one (GANs: "
                                                      "the best PSNR is the least adversarial step)")] = False,
) -> None:
    """Write a run's EMA weights in vsr's format. Example: python -m train export runs/edsr_x4 edsr_x4.safetensors"""
    from train.export import export as do_export

    path = do_export(run_dir, out, name, last=last)
    typer.echo(f"wrote {path}")


@validate_app.command()
def validate(
    weights: Annotated[list[Path], typer.Argument(help="vsr weight files")],
    on: Annotated[Path, typer.Option("--on", help="validation set: a folder of clips, a video or images")],
    crf: Annotated[int, typer.Option(help="LR clips through libx264 at this CRF (real-footage models); "
                                          "0 = clean BI")] = 0,
    max_frames: Annotated[int, typer.Option(help="first frames of each clip")] = 20,
    write: Annotated[bool, typer.Option("--write", help="record the scores in each file (tensors untouched)")] = False,
) -> None:
    """Score weight files as training validates them, e.g. ones trained before a validation set was retired.
    Example: python -m train validate vsr/weights/mf-fast_x4.safetensors --on ../shared/data/val_video --write"""
    from train.validate import revalidate

    for w in weights:
        scores = revalidate(w, on, crf=crf, max_frames=max_frames, write=write)
        per = ", ".join(f"{k} {v['psnr']:.2f}" for k, v in scores.items() if isinstance(v, dict))
        typer.echo(f"{w}: {scores['psnr']:.2f} dB PSNR-Y ({per}){' (recorded)' if write else ''}")


SUBCOMMANDS = {"export": export_app, "validate": validate_app}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sub = argv[0] if argv and argv[0] in SUBCOMMANDS else ""
    app, args = (SUBCOMMANDS[sub], argv[1:]) if sub else (train_app, argv)
    try:
        app(args=args, prog_name=f"python -m train {sub}".rstrip(), standalone_mode=False)
    except VsrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except typer.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except typer.TyperException as e:  # usage errors
        print(f"error: {e.format_message()}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
