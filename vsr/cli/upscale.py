"""``vsr upscale``: upscale a video (or a folder of frames, or of videos) keeping audio, subtitles, timestamps and
colour. The options become one :class:`vsr.jobs.Settings`; :func:`vsr.jobs.upscale` does the rest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.auto import AUTO, CLEAN, REAL
from vsr.cli.app import BackendOpt, PrecisionOpt, QuietOpt, ScaleOpt, app, default_folder, positive, say

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help=f"model name or .safetensors path (see `vsr "
                     f"models`); default {AUTO}: {REAL} for compressed or noisy input, {CLEAN} for clean, chosen "
                     "for each file from the file (said in one line)")]


@app.command()
def upscale(
    input: Annotated[Path, typer.Argument(help="a video file, a folder of frames (frame0001.png …) or of videos "
                                                 "(subfolders too)")],
    output: Annotated[Optional[Path], typer.Argument(help="output video (.mp4 .mkv .mov .webm …) or a folder; "
                                                          "default <name>_x<scale> beside the input")] = None,
    scale: ScaleOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "auto",
    tile: Annotated[int, typer.Option(min=0, help="tile size in input pixels (0 = whole frame)")] = 0,
    codec: Annotated[Optional[str], typer.Option(help="encoder: libx264, libx265, libsvtav1, libvpx-vp9, ffv1, …")] = None,
    crf: Annotated[Optional[int], typer.Option(min=0, help="quality, lower is better: 0–51 for libx264/libx265 "
                                                           "(default 17/19), 0–63 for libsvtav1/libvpx-vp9 (24), a "
                                                           "quantiser 1–31 for mpeg2video (2)")] = None,
    preset: Annotated[Optional[str], typer.Option(help="encoder speed preset (x264/x265: ultrafast … veryslow; SVT-AV1: 0 … 13, VP9: 0 … 8, slowest first)")] = None,
    pix_fmt: Annotated[Optional[str], typer.Option("--pix-fmt", help="output pixel format; default keeps the input's depth and chroma")] = None,
    stream: Annotated[Optional[int], typer.Option(min=0, help="index of the video stream to upscale (default: the first that is not cover art)")] = None,
    fps: Annotated[float, typer.Option(callback=positive, help="frame rate of an image-sequence input (> 0)")] = 25.0,
    deinterlace: Annotated[str, typer.Option(help="auto: deinterlace (bwdif) video flagged interlaced; all: every "
                                                  "frame (interlaced video flagged progressive); off: never")] = "auto",
    temporal: Annotated[str, typer.Option(help="the temporal stage, which steadies models that see one frame at a "
                                               "time: auto (on for them), on (any model), off")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="replace an existing output")] = False,
    segment_seconds: Annotated[float, typer.Option("--segment-seconds", min=0, help="cut a video into segments of "
                               "about this long, each kept as it finishes so a rerun resumes (0: one pass, no resume)")] = 30.0,
    restart: Annotated[bool, typer.Option(help="discard what an interrupted run finished and start over")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="run the segments as Ray tasks (an embedded Ray on this machine, "
                                                    "or the cluster at --ray-address / RAY_ADDRESS)")] = False,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="an existing Ray cluster (implies --ray)")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Upscale a video, or every video in a folder and its subfolders: audio, subtitles, timestamps and colour are
    kept.

    Example: vsr upscale in.mp4 out.mp4 -s 2 --crf 16
    """
    from vsr.cli.progress import Progress, Signals
    from vsr.errors import Stopped
    from vsr.jobs import Settings
    from vsr.jobs import upscale as run
    from vsr.video.encoder import EncodeOptions

    output = output or _default_output(input, model, scale)
    ray_address = ray_address or (os.environ.get("RAY_ADDRESS") if ray else None)
    settings = Settings(model=model, scale=scale, backend=backend, precision=precision, tile=tile,
                        encode=EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), stream=stream,
                        fps=fps, deinterlace=deinterlace, segment_seconds=segment_seconds, temporal=temporal,
                        restart=restart,
                        overwrite=overwrite, ray=ray or bool(ray_address), ray_address=ray_address)
    with Signals() as sig:
        try:
            run(input, output, settings, Progress(quiet), sig.stop)
        except Stopped as e:
            target = e.output or output
            if e.folder is not None:
                of = f" of {e.total}" if e.total else ""
                say(f"interrupted: {target} was not written; {e.kept}{of} {e.unit} are kept in {e.folder} "
                    "(run the same command to resume)")
            else:
                say(f"interrupted: {target} was not written")
            raise typer.Exit(sig.code) from None


def _default_output(input: Path, model: str | None, scale: int | None) -> Path:
    """``<name>_x<scale>`` beside the input: a folder for a folder, else the input's container where vsr writes it
    (.mkv where not)."""
    from vsr.errors import VsrError
    from vsr.formats import output_names
    from vsr.runner import DEFAULT_SCALE, choose

    if not input.exists():
        raise VsrError(f"{input}: no such file or folder")
    scale = (scale or DEFAULT_SCALE) if model in (None, AUTO) else choose(model, scale, "video").scale
    if input.is_dir():
        return default_folder(input, scale)
    name = Path(output_names([input])[input])
    return input.with_name(f"{name.stem}_x{scale}{name.suffix}")
