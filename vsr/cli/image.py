"""``vsr image``: upscale an image or a folder of images."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import (
    BackendOpt,
    ModelOpt,
    PrecisionOpt,
    QuietOpt,
    ScaleOpt,
    app,
    count_bar,
    default_folder,
    load_runner,
    say,
)
from vsr.errors import VsrError, about
from vsr.picture import DEFAULT_MAX_PIXELS


@app.command()
def image(
    input: Annotated[Path, typer.Argument(help="an image file or a folder of images")],
    # a string, not a Path: Path drops the trailing slash that says "a folder"
    output: Annotated[Optional[str], typer.Argument(help="output file, or folder (a name ending in /); default "
                                                         "<stem>_x<scale>.png")] = None,
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
    """Upscale an image or every image in a folder and its subfolders.

    Example: vsr image photo.jpg -s 4   (writes photo_x4.png)
    """
    from vsr.formats import IMAGE_EXTS, folders_under, natural_key
    from vsr.picture import check_size, output_format, picture_size

    if not input.exists():
        raise VsrError(f"{input}: no such file or folder")
    from vsr.runner import choose

    scale = choose(model, scale, "image").scale
    folder_out = output is not None and output.endswith(("/", os.sep))
    out_arg = Path(output) if output is not None else None
    if input.is_dir():
        default = default_folder(input, scale)
        out_dir = out_arg or default
        if out_dir.exists() and not out_dir.is_dir():
            raise VsrError(f"{out_dir}: exists and is not a folder")
        if not out_dir.exists() and out_dir.suffix.lower() in IMAGE_EXTS:  # one file was meant, not a folder so named
            raise VsrError(f"{out_dir}: a folder of images goes to a folder, not to one {out_dir.suffix} file: name "
                           "a folder")
        if _same(out_dir, input):
            raise VsrError(f"the output folder {out_dir} is the input folder: its images would be overwritten; "
                           f"choose another output folder (default: {default})")
        # subfolders too, each output at the same place under out_dir; out_dir itself is not read when inside
        files = [p for d in folders_under(input, skip=out_dir)
                 for p in sorted((p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")),
                                 key=natural_key)]
        if not files:
            raise VsrError(f"{input}: the folder is empty")
        own = _own_outputs(files)
        files = [f for f in files if f not in own]
        jobs = [(f, out_dir / f.parent.relative_to(input) / name) for f, name in _output_names(files).items()]
        inputs = {_file_id(f): f for f in files}  # an output may be a hard link or symlink to any of them
        for _, o in jobs:
            src = inputs.get(_file_id(o)) if o.exists() else None
            if src is not None:
                raise VsrError(f"the output {o} would overwrite the input {src}: choose another output folder "
                               f"(default: {default})")
        if own:
            names = ", ".join(f.name for f in own[:3]) + (", …" if len(own) > 3 else "")
            say(f"skipping {len(own)} file(s) that look like vsr's own outputs ({names}): rename them to upscale them")
    else:
        default = input.with_name(f"{input.stem}_x{scale}.png")
        out = out_arg or default
        if folder_out or out.is_dir():
            if out.exists() and not out.is_dir():
                raise VsrError(f"{out}: exists and is not a folder")
            out = out / default.name
        elif not out.suffix and not out.exists():
            raise VsrError(f"{out} has no image extension: add .png, or end it with / for a folder")
        if _same(out, input):
            raise VsrError(f"the output would overwrite the input {input}: choose another output name "
                           f"(default: {default})")
        output_format(out)
        jobs = [(input, out)]
    if not overwrite:
        existing = [o for _, o in jobs if o.exists()]
        if existing and not input.is_dir():
            raise VsrError(f"{existing[0]} exists; pass --overwrite to replace it")
        if existing and len(existing) == len(jobs):
            say(f"nothing to do: every output exists in {out_dir} (--overwrite replaces them)")
            return
        if existing:
            jobs = [(i, o) for i, o in jobs if not o.exists()]
            say(f"skipping {len(existing)} file(s) that already exist in {out_dir} (--overwrite replaces them)")
    if not input.is_dir():  # one file: check and read it first, so a bad input fails before any model loads
        from vsr.picture import read_picture

        check_size(input, *picture_size(input, oriented=False), max_pixels, scale)
        pic = read_picture(input, max_pixels)
        runner, _ = load_runner(model, scale, "image", backend, precision, quiet)
        out.parent.mkdir(parents=True, exist_ok=True)  # a folder named with a trailing slash
        _run_images([(input, out, pic)], runner, tile, max_pixels, quiet)
        return
    runner, _ = load_runner(model, scale, "image", backend, precision, quiet)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = _run_images([(i, o, None) for i, o in jobs], runner, tile, max_pixels, quiet)
    if failed:
        raise VsrError(f"{failed} of {len(jobs)} image(s) failed")


def _same(a: Path, b: Path) -> bool:
    """Whether writing ``a`` would replace ``b``: the same file or folder, by any path or link to it."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _file_id(p: Path) -> tuple[int, int]:
    s = p.stat()
    return s.st_dev, s.st_ino


_OUTPUT_STEM = re.compile(r"(.+)_x[1-8]")


def _own_outputs(files: list[Path]) -> list[Path]:
    """The files that look like vsr's outputs (``a_x4.png``) of another file there (``a.png``, ``a.jpg`` …): a
    rerun over the folder that ``vsr image a.png`` wrote into would upscale them again."""
    from vsr.formats import IMAGE_EXTS

    images = [f for f in files if f.suffix.lower() in IMAGE_EXTS]
    stems = {f.stem for f in images}
    return [f for f in images if (m := _OUTPUT_STEM.fullmatch(f.stem)) and m.group(1) in stems]


def _output_names(files: list[Path]) -> dict[Path, str]:
    """Each picture's output name: its own where vsr writes that format, else the stem as .png; where two would meet
    in one folder (a.bmp beside a.png), the whole name + .png."""
    from collections import Counter

    from vsr.formats import IMAGE_WRITERS

    names = {f: f.stem + (f.suffix.lower() if f.suffix.lower() in IMAGE_WRITERS else ".png") for f in files}
    taken = Counter((f.parent, n.lower()) for f, n in names.items())
    return {f: n if taken[f.parent, n.lower()] == 1 or f.suffix.lower() in IMAGE_WRITERS else f.name + ".png"
            for f, n in names.items()}


def _run_images(jobs, runner, tile: int, max_pixels: int, quiet: bool) -> int:
    """Upscale (input, output, already-read picture or None) jobs; a folder's bad files are reported and skipped."""
    from vsr.picture import check_size, picture_size, read_picture, write_picture
    from vsr.upscale_picture import upscale_picture

    failed = 0
    single = len(jobs) == 1 and jobs[0][2] is not None
    t0 = time.perf_counter()
    with count_bar(quiet) as progress:
        console = progress.console
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
                dst.parent.mkdir(parents=True, exist_ok=True)  # (a subfolder's)
                write_picture(dst, result)
            except VsrError as e:
                if single:
                    raise
                failed += 1
                console.print(f"error: {about(src, e)}", markup=False, soft_wrap=True)
            progress.remove_task(tiles)
            progress.advance(task)
    if not quiet and jobs:
        n = len(jobs) - failed
        where = jobs[0][1] if single else os.path.commonpath([o.parent for _, o, _ in jobs])
        console.print(f"{n} image(s) written in {time.perf_counter() - t0:.1f}s → {where}", markup=False)
    return failed
