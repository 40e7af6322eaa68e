"""``vsr upscale``: upscale a video (or a folder of frames) keeping audio, subtitles, timestamps and colour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import BackendOpt, ModelOpt, PrecisionOpt, QuietOpt, ScaleOpt, app, load_runner, say
from vsr.cli.batch import JobProgress
from vsr.errors import VsrError


@app.command()
def upscale(
    input: Annotated[Path, typer.Argument(help="a video file, or a folder of frames (frame0001.png …)")],
    output: Annotated[Path, typer.Argument(help="output video (.mp4 .mkv .mov .webm …) or a folder for PNG frames")],
    scale: ScaleOpt = 2,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "auto",
    tile: Annotated[int, typer.Option(help="tile size in input pixels (0 = whole frame)")] = 0,
    codec: Annotated[Optional[str], typer.Option(help="encoder: libx264, libx265, libsvtav1, libvpx-vp9, ffv1, …")] = None,
    crf: Annotated[Optional[int], typer.Option(help="quality (lower is better); default depends on the codec")] = None,
    preset: Annotated[Optional[str], typer.Option(help="encoder speed preset (x264/x265: ultrafast … veryslow; SVT-AV1: 0 … 13, VP9: 0 … 8, slowest first)")] = None,
    pix_fmt: Annotated[Optional[str], typer.Option("--pix-fmt", help="output pixel format; default keeps the input's depth and chroma")] = None,
    stream: Annotated[Optional[int], typer.Option(help="index of the video stream to upscale (default: the first that is not cover art)")] = None,
    fps: Annotated[float, typer.Option(help="frame rate of an image-sequence input")] = 25.0,
    deinterlace: Annotated[str, typer.Option(help="auto: deinterlace (bwdif) video flagged interlaced; all: every "
                                                  "frame (interlaced video flagged progressive); off: never")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="replace an existing output")] = False,
    segment_seconds: Annotated[float, typer.Option("--segment-seconds", help="cut a video into segments of about "
                               "this long, each kept as it finishes so a rerun resumes (0: one pass, no resume)")] = 30.0,
    restart: Annotated[bool, typer.Option(help="discard an interrupted run's finished segments and start over")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="run the segments as Ray tasks (an embedded Ray on this machine, "
                                                    "or the cluster at --ray-address / RAY_ADDRESS)")] = False,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="an existing Ray cluster (implies --ray)")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Upscale a video, or every video in a folder: audio, subtitles, timestamps and colour are kept.

    Example: vsr upscale in.mp4 out.mp4 -s 2 --crf 16
    """
    import signal
    import threading

    from vsr.formats import CONTAINERS
    from vsr.video.pipeline import Stopped, upscale_video
    from vsr.video.sink import EncodeOptions
    from vsr.video.source import open_source

    if not input.exists():
        raise VsrError(f"{input}: no such file or folder")
    if output.resolve() == input.resolve():
        raise VsrError("the output would overwrite the input")
    if output.exists() and not overwrite:
        raise VsrError(f"{output} exists; pass --overwrite to replace it")
    if output.suffix == "" and not output.exists() and not input.is_dir():
        pass  # a folder of PNG frames
    elif output.suffix and output.suffix.lower() not in CONTAINERS:
        raise VsrError(f"{output}: unknown video container {output.suffix}; use .mp4, .mkv, .mov or .webm (or a folder)")
    import os

    from vsr.formats import VIDEO_EXTS

    ray_address = ray_address or (os.environ.get("RAY_ADDRESS") if ray else None)
    ray = ray or bool(ray_address)
    if input.is_dir() and any(p.suffix.lower() in VIDEO_EXTS for p in input.iterdir()):
        from vsr.cli.batch import upscale_folder

        upscale_folder(input, output, model=model, scale=scale, backend=backend, precision=precision, tile=tile,
                       opts=EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), stream=stream,
                       overwrite=overwrite, segment_seconds=segment_seconds, restart=restart, ray=ray,
                       ray_address=ray_address, quiet=quiet, deinterlace=deinterlace)
        return
    probe = open_source(input, stream=stream, fps=fps, deinterlace=deinterlace)  # bad input fails before the model
    info = probe.info
    probe.close()
    runner, minfo = load_runner(model, scale, "video", backend, precision, quiet, shape=(info.height, info.width),
                                io="u16" if info.bits > 8 else "u8")
    if tile and runner.d.recurrent:
        raise VsrError("--tile cannot be used with a recurrent model (its state spans the whole frame)")
    if (input.is_file() and output.suffix and segment_seconds > 0) or ray:
        from vsr.cli.batch import run_job

        run_job(input, output, runner, minfo, backend=backend, precision=precision,
                opts=EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), stream=stream, tile=tile,
                segment_seconds=segment_seconds or 1e9, restart=restart, ray=ray, ray_address=ray_address,
                quiet=quiet, deinterlace=deinterlace)
        return
    stop = threading.Event()
    got: dict[str, int] = {}

    def on_signal(signum, _frame):
        got["signal"] = signum
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    opts = EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)
    progress = _VideoProgress(quiet)
    try:
        result = upscale_video(input, output, runner, opts=opts, stream=stream, fps=fps, tile=tile,
                               overwrite=overwrite, stop=stop, on_start=progress.start, on_frame=progress.advance,
                               warn=progress.warn, deinterlace=deinterlace)
    except Stopped:
        progress.close()
        sig = got.get("signal", signal.SIGINT)
        say(f"interrupted: {output} was not written")
        raise typer.Exit(128 + sig) from None
    finally:
        progress.close()
        for s, h in old.items():
            signal.signal(s, h)
    if result.decode_errors:
        say(f"warning: {result.decode_errors} damaged packet(s) could not be decoded"
             + (f"; {result.expected - result.frames} frame(s) lost" if result.expected and result.expected > result.frames else ""))
    if result.truncated:
        say(f"warning: the input is truncated or damaged: {result.frames} frame(s) decoded, fewer than its header "
            "promises; every frame that decoded was upscaled")
    if not quiet:
        say(f"wrote {output}: {result.frames} frames, {result.duration:.2f} s of video, "
             f"{result.fps:.1f} fps average ({result.elapsed:.1f} s)")


class _VideoProgress(JobProgress):
    """The single pass's bar: the frame count may be an estimate, or unknown (an indeterminate bar)."""

    def start(self, info) -> None:
        if not self.quiet:
            say(f"input: {info.description}")
        super().start(info.total, 0)

    def advance(self, done: int) -> None:
        if self.p is not None:
            total = self.p.tasks[0].total
            self.update(done, None if total is not None and done > total else total)  # the estimate was short
