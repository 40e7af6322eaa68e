"""``vsr image``: upscale an image or a folder of images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import BackendOpt, ModelOpt, PrecisionOpt, QuietOpt, ScaleOpt, app, load_runner, say, stderr_console
from vsr.errors import VsrError
from vsr.picture import DEFAULT_MAX_PIXELS


@app.command()
def image(
    input: Annotated[Path, typer.Argument(help="an image file or a folder of images")],
    output: Annotated[Optional[Path], typer.Argument(help="output file (or folder); default <stem>_x<scale>.png")] = None,
    scale: ScaleOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "auto",
    tile: Annotated[int, typer.Option(min=0, help="tile size in input pixels (0 = whole image)")] = 384,
    overwrite: Annotated[bool, typer.Option(help="replace existing outputs")] = False,
    max_pixels: Annotated[int, typer.Option(min=1, help="refuse inputs, or outputs, with more pixels than this "
                                                 "(decompression bombs, files nothing can open)")] = DEFAULT_MAX_PIXELS,
    quiet: QuietOpt = False,
) -> None:
    """Upscale an image or every image in a folder.

    Example: vsr image photo.jpg -s 4   (writes photo_x4.png)
    """
    from vsr.formats import IMAGE_WRITERS, natural_key
    from vsr.picture import check_size, output_format, picture_size

    if not input.exists():
        raise VsrError(f"{input}: no such file or folder")
    from vsr.runner import choose

    scale = choose(model, scale, "image").scale
    if input.is_dir():
        files = sorted((p for p in input.iterdir() if p.is_file() and not p.name.startswith(".")), key=natural_key)
        if not files:
            raise VsrError(f"{input}: the folder is empty")
        out_dir = output or input.with_name(f"{input.name}_x{scale}")
        if out_dir.exists() and not out_dir.is_dir():
            raise VsrError(f"{out_dir}: exists and is not a folder")
        jobs = [(f, out_dir / (f.stem + (f.suffix.lower() if f.suffix.lower() in IMAGE_WRITERS else ".png")))
                for f in files]
    else:
        out = output or input.with_name(f"{input.stem}_x{scale}.png")
        if out.is_dir():
            out = out / f"{input.stem}_x{scale}.png"
        output_format(out)
        jobs = [(input, out)]
    if not overwrite:
        existing = [o for _, o in jobs if o.exists()]
        if existing and not input.is_dir():
            raise VsrError(f"{existing[0]} exists; pass --overwrite to replace it")
        if existing:
            jobs = [(i, o) for i, o in jobs if not o.exists()]
            say(f"skipping {len(existing)} file(s) that already exist in {existing[0].parent} (--overwrite replaces them)")
    if not input.is_dir():  # one file: check and read it first, so a bad input fails before any model loads
        from vsr.picture import read_picture

        check_size(input, *picture_size(input, oriented=False), max_pixels, scale)
        pic = read_picture(input, max_pixels)
        runner, _ = load_runner(model, scale, "image", backend, precision, quiet)
        _run_images([(input, jobs[0][1], pic)], runner, tile, max_pixels, quiet)
        return
    runner, _ = load_runner(model, scale, "image", backend, precision, quiet)
    if jobs:
        jobs[0][1].parent.mkdir(parents=True, exist_ok=True)
    failed = _run_images([(i, o, None) for i, o in jobs], runner, tile, max_pixels, quiet)
    if failed:
        raise VsrError(f"{failed} of {len(jobs)} image(s) failed")


def _run_images(jobs, runner, tile: int, max_pixels: int, quiet: bool) -> int:
    """Upscale (input, output, already-read picture or None) jobs; a folder's bad files are reported and skipped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from vsr.picture import check_size, picture_size, read_picture, write_picture
    from vsr.upscale_picture import upscale_picture

    failed = 0
    single = len(jobs) == 1 and jobs[0][2] is not None
    console = stderr_console()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    t0 = time.perf_counter()
    with Progress(*columns, console=console, disable=quiet, transient=True) as progress:
        task = progress.add_task("images", total=len(jobs), visible=not single)
        for src, dst, pic in jobs:
            progress.update(task, description=src.name)
            tiles = progress.add_task(f"{src.name} tiles", total=None)
            try:
                if pic is None:
                    check_size(src, *picture_size(src, oriented=False), max_pixels, runner.scale)
                    pic = read_picture(src, max_pixels)
                result = upscale_picture(pic, runner, tile=tile,
                                         on_tile=lambda d, t: progress.update(tiles, completed=d, total=t))
                write_picture(dst, result)
            except VsrError as e:
                if single:
                    raise
                failed += 1
                console.print(f"error: {e}", markup=False, soft_wrap=True)
            progress.remove_task(tiles)
            progress.advance(task)
    if not quiet:
        n = len(jobs) - failed
        where = jobs[0][1] if single else (jobs[0][1].parent if jobs else "")
        console.print(f"{n} image(s) written in {time.perf_counter() - t0:.1f}s → {where}", markup=False)
    return failed
