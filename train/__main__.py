"""``python -m train CONFIG [--set k=v] [--resume RUN]`` and ``python -m train export RUN OUT``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.errors import VsrError

train_app = typer.Typer(add_completion=False, help="Train a vsr model.")
export_app = typer.Typer(add_completion=False)


@train_app.command()
def run(
    config: Annotated[Optional[Path], typer.Argument(help="TOML config (see train/configs/)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override, e.g. --set optim.lr=1e-4")] = [],
    resume: Annotated[Optional[Path], typer.Option(help="run folder to continue")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train a model. Example: python -m train train/configs/sr-lite_x2.toml --set optim.steps=2000"""
    from train.config import load_config
    from train.loop import Interrupted, train

    if config is None and resume is None:
        raise VsrError("give a CONFIG file, or --resume RUN_DIR")
    if config is not None and resume is not None:
        raise VsrError("give either a CONFIG (a new run) or --resume RUN_DIR (its saved config, plus any --set)")
    cfg = load_config(config, set_) if config is not None else None
    try:
        run_dir = train(cfg, str(resume) if resume else None, quiet=quiet, overrides=set_ if resume else ())
    except Interrupted as e:
        typer.echo(f"interrupted: checkpoint saved; continue with: python -m train --resume {e.run_dir}", err=True)
        raise typer.Exit(128 + e.signum) from None
    typer.echo(f"done: {run_dir}")


@export_app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    out: Annotated[Path, typer.Argument(help="output .safetensors")],
    name: Annotated[Optional[str], typer.Option(help="model name stored in the file")] = None,
    last: Annotated[bool, typer.Option("--last", help="the latest checkpoint, not the best-validated one (GANs: "
                                                      "the best PSNR is the least adversarial step)")] = False,
) -> None:
    """Write a run's EMA weights in vsr's format. Example: python -m train export runs/edsr_x4 edsr_x4.safetensors"""
    from train.export import export as do_export

    path = do_export(run_dir, out, name, last=last)
    typer.echo(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app, args = (export_app, argv[1:]) if argv[:1] == ["export"] else (train_app, argv)
    try:
        app(args=args, prog_name="python -m train" + (" export" if app is export_app else ""), standalone_mode=False)
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
