"""int8 engines against fp32 and bf16, all on OpenVINO: what they cost in quality and what they gain in speed, per
model; the record ``--precision auto`` reads (``vsr/weights/int8.json``); the recurrent drift; the banding figure.

    python benchmarks/int8.py ../shared/data --json benchmarks/int8.json --record          # BENCHMARKS.md's table
    python benchmarks/int8.py ../shared/data --models quality-real --scales 4 --crf 26 --no-speed --json r.json
    python benchmarks/int8.py ../shared/data --drift quality --scales 2     # 300 frames of a real clip
    python benchmarks/int8.py ../shared/data --figure image --scales 4      # benchmarks/figures/int8_flat_*.png
    python benchmarks/int8.py ../shared/data --layers quality --scales 4    # where fp32's and int8's time goes
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/int8.py ../shared/data ...     # as an AVX2-only CPU runs it

Quality: ``val_video``, the first 20 frames of each clip (SOURCES.md's protocol: clean BI LR, or through libx264
CRF 26 for the real-footage models), PSNR-Y / SSIM-Y / tOF of each precision; the loss is fp32's score minus the
other's. int8 twice: calibrated on the training data (``$VSR_CALIBRATION`` = train_videos and train_images; never
val_video) and on vsr's own scenes (what a user without that data builds). Speed: model-only (``vsr bench``'s
measure, 20 windows) and end to end (``vsr upscale``, H.264 veryfast, 30 frames) at ×2 480p and ×4 270p on
``vsr bench``'s generated clip, precisions interleaved round by round (this machine is shared: medians, and the
load average is recorded), the encoder alone, and the 2-core bound 1/(1/model + 1/encode).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from engines.cpu import native_precisions
from vsr import catalogue
from vsr.bench import SIZES, clip_windows, encode_fps, end_to_end, machine, make_bench_clip, model_fps
from vsr.evaluate import evaluate, load_source, mean, mean_tof, upscale_clip
from vsr.int8 import ENV, MAX_LOSS, RECORD, _record, measured
from vsr.weightfile import weights_id
from vsr.zoo import file_scale, load_model, looks_like_path, scales_of

SPEED_SIZE = {2: "480p", 3: "360p", 4: "270p"}
DEFAULT_MODELS = "fast,fast-real,quality,quality-real,real-gan,image"
PRECISIONS = ("fp32", "bf16", "int8")


def runs_here(precision: str) -> bool:
    """Whether this CPU runs ``precision`` (no bf16 where ONEDNN_MAX_CPU_ISA=AVX2 measures an AVX2 CPU on a newer
    one; int8 everywhere)."""
    return precision == "int8" or precision in native_precisions()


@contextlib.contextmanager
def calibrating_on(data: Path | None):
    """``$VSR_CALIBRATION`` set to the training data (None: unset, vsr's own scenes) while runners are made."""
    old = os.environ.pop(ENV, None)
    if data is not None:
        os.environ[ENV] = os.pathsep.join(str(data / d) for d in ("train_videos", "train_images"))
    try:
        yield
    finally:
        os.environ.pop(ENV, None)
        if old is not None:
            os.environ[ENV] = old


def runner(name: str, scale: int, precision: str, shape=None, first: str | None = None):
    """The model on OpenVINO; int8's first convolutions as ``first`` says, else as the record says."""
    from engines import Identity, create_runner
    from vsr.runner import calibration

    model, info = load_model(name, None if looks_like_path(name) else scale)
    cal = calibration(model, info, "openvino", precision)
    if first and cal is not None:
        cal.first_convolutions = first
    return create_runner(model, backend="openvino", precision=precision, shape=shape, warn=lambda _m: None,
                         identity=Identity.of(model, weights_id(info), info.name), calibration=cal), info


# (label, precision, calibrated on the training data, int8's first convolutions)
VARIANTS = (("fp32", "fp32", False, None), ("bf16", "bf16", False, None), ("int8_first", "int8", True, "int8"),
            ("int8_first_leaves", "int8", False, "int8"), ("int8", "int8", True, "float"),
            ("int8_leaves", "int8", False, "float"))


def quality(name: str, scale: int, data: Path, crf: int, frames: int) -> dict:
    src = load_source(data / "val_video", scale, max_frames=frames, crf=crf)
    out = {}
    for label, precision, training, first in VARIANTS:
        if label in ("int8", "int8_leaves") and _within(out, "int8_first", "int8_first_leaves"):
            continue  # the first convolutions in int8 already keep within MAX_LOSS: float ones are only slower
        if not runs_here(precision):
            continue
        with calibrating_on(data if training else None):
            r, _ = runner(name, scale, precision, first=first)
        scores = evaluate(r, src, with_tof=True)
        (p, s), t = mean(scores), mean_tof(scores)
        out[label] = {"psnr": round(p, 3), "ssim": round(s, 5), "tof": round(t, 4)}
        say(f"  {name} ×{scale} {label}: {out[label]}")
    return out


def _within(q: dict, *labels: str) -> bool:
    return all(label in q and q["fp32"]["psnr"] - q[label]["psnr"] <= MAX_LOSS for label in labels)


def verdict(q: dict) -> dict:
    """int8's variant (its first convolutions quantised where both calibrations keep within MAX_LOSS: never
    slower) and its losses against fp32."""
    def loss(label):
        return round(q["fp32"]["psnr"] - q[label]["psnr"], 3)

    first = "int8" if max(loss("int8_first"), loss("int8_first_leaves")) <= MAX_LOSS else "float"
    tag = "_first" if first == "int8" else ""
    return {"first_convolutions": first, "psnr_loss": loss(f"int8{tag}"),
            "psnr_loss_leaves": loss(f"int8{tag}_leaves"),
            "ssim_loss": round(q["fp32"]["ssim"] - q[f"int8{tag}"]["ssim"], 5),
            "ssim_loss_leaves": round(q["fp32"]["ssim"] - q[f"int8{tag}_leaves"]["ssim"], 5),
            "tof_change": round(q[f"int8{tag}"]["tof"] - q["fp32"]["tof"], 4),
            "bf16_psnr_loss": loss("bf16") if "bf16" in q else None,
            "variants": {v: loss(v) for v in ("int8", "int8_leaves", "int8_first", "int8_first_leaves") if v in q}}


def speed(name: str, scale: int, workdir: Path, rounds: int, frames: int = 30) -> dict:
    size = SPEED_SIZE[scale]
    w, h = SIZES[size]
    clip = make_bench_clip(workdir, size, frames)
    model, _ = load_model(name, None if looks_like_path(name) else scale)
    inputs = clip_windows(clip, model, min(20, frames))
    here = [p for p in PRECISIONS if runs_here(p)]
    runners = {p: runner(name, scale, p, shape=(h, w))[0] for p in here}  # int8 as the record says
    model_rates = {p: [] for p in here}
    load = [os.getloadavg()[0]]
    for _ in range(rounds):  # interleaved, so a change in the machine's load hits every precision alike
        for p, r in runners.items():
            model_rates[p].append(model_fps(r, inputs, repeat=1))
    e2e = {p: [] for p in here}
    for _ in range(rounds):
        for p in here:
            args = ["-m", name, "-s", str(scale), "--backend", "openvino", "--precision", p, "--preset", "veryfast"]
            e2e[p].append(end_to_end(clip, args, repeat=1)[0])
    load.append(os.getloadavg()[0])
    encode = encode_fps((h * scale, w * scale), frames, repeat=rounds)
    out = {"size": f"{w}×{h}", "encode_fps": round(encode, 1), "load": [round(x, 2) for x in load],
           "int8_first_convolutions": runners["int8"].calibration.first_convolutions}
    for p in here:
        m, e = statistics.median(model_rates[p]), statistics.median(e2e[p])
        bound = 1 / (1 / m + 1 / encode)
        out[p] = {"model_fps": round(m, 2), "e2e_fps": round(e, 2), "bound_fps": round(bound, 2),
                  "of_bound": round(e / bound, 2), "model_runs": [round(x, 2) for x in model_rates[p]],
                  "e2e_runs": [round(x, 2) for x in e2e[p]]}
        say(f"  {name} ×{scale} {p}: model {m:.2f} fps, end to end {e:.2f} fps ({e / bound:.0%} of the bound "
            f"{bound:.2f})")
    return out


def layers(name: str, scale: int, rounds: int = 3) -> dict:
    """Where fp32's and int8's time goes, by OpenVINO layer type and kernel (its PERF_COUNT), at the speed size:
    what int8 leaves as it was when a model gains less than its convolutions do."""
    import collections

    import openvino as ov

    w, h = SIZES[SPEED_SIZE[scale]]
    out = {}
    for p in ("fp32", "int8"):
        r, _ = runner(name, scale, p, shape=(h, w))
        m = r.core.read_model((r.int8_ir if p == "int8" else r.onnx)("u8")[0])
        shapes = r._input_shapes("u8", 1, *r.d.padded(h, w))
        m.reshape({i: ov.PartialShape(s) for i, s in zip(m.inputs, shapes)})
        req = r.core.compile_model(m, "CPU", {**r._config(), "PERF_COUNT": True}).create_infer_request()
        feed = {i: np.random.default_rng(0).integers(0, 256, s, dtype=np.uint8) if x.get_element_type() == ov.Type.u8
                else np.zeros(s, np.float32) for i, (x, s) in enumerate(zip(m.inputs, shapes))}
        req.infer(feed)
        ms = collections.Counter()
        for _ in range(rounds):
            req.infer(feed)
            for layer in req.profiling_info:
                ms[f"{layer.node_type} {layer.exec_type}"] += layer.real_time.total_seconds() * 1000 / rounds
        out[p] = {k: round(v, 1) for k, v in ms.most_common()}
        say(f"  {name} ×{scale} {p}: {sum(ms.values()):.0f} ms a frame; "
            + ", ".join(f"{k} {v:.0f}" for k, v in ms.most_common(8)))
    return out


def drift(name: str, scale: int, data: Path, frames: int) -> dict:
    """int8 against fp32 frame by frame over a long real clip (sam2's cups, 300 frames, downscaled to LR here):
    a quantised state that drifted would drift away from fp32's."""
    from vsr.metrics import psnr
    from vsr.resize import imresize
    from vsr.video.source import frames_of

    clip = data / "train_videos" / "sam2_gallery" / "02_cups.mp4"
    lr = [np.ascontiguousarray(imresize(f, 1.0 / 2)) for f in frames_of(clip, frames)]
    r32, _ = runner(name, scale, "fp32")
    r8, _ = runner(name, scale, "int8")  # vsr's own scenes: what a user builds (the clip is not in them)
    curve = [psnr(a, b, shave=scale) for a, b in zip(upscale_clip(r8, lr), upscale_clip(r32, lr))]
    at = {t: round(curve[t - 1], 2) for t in (1, 10, 50, 100, 200, 300) if t <= len(curve)}
    say(f"  drift {name} ×{scale}: int8 against fp32 at frame {at}")
    return {"model": name, "scale": scale, "clip": clip.name, "lr": f"{lr[0].shape[1]}×{lr[0].shape[0]}",
            "frames": len(curve), "psnr_at": at, "psnr_first_half": round(float(np.mean(curve[: len(curve) // 2])), 2),
            "psnr_second_half": round(float(np.mean(curve[len(curve) // 2 :])), 2)}


def figure(name: str, scale: int, data: Path) -> Path:
    """fp32 | int8 | their difference ×32 on the flattest LR patch of the validation clips' first frames: where
    banding would show."""
    from PIL import Image, ImageDraw

    src = load_source(data / "val_video", scale, max_frames=1)
    best = None
    for i, item in enumerate(src.items):  # the 48×48 LR patch with the least detail that is not clipped
        y = item.lr[0].astype(np.float32).mean(2)
        for py in range(0, y.shape[0] - 48, 8):
            for px in range(0, y.shape[1] - 48, 8):
                p = y[py : py + 48, px : px + 48]
                if 20 < p.mean() < 235:
                    g = float(np.abs(np.diff(p, axis=0)).mean() + np.abs(np.diff(p, axis=1)).mean())
                    if best is None or g < best[0]:
                        best = (g, i, py, px)
    _, i, py, px = best
    item = src.items[i]
    outs = {}
    for p in ("fp32", "int8"):
        with calibrating_on(None):
            r, _ = runner(name, scale, p)
        outs[p] = next(upscale_clip(r, item.lr[:1]))
    s, size = scale, 48 * scale
    crops = {p: o[py * s : py * s + size, px * s : px * s + size] for p, o in outs.items()}
    diff = np.clip(128 + 32 * (crops["int8"].astype(np.int16) - crops["fp32"].astype(np.int16)), 0, 255)
    tiles = [crops["fp32"], crops["int8"], diff.astype(np.uint8)]
    tiles = [np.asarray(Image.fromarray(t).resize((t.shape[1] * 2, t.shape[0] * 2), Image.NEAREST)) for t in tiles]
    labels = ["fp32", "int8", "int8 - fp32, x32 (grey = 0)"]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], 1)
    im = Image.fromarray(row)
    d = ImageDraw.Draw(im)
    x = 0
    for t, text in zip(tiles, labels):
        d.rectangle([x, 0, x + 8 + 7 * len(text), 16], fill=(0, 0, 0))
        d.text((x + 4, 2), text, fill=(255, 255, 255))
        x += t.shape[1] + 6
    out = Path(__file__).with_name("figures") / f"int8_flat_{Path(name).stem}_x{scale}.png"
    im.save(out)
    levels = np.abs(crops["int8"].astype(np.int16) - crops["fp32"].astype(np.int16))
    say(f"  figure {out}: {item.name} frame 0, LR patch at ({px}, {py}); int8 differs from fp32 by at most "
        f"{levels.max()} levels, {np.mean(levels > 0):.1%} of the values differ")
    return out


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def network(name: str, scale: int) -> str:
    """One speed per network: a real or GAN model runs at its clean model's speed."""
    _, info = load_model(name, None if looks_like_path(name) else scale)
    return json.dumps([info.arch, {k: v for k, v in info.hparams.items() if k != "feedback" or v}, scale],
                      sort_keys=True)


def write_record(rows: list[dict], meta: dict) -> None:
    """vsr/weights/int8.json: name → scale → the weights measured, int8's variant and losses, bf16's loss, the
    model-only speeds (a quality run and a speed run each update their part)."""
    try:
        record = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        record = {}
    models = record.get("models", {})
    for r in rows:
        entry = models.setdefault(r["model"], {}).setdefault(str(r["scale"]), {})
        if entry.get("weights") != r["weights"]:
            entry.clear()
        entry.update(weights=r["weights"], crf=r["crf"])
        if "quality" in r:
            entry.update(verdict(r["quality"]))
        if "speed" in r:
            entry["fps"] = {p: r["speed"][p]["model_fps"] for p in PRECISIONS if p in r["speed"]}
    record = {"about": "OpenVINO int8 (NNCF) and bf16 against fp32 on val_video: PSNR-Y loss in dB (int8 calibrated on "
                      "the training data and on vsr's own scenes), model-only fps at x2 480p / x4 270p; written by "
                      "benchmarks/int8.py; vsr.int8.auto_precision reads it",
              "quality": record.get("quality", {}), "speed": record.get("speed", {}),
              "models": dict(sorted(models.items()))}
    if any("quality" in r for r in rows):
        record["quality"] = meta
    if any("speed" in r for r in rows):
        record["speed"] = meta
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    _record.cache_clear()
    say(f"wrote {RECORD}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="../shared/data")
    ap.add_argument("--models", default=DEFAULT_MODELS + ",{data}/community_weights/realesr-animevideov3.pth")
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--crf", type=int, default=None, help="LR through libx264 at this CRF (default: 26 for the "
                                                          "real-footage models, else clean BI)")
    ap.add_argument("--max-frames", type=int, default=20)
    ap.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=30, help="speed: the clip's frames (model-only: 20 at most)")
    ap.add_argument("--drift", default="", help="a recurrent model: int8 against fp32 over --drift-frames")
    ap.add_argument("--drift-frames", type=int, default=300)
    ap.add_argument("--figure", default="", help="a model: the flat-area crop figure")
    ap.add_argument("--layers", default="", help="a model: fp32's and int8's time by layer type (PERF_COUNT)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record", action="store_true", help="write the losses and speeds to vsr/weights/int8.json")
    args = ap.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    meta = {"date": datetime.date.today().isoformat(), "machine": machine(), "command": " ".join(sys.argv)}
    result = {**meta, "rows": []}
    if args.drift:
        result["drift"] = [drift(args.drift, s, args.data, args.drift_frames) for s in scales]
    if args.figure:
        result["figures"] = [str(figure(args.figure, s, args.data)) for s in scales]
    if args.layers:
        result["layers"] = {s: layers(args.layers, s, args.rounds) for s in scales}
    names = [] if (args.drift or args.figure or args.layers) else [
        m.replace("{data}", str(args.data)) for m in args.models.split(",")]
    seen: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="vsr-int8-") as d:
        for scale in scales:
            for name in names:
                community = None if looks_like_path(name) else catalogue.find(name)
                have = ([file_scale(name)] if looks_like_path(name) else [community.scale] if community
                        else scales_of(name))
                if scale not in have:
                    continue
                _, info = load_model(name, None if looks_like_path(name) else scale)
                # the real-footage models (fast-real, quality-real, real-gan, a catalogue model for camera footage)
                real = community.purpose in ("real", "denoise") if community else (
                    not looks_like_path(name) and "real" in info.name)
                crf = args.crf if args.crf is not None else (26 if real else 0)
                row = {"model": info.name, "scale": scale, "weights": weights_id(info), "crf": crf}
                say(f"{info.name} ×{scale}" + (f", CRF {crf}" if crf else ""))
                if args.quality:
                    row["quality"] = quality(name, scale, args.data, crf, args.max_frames)
                    row["int8"] = verdict(row["quality"])
                    if args.record:  # the speed run builds int8 as the record says
                        write_record([row], meta)
                if args.speed:
                    key = network(name, scale) + (measured(info) or {}).get("first_convolutions", "float")
                    if key not in seen:
                        seen[key] = speed(name, scale, Path(d), args.rounds, args.frames)
                    row["speed"] = seen[key]
                result["rows"].append(row)
                if args.json:
                    args.json.write_text(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.record:
        write_record(result["rows"], meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
