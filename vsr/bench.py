"""Throughput measurements: decode, model-only, encode, end to end, and the no-model floor.

Everything runs on a clip generated here (``vsr._testclips``), so numbers are
comparable between machines. Times are medians over ``repeat`` runs.
End-to-end runs happen in a child process (``python -m vsr upscale``) so its
peak RSS is measured on its own.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SIZES = {"270p": (480, 270), "360p": (640, 360), "480p": (854, 480), "540p": (960, 540), "720p": (1280, 720),
         "1080p": (1920, 1080)}


@dataclass
class Row:
    stage: str  # decode | windows | model | encode | end-to-end | floor
    backend: str = ""
    precision: str = ""
    fps: float = 0.0
    peak_rss_mb: float | None = None
    note: str = ""


@dataclass
class Report:
    model: str
    scale: int
    input: str
    output: str
    frames: int
    machine: str
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def machine() -> str:
    from engines.cpu import cpu_name, has_native_bf16

    return f"{cpu_name()}, {os.cpu_count()} cores, {'native bf16' if has_native_bf16() else 'no native bf16'}"


def make_bench_clip(folder: Path, size: str, frames: int) -> Path:
    from vsr._testclips import ClipSpec, make_clip

    w, h = SIZES[size]
    path = folder / f"bench_{size}.mp4"
    if not path.exists():
        make_clip(path, ClipSpec(width=w, height=h, frames=frames, fps=25, crf=20, audio=True))
    return path


def _median_fps(fn, n: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def decode_fps(clip: Path, repeat: int = 3) -> tuple[float, int]:
    """Decode + colour conversion to RGB, as the pipeline's reader does."""
    from vsr.video.source import frames_of

    count = {"n": 0}

    def run():
        count["n"] = sum(1 for _ in frames_of(clip))

    run()  # warm-up, and the frame count
    return _median_fps(run, count["n"], repeat), count["n"]


def clip_windows(clip: Path, model, frames: int = 20) -> list:
    """The model's inputs for the clip's first frames, made as the pipeline makes them."""
    from vsr.video.source import frames_of
    from vsr.windows import options_for, windows

    return list(windows(((f, None) for f in frames_of(clip, frames)), **options_for(model)))


def windows_fps(clip: Path, model, frames: int = 20, repeat: int = 3) -> float:
    """Making the model's inputs alone (luma, DIS flows, scene cuts): the reader's work beyond decoding."""
    from vsr.video.source import frames_of
    from vsr.windows import options_for, windows

    decoded = list(frames_of(clip, frames))
    return _median_fps(lambda: list(windows(((f, None) for f in decoded), **options_for(model))), len(decoded), repeat)


def model_fps(runner, inputs: list, repeat: int = 3) -> float:
    """Model-only fps on the video path: integer windows (with their flows) in, integer frames out, ``runner.depth``
    in flight, a recurrent model's state carried from frame to frame."""
    for w in inputs[:2]:
        runner(w.frames, w.flows, w.reset)

    def run():
        inflight = []
        for w in inputs:
            inflight.append(runner.submit(w.frames, w.flows, w.reset))
            if len(inflight) >= runner.depth:
                runner.collect(inflight.pop(0))
        for h in inflight:
            runner.collect(h)

    return _median_fps(run, len(inputs), repeat)


def encode_fps(hw_out: tuple[int, int], frames: int, codec: str = "libx264", preset: str = "veryfast",
               crf: int = 17, threads: int = 0, repeat: int = 3) -> float:
    """RGB → YUV conversion + encode of ``frames`` output-size frames (the writer's work)."""
    import av

    from vsr._testclips import scene
    from vsr.video.colour import Colour, from_rgb

    h, w = hw_out
    imgs = [scene(h, w, i) for i in range(min(frames, 8))]
    colour = Colour(1, 1, 1, 1, 8)

    def run():
        with tempfile.TemporaryDirectory() as d:
            with av.open(os.path.join(d, "e.mp4"), "w") as out:
                s = out.add_stream(codec, rate=25)
                s.width, s.height, s.pix_fmt = w, h, "yuv420p"
                s.options = {"crf": str(crf), "preset": preset}
                s.thread_type = "AUTO"
                if threads:
                    s.codec_context.thread_count = threads
                for i in range(frames):
                    f = from_rgb(imgs[i % len(imgs)], colour, "yuv420p")
                    f.pts = i
                    for p in s.encode(f):
                        out.mux(p)
                for p in s.encode():
                    out.mux(p)

    return _median_fps(run, frames, repeat)


def end_to_end(clip: Path, args: list[str], repeat: int = 3) -> tuple[float, float]:
    """fps and peak RSS (MB) of ``vsr upscale`` in a child process, median of ``repeat`` runs.

    The fps is the pipeline's own (first frame read to file renamed), as its summary line
    reports it: process start-up, model loading and engine compilation are left out.
    """
    import re

    rates, peaks = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeat):
            out = Path(d) / f"o{i}.mp4"
            rc, err, rss = run_measured([sys.executable, "-m", "vsr", "upscale", str(clip), str(out), *args])
            match = re.search(r"([0-9.]+) fps average", err)
            if rc != 0 or not match:
                raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else f"vsr upscale exited with {rc}")
            rates.append(float(match.group(1)))
            peaks.append(rss)
    return statistics.median(rates), max(peaks)


def run_measured(cmd: list[str]) -> tuple[int, str, float]:
    """Run ``cmd`` in a child of a fresh process: (exit code, stderr, peak RSS in MB of that command alone)."""
    code = ("import resource, subprocess, sys, json\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "print(json.dumps([r.returncode, r.stderr, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n")
    res = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    rc, err, rss_kb = json.loads(res.stdout.strip().splitlines()[-1])
    return rc, err, rss_kb / 1024


def floor_fps(clip: Path, scale: int, codec: str = "libx264", preset: str = "veryfast", crf: int = 17,
              repeat: int = 3) -> float:
    """What a user gets without a learned model: decode → OpenCV bicubic → encode, same encoder settings, with the
    product's colour conversions (:mod:`vsr.video.colour`: the source's colour in, and out as its tags)."""
    import av
    import cv2

    from vsr.video.colour import colour_of, from_rgb, tag_encoder, to_8bit, to_rgb

    def run() -> int:
        n = 0
        with tempfile.TemporaryDirectory() as d, av.open(str(clip)) as inp, av.open(os.path.join(d, "f.mp4"), "w") as out:
            vin = inp.streams.video[0]
            vin.thread_type = "AUTO"
            s = out.add_stream(codec, rate=vin.average_rate or 25)
            s.width, s.height, s.pix_fmt = vin.codec_context.width * scale, vin.codec_context.height * scale, "yuv420p"
            s.options = {"crf": str(crf), "preset": preset}
            s.thread_type = "AUTO"
            colour = None
            for f in inp.decode(vin):
                if colour is None:
                    colour = colour_of(f)
                    tag_encoder(s.codec_context, colour)
                rgb = to_8bit(to_rgb(f, colour))
                up = cv2.resize(rgb, (s.width, s.height), interpolation=cv2.INTER_CUBIC)
                o = from_rgb(up, colour, "yuv420p")
                o.pts = n
                for p in s.encode(o):
                    out.mux(p)
                n += 1
            for p in s.encode():
                out.mux(p)
        return n

    n = run()
    return _median_fps(run, n, repeat)


def run_bench(model_ref: str | None, scale: int, backends: list[str], precisions: list[str], size: str, frames: int,
              repeat: int, workdir: Path, e2e: bool = True, say=print) -> Report:
    from engines import BackendError, Identity, create_runner
    from vsr.runner import calibration
    from vsr.weightfile import weights_id
    from vsr.zoo import default_model, load_model, looks_like_path

    clip = make_bench_clip(workdir, size, frames)
    w, h = SIZES[size]
    ref = model_ref or default_model("video", scale)
    model, info = load_model(ref, None if looks_like_path(ref) else scale)
    scale = info.scale
    report = Report(model=info.name, scale=scale, input=f"{w}×{h}", output=f"{w * scale}×{h * scale}", frames=frames,
                    machine=machine())
    say(f"benchmarking {info.name} ×{scale}, {w}×{h} → {w * scale}×{h * scale}, {frames} frames, median of {repeat}")
    fps, n = decode_fps(clip, repeat)
    report.rows.append(Row("decode", fps=fps, note="decode + RGB + float"))
    say(f"  decode: {fps:.1f} fps")
    report.rows.append(Row("encode", fps=encode_fps((h * scale, w * scale), min(frames, 60), repeat=repeat),
                           note="RGB→YUV + libx264 veryfast"))
    say(f"  encode: {report.rows[-1].fps:.1f} fps")
    floor = floor_fps(clip, scale, repeat=repeat)
    report.rows.append(Row("floor", fps=floor, note="decode → OpenCV bicubic → libx264 veryfast"))
    say(f"  floor (no model): {floor:.1f} fps")
    inputs = clip_windows(clip, model)
    if len(inputs) and (inputs[0].flows is not None or getattr(model, "frames", 1) > 1):
        fps = windows_fps(clip, model, repeat=repeat)
        report.rows.append(Row("windows", fps=fps, note="luma, DIS flows, scene cuts (the reader's extra work)"))
        say(f"  windows: {fps:.1f} fps")
    for backend in backends:
        for precision in precisions:
            try:
                net = load_model(ref, None if looks_like_path(ref) else scale)[0]
                runner = create_runner(net, backend=backend, precision=precision,
                                       identity=Identity.of(net, weights_id(info), info.name), shape=(h, w),
                                       calibration=calibration(net, info, backend, precision))
            except BackendError as e:
                report.rows.append(Row("model", backend, precision, note=f"unavailable: {e}"))
                say(f"  model {backend} {precision}: unavailable ({e})")
                continue
            fps = model_fps(runner, inputs, repeat=repeat)
            report.rows.append(Row("model", runner.name, runner.precision, fps))
            say(f"  model {runner.name} {runner.precision}: {fps:.1f} fps")
            if e2e:
                args = ["-m", ref, "-s", str(scale), "--backend", backend, "--precision", precision, "--preset", "veryfast"]
                fps, rss = end_to_end(clip, args, repeat=repeat)
                report.rows.append(Row("end-to-end", runner.name, runner.precision, fps, rss))
                say(f"  end-to-end {runner.name} {runner.precision}: {fps:.1f} fps, peak RSS {rss:.0f} MB")
    return report


COLUMNS = ("stage", "backend", "precision", "fps", "× floor", "peak RSS", "note")


def table_cells(report: Report) -> list[list[str]]:
    """The report's rows as formatted cells under ``COLUMNS`` (shared by the terminal and Markdown tables)."""
    floor = next((r.fps for r in report.rows if r.stage == "floor"), None)
    cells = []
    for r in report.rows:
        ratio = f"{r.fps / floor:.2f}" if floor and r.fps and r.stage in ("end-to-end", "model") else ""
        cells.append([r.stage, r.backend, r.precision, f"{r.fps:.1f}" if r.fps else "-", ratio,
                      f"{r.peak_rss_mb:.0f} MB" if r.peak_rss_mb else "", r.note])
    return cells


def title(report: Report) -> str:
    return f"{report.model} ×{report.scale}, {report.input} → {report.output}, {report.frames} frames ({report.machine})"


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"vsr bench: {title(report)}")
    for c in COLUMNS:
        t.add_column(c, justify="right" if c in ("fps", "× floor", "peak RSS") else "left")
    console = Console()
    notes: list[str] = []
    for row in table_cells(report):
        if console.width < 140 and len(row[-1]) > 12:  # under the table: folded into its last column, a note
            notes += [row[-1]] if row[-1] not in notes else []  # takes a line a word in a usual terminal
            row[-1] = f"[{notes.index(row[-1]) + 1}]"
        t.add_row(*row)
    console.print(t)
    for i, note in enumerate(notes, 1):
        console.print(f"[{i}] {note}", markup=False, highlight=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
