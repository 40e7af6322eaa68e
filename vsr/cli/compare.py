"""``vsr compare``: a few frames of one's own video (or an image) through several models next to bicubic, as one
self-contained HTML page with before/after sliders, 100 % crops, looping clips and each model's speed here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import BackendOpt, PrecisionOpt, QuietOpt, ScaleOpt, app, say
from vsr.compare import DEFAULT_FRAMES


@app.command()
def compare(
    input: Annotated[Path, typer.Argument(help="a video file or an image")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="models to compare, comma-separated: names, "
                     ".safetensors/.pth files, pulled community models (default: the job's default model); bicubic "
                     "is always the reference")] = None,
    at: Annotated[Optional[str], typer.Option(help="where in the video: seconds (90.5) or [h:]m:s (1:30.5); "
                                                   "default: the middle")] = None,
    frames: Annotated[int, typer.Option(min=1, max=64, help="frames to show (the clips' length)")] = DEFAULT_FRAMES,
    scale: ScaleOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="the page (default: "
                      "<input stem>_compare.html beside the input)")] = None,
    crop: Annotated[Optional[str], typer.Option(help="X,Y,W,H in input pixels: the crop to show at 100 % (default: "
                                                     "two, where the frame has the most detail)")] = None,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "auto",
    temporal: Annotated[str, typer.Option(help="the temporal stage, as vsr upscale runs it: auto (on for models "
                                               "that see one frame at a time), on, off")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="replace an existing page")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Compare models on a few frames of your own video (or an image): one HTML page, no server or network needed.

    Example: vsr compare film.mkv -m mf-fast,mf-fast-real,realesr-general-x4v3 --at 12:30
    """
    from vsr.cli.progress import Progress
    from vsr.compare import compare as make
    from vsr.compare import model_list, parse_crop, parse_time
    from vsr.errors import VsrError

    models = model_list(model)
    when = parse_time(at) if at is not None else None
    window = parse_crop(crop) if crop is not None else None
    out = output or input.with_name(f"{input.stem}_compare.html")
    if out.exists() and not overwrite:
        raise VsrError(f"{out} exists; pass --overwrite to replace it")
    if out.suffix.lower() not in (".html", ".htm"):
        raise VsrError(f"{out}: the page is HTML; name it .html")
    if not out.parent.is_dir():
        raise VsrError(f"{out.parent}: no such folder")
    page = make(input, out, models, scale=scale, at=when, frames=frames, crop=window, backend=backend,
                precision=precision, temporal=temporal, ui=Progress(quiet, label="comparing"))
    if not quiet:
        names = ", ".join(r.name for r in page.results[1:]) or "bicubic alone"
        say(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {names} next to bicubic; open it in a browser")
