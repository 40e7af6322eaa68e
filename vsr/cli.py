"""The ``vsr`` command line.

Every user-facing failure is a ``VsrError``: printed as one ``error: …`` line
on stderr with a non-zero exit code, never a traceback. Heavy modules (torch,
PyAV, engines) load inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.errors import VsrError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="vsr: learned super-resolution for video and images.\n\nExample: vsr upscale in.mp4 out.mp4 -s 2",
)

ScaleOpt = Annotated[int, typer.Option("--scale", "-s", help="upscaling factor: 2, 3 or 4")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="model name or .safetensors path (see `vsr models`)")]
BackendOpt = Annotated[str, typer.Option(help="auto | torch | openvino | tensorrt")]
PrecisionOpt = Annotated[str, typer.Option(help="auto | fp32 | bf16 | fp16")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_runner(model_ref: str | None, scale: int, job: str, backend: str, precision: str, quiet: bool,
                 shape: tuple[int, int] | None = None, frame_io: bool = False):
    from engines import create_runner
    from vsr.weights import default_model, load_model, weights_id

    ref = model_ref or default_model(job, scale)
    model, info = load_model(ref, scale if not (model_ref and model_ref.endswith(".safetensors")) else None)
    runner = create_runner(model, backend=backend, precision=precision, weights_id=weights_id(info),
                           warn=_say, shape=shape, frame_io=frame_io)
    if not quiet:
        _say(f"model {info.name} ×{info.scale} ({info.frames} frame{'s' if info.frames > 1 else ''}) "
             f"on {runner.describe()}")
    return runner, info


# ---------------------------------------------------------------------------
# vsr image


@app.command()
def image(
    input: Annotated[Path, typer.Argument(help="an image file or a folder of images")],
    output: Annotated[Optional[Path], typer.Argument(help="output file (or folder); default <stem>_x<scale>.png")] = None,
    scale: ScaleOpt = 2,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "auto",
    tile: Annotated[int, typer.Option(help="tile size in input pixels (0 = whole image)")] = 384,
    overwrite: Annotated[bool, typer.Option(help="replace existing outputs")] = False,
    max_pixels: Annotated[int, typer.Option(help="refuse inputs with more pixels (decompression bombs)")] = 200_000_000,
    quiet: QuietOpt = False,
) -> None:
    """Upscale an image or every image in a folder.

    Example: vsr image photo.jpg -s 4   (writes photo_x4.png)
    """
    from vsr.files import IMAGE_EXTS, natural_key
    from vsr.images import output_format

    if not input.exists():
        raise VsrError(f"{input}: no such file or folder")
    if input.is_dir():
        files = sorted((p for p in input.iterdir() if p.is_file() and not p.name.startswith(".")), key=natural_key)
        if not files:
            raise VsrError(f"{input}: the folder is empty")
        out_dir = output or input.with_name(f"{input.name}_x{scale}")
        if out_dir.exists() and not out_dir.is_dir():
            raise VsrError(f"{out_dir}: exists and is not a folder")
        jobs = []
        for f in files:
            ext = f.suffix.lower() if f.suffix.lower() in (".png", ".tif", ".tiff", ".webp", ".jpg", ".jpeg") else ".png"
            jobs.append((f, out_dir / (f.stem + ext)))
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
            _say(f"skipping {len(existing)} file(s) that already exist in {existing[0].parent} (--overwrite replaces them)")
    if not input.is_dir():  # one file: read it first, so a bad input fails before any model loads
        from vsr.images import read_picture

        pic = read_picture(input, max_pixels)
        runner, _ = _load_runner(model, scale, "image", backend, precision, quiet)
        _run_images([(input, jobs[0][1], pic)], runner, tile, max_pixels, quiet)
        return
    runner, _ = _load_runner(model, scale, "image", backend, precision, quiet)
    if jobs:
        jobs[0][1].parent.mkdir(parents=True, exist_ok=True)
    failed = _run_images([(i, o, None) for i, o in jobs], runner, tile, max_pixels, quiet)
    if failed:
        raise VsrError(f"{failed} of {len(jobs)} image(s) failed")


def _run_images(jobs, runner, tile: int, max_pixels: int, quiet: bool) -> int:
    """Upscale (input, output, already-read picture or None) jobs; a folder's bad files are reported and skipped."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from vsr.image import upscale_picture
    from vsr.images import read_picture, write_picture

    failed = 0
    single = len(jobs) == 1 and jobs[0][2] is not None
    console = _stderr()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    t0 = time.perf_counter()
    with Progress(*columns, console=console, disable=quiet, transient=True) as progress:
        task = progress.add_task("images", total=len(jobs), visible=not single)
        for src, dst, pic in jobs:
            progress.update(task, description=src.name)
            tiles = progress.add_task(f"{src.name} tiles", total=None)
            try:
                pic = pic if pic is not None else read_picture(src, max_pixels)
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


# ---------------------------------------------------------------------------
# vsr upscale


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
    preset: Annotated[Optional[str], typer.Option(help="encoder speed preset (x264/x265: ultrafast … veryslow)")] = None,
    pix_fmt: Annotated[Optional[str], typer.Option("--pix-fmt", help="output pixel format; default keeps the input's depth and chroma")] = None,
    stream: Annotated[Optional[int], typer.Option(help="index of the video stream to upscale (default: the first that is not cover art)")] = None,
    fps: Annotated[float, typer.Option(help="frame rate of an image-sequence input")] = 25.0,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Upscale a video: audio, subtitles, timestamps and colour are kept.

    Example: vsr upscale in.mp4 out.mp4 -s 2 --crf 16
    """
    import signal
    import threading

    from vsr.video.io import EncodeOptions
    from vsr.video.pipeline import Stopped, upscale_video

    if not input.exists():
        raise VsrError(f"{input}: no such file or folder")
    if output.resolve() == input.resolve():
        raise VsrError("the output would overwrite the input")
    if output.exists() and not overwrite:
        raise VsrError(f"{output} exists; pass --overwrite to replace it")
    if output.suffix == "" and not output.exists() and not input.is_dir():
        pass  # a folder of PNG frames
    elif output.suffix and output.suffix.lower() not in (".mp4", ".mkv", ".mov", ".webm", ".m4v", ".avi", ".ts", ".mxf"):
        raise VsrError(f"{output}: unknown video container {output.suffix}; use .mp4, .mkv, .mov or .webm (or a folder)")
    from vsr.video.io import open_source

    probe = open_source(input, stream=stream, fps=fps)  # fail on bad input before loading a model
    info = probe.info
    probe.close()
    runner, _ = _load_runner(model, scale, "video", backend, precision, quiet,
                             shape=(info.height, info.width), frame_io=info.bits <= 8 and tile == 0)
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
                               warn=progress.warn)
    except Stopped:
        progress.close()
        sig = got.get("signal", signal.SIGINT)
        _say(f"interrupted: {output} was not written")
        raise typer.Exit(128 + sig) from None
    finally:
        progress.close()
        for s, h in old.items():
            signal.signal(s, h)
    if result.decode_errors:
        _say(f"warning: {result.decode_errors} damaged packet(s) could not be decoded"
             + (f"; {result.expected - result.frames} frame(s) lost" if result.expected and result.expected > result.frames else ""))
    if result.truncated:
        _say("warning: the input ends early (truncated or damaged); everything before the damage was upscaled")
    if not quiet:
        _say(f"wrote {output}: {result.frames} frames, {result.duration:.2f} s of video, "
             f"{result.fps:.1f} fps average ({result.elapsed:.1f} s)")


class _VideoProgress:
    """frames done/total, fps and ETA on stderr; indeterminate when the frame count is unknown."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.p = None

    def start(self, info) -> None:
        if not self.quiet:
            _say(f"input: {info.description}")
        if self.quiet:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.p = Progress(TextColumn("upscaling"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                          TextColumn("{task.fields[fps]:.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"),
                          TimeRemainingColumn(), console=_stderr(), transient=True)
        self.p.start()
        self.task = self.p.add_task("frames", total=info.total, fps=0.0)
        import time

        self.t0 = time.perf_counter()

    def advance(self, done: int) -> None:
        if self.p is not None:
            import time

            elapsed = time.perf_counter() - self.t0
            total = self.p.tasks[0].total
            if total is not None and done > total:
                total = None  # the estimate was short
            self.p.update(self.task, completed=done, total=total, fps=done / elapsed if elapsed else 0.0)

    def warn(self, msg: str) -> None:
        text = f"warning: {msg}"
        if self.p is not None:
            self.p.console.print(text, markup=False, soft_wrap=True)
        else:
            _say(text)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None


# ---------------------------------------------------------------------------
# vsr models


@app.command()
def models() -> None:
    """List the models: scales with trained weights, frames, parameters and validation PSNR-Y.

    Example: vsr models
    """
    from rich.table import Table

    from vsr.models import MODELS
    from vsr.weights import bundled, read_info

    have = bundled()
    table = Table(title="vsr models")
    for col in ("name", "description", "frames", "params", "weights (scale: PSNR-Y on validation)"):
        table.add_column(col)
    names = list(MODELS) + sorted({n for n, _ in have if n not in MODELS})
    for name in names:
        spec = MODELS.get(name)
        entries = []
        counts: list[str] = []
        frames = str(spec.frames) if spec else "?"
        for (n, s), path in sorted(have.items()):
            if n != name:
                continue
            info = read_info(path)
            frames = str(info.frames)
            v = info.validation
            score = v.get("psnr")
            entries.append(f"×{s}: {score:.2f} dB" if isinstance(score, (int, float)) else f"×{s}")
            if (c := _count_params(path)) not in counts:
                counts.append(c)  # the upsampler's size depends on the scale
        params = " / ".join(counts) or "-"
        if spec and spec.arch == "bicubic":
            weights = "none needed (×2 ×3 ×4)"
            params = "0"
        else:
            weights = ", ".join(entries) if entries else "no weights yet"
        if spec:
            desc = spec.description
        else:
            info = read_info(next(p for (n, _), p in have.items() if n == name))
            desc = info.training.get("description") or _variant_description(info.training.get("config", {}), info.arch)
        table.add_row(name, desc, frames, params, weights)
    from rich.console import Console

    Console().print(table)


def _variant_description(config: dict, arch: str) -> str:
    """What a bundled name outside the registry is, from the training config stored with its weights."""
    base = config.get("model", {}).get("name", arch)
    if config.get("loss", {}).get("adversarial_weight", 0) > 0:
        return f"{base} fine-tuned with a GAN (spatio-temporal discriminator)"
    return f"trained variant of {base}"


def _count_params(path: Path) -> str:
    import math

    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        n = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


# ---------------------------------------------------------------------------
# vsr build-engine, vsr engines


@app.command("build-engine")
def build_engine(
    model: ModelOpt = None,
    scale: ScaleOpt = 2,
    backend: Annotated[str, typer.Option(help="openvino | tensorrt")] = "openvino",
    height: Annotated[Optional[int], typer.Option(help="input (low-resolution) height")] = None,
    width: Annotated[Optional[int], typer.Option(help="input (low-resolution) width")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", help="a video or image to take the input size from")] = None,
    precision: PrecisionOpt = "auto",
    video: Annotated[bool, typer.Option(help="build what `vsr upscale` runs (8-bit frames in and out, the video model "
                                             "by default); --no-video: what `vsr image` runs")] = True,
) -> None:
    """Compile a model ahead of time for an input size; a second call is a cache hit.

    Example: vsr build-engine -m mf-fast -s 2 --height 480 --width 854
    """
    import time

    from engines import create_runner
    from engines.base import BACKENDS
    from vsr.weights import default_model, load_model, weights_id

    if backend not in ("openvino", "tensorrt"):
        raise VsrError(f"build-engine compiles for openvino or tensorrt, not {backend!r} (choices: {', '.join(BACKENDS[1:])})")
    if input is not None:
        height, width = _input_size(input)
    if not height or not width:
        raise VsrError("give --height and --width (the input size), or --input FILE")
    ref = model or default_model("video" if video else "image", scale)
    net, info = load_model(ref, scale if not (model and model.endswith(".safetensors")) else None)
    m = int(getattr(net, "size_multiple", 1))
    h, w = -(-height // m) * m, -(-width // m) * m
    t0 = time.perf_counter()
    runner = create_runner(net, backend=backend, precision=precision, weights_id=weights_id(info), shape=(h, w),
                           warn=_say, frame_io=video)
    entry, hit = runner.last_build
    took = time.perf_counter() - t0
    state = "cache hit" if hit else "built"
    print(f"{state}: {info.name} ×{info.scale} for {w}×{h} input, {runner.name} {runner.precision}, {took:.2f} s")
    print(f"engine: {entry}")


def _input_size(path: Path) -> tuple[int, int]:
    from vsr.files import IMAGE_EXTS

    if path.suffix.lower() in IMAGE_EXTS:
        from vsr.images import read_picture

        w, h = read_picture(path).size
        return h, w
    from vsr.video.io import open_source

    src = open_source(path, stream=None, fps=25)
    src.close()
    return src.info.height, src.info.width


@app.command()
def engines(
    clear: Annotated[bool, typer.Option("--clear", help="delete every cached engine")] = False,
) -> None:
    """List the compiled engines in the cache (or empty it with --clear).

    Example: vsr engines --clear
    """
    from rich.table import Table

    from engines import cache

    if clear:
        n = cache.clear()
        print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} from {cache.engines_dir()}")
        return
    rows = cache.entries()
    table = Table(title=f"engine cache: {cache.engines_dir()}")
    for col in ("model", "scale", "runtime", "precision", "shape / profile", "size", "built"):
        table.add_column(col)
    import datetime

    for e in rows:
        k = e.get("key", {})
        shape = "×".join(map(str, k["shape"])) if k.get("shape") else str(k.get("profile", k.get("opset", "")))
        when = datetime.datetime.fromtimestamp(e["created"]).strftime("%Y-%m-%d %H:%M") if e.get("created") else "?"
        table.add_row(str(k.get("name", k.get("arch", "?"))), f"×{k.get('scale', '?')}", str(k.get("runtime", "?")),
                      str(k.get("precision", "-")), shape, f"{e.get('bytes', 0) / 1e6:.1f} MB", when)
    from rich.console import Console

    Console().print(table)
    if not rows:
        print("(empty)")


# ---------------------------------------------------------------------------
# vsr bench


@app.command()
def bench(
    model: ModelOpt = None,
    scale: ScaleOpt = 2,
    backend: Annotated[str, typer.Option(help="all | torch | openvino | tensorrt (comma-separated)")] = "all",
    precision: Annotated[str, typer.Option(help="all | fp32 | bf16 | fp16 (comma-separated)")] = "all",
    size: Annotated[str, typer.Option(help="input size: 270p 360p 480p 540p 720p 1080p")] = "480p",
    frames: Annotated[int, typer.Option(help="frames in the generated clip")] = 100,
    repeat: Annotated[int, typer.Option(help="runs per measurement (the median is reported)")] = 3,
    end_to_end: Annotated[bool, typer.Option("--e2e/--no-e2e", help="also time `vsr upscale` end to end")] = True,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the results here as JSON")] = None,
) -> None:
    """Measure decode, model, encode and end-to-end fps (and peak memory) on a generated clip.

    Example: vsr bench -s 2 --size 480p --backend openvino --json bench.json
    """
    import tempfile

    from vsr.bench import SIZES, print_report, run_bench

    if size not in SIZES:
        raise VsrError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    backends = ["torch", "openvino"] + (["tensorrt"] if _cuda() else []) if backend == "all" else backend.split(",")
    precisions = ["fp32", "bf16"] + (["fp16"] if _cuda() else []) if precision == "all" else precision.split(",")
    with tempfile.TemporaryDirectory(prefix="vsr-bench-") as d:
        report = run_bench(model, scale, backends, precisions, size, frames, repeat, Path(d), e2e=end_to_end, say=_say)
    print_report(report)
    if json_out:
        json_out.write_text(report.to_json())
        _say(f"wrote {json_out}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------
# vsr eval


@app.command("eval")
def eval_(
    hr: Annotated[Path, typer.Argument(help="folder of HR images, a paired HR/ LR/ folder, or a video")],
    scale: ScaleOpt = 4,
    model: ModelOpt = None,
    backend: BackendOpt = "torch",
    precision: PrecisionOpt = "fp32",
    max_frames: Annotated[int, typer.Option(help="frames to score for a video")] = 30,
) -> None:
    """PSNR/SSIM (Y, SR protocol) of a model and of bicubic, per image and mean.

    Example: vsr eval Set5/ --scale 4 --model edsr
    """
    from rich.table import Table

    from vsr.evaluate import evaluate, load_source, mean
    from vsr.files import VIDEO_EXTS

    is_video = hr.is_file() and hr.suffix.lower() in VIDEO_EXTS
    src = load_source(hr, scale, max_frames=max_frames if is_video else 0)
    from engines import create_runner
    from vsr.weights import load_model

    bic_model, _ = load_model("bicubic", scale)
    bic = create_runner(bic_model, backend="torch", precision="fp32")
    columns = [("bicubic", bic)]
    if model != "bicubic":
        runner, info = _load_runner(model, scale, "video" if is_video else "image", backend, precision, quiet=False)
        columns.append((info.name, runner))
    results = [(name, evaluate(r, src, scale=scale, frames=r.frames, multiple=r.size_multiple, with_tof=is_video))
               for name, r in columns]
    title = "PSNR / SSIM on Y" + (" / tOF (flicker, lower is better)" if is_video else "")
    table = Table(title=f"{hr} ×{scale}: {title}")
    table.add_column("video" if is_video else "image")
    for name, _ in results:
        table.add_column(name, justify="right")

    def cell(sc) -> str:
        return f"{sc.psnr:.2f} / {sc.ssim:.4f}" + (f" / {sc.tof:.3f}" if sc.tof is not None else "")

    for i, item in enumerate(src.items):
        table.add_row(item.name, *[cell(s[i]) for _, s in results])
    if len(src.items) > 1:
        table.add_row("mean", *[f"{mean(s)[0]:.2f} / {mean(s)[1]:.4f}" for _, s in results], style="bold")
    from rich.console import Console

    Console().print(table)


# ---------------------------------------------------------------------------


def _format_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _format_warning  # one plain line per warning
    try:
        rc = app(args=argv, prog_name="vsr", standalone_mode=False)
    except VsrError as e:
        _say(f"error: {e}")
        return 1
    except (KeyboardInterrupt, typer.Abort):
        _say("interrupted")
        return 130
    except typer.TyperException as e:  # usage errors: one line too
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message())
            return 0
        _say(f"error: {e.format_message()}")
        return getattr(e, "exit_code", 2)
    except Exception as e:  # a bug: still one line, with a way to see the traceback
        if os.environ.get("VSR_DEBUG"):
            raise
        _say(f"error: unexpected {type(e).__name__}: {e} (set VSR_DEBUG=1 for the traceback)")
        return 1
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
