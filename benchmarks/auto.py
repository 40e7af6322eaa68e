"""``-m auto``: what its choice scores on held-out clips, the calibration of its thresholds on training clips, and
what the choice costs.

    python benchmarks/auto.py ../shared/data/val_video               # the table in BENCHMARKS.md (auto_val.json)
    python benchmarks/auto.py calibrate ../shared/data/train_videos  # fits vsr/auto.py's thresholds (auto_train.json)
    python benchmarks/auto.py speed                                  # the choice's time on generated files up to 4K

Each clip (its first 20 frames; a training video's from 2 s in), HR modcropped to the scale, is downscaled with
MATLAB's bicubic (vsr.resize.imresize) and written as an MP4 file per condition, the way a user would have it:
lossless (libx264 CRF 0), libx264 CRF 18, 26 and 34 (preset medium), and Gaussian noise of σ 2 to 25 levels then
CRF 18. ``auto`` decides from that file (vsr.auto.decide); both models are scored on the frames decoded from it
against HR (PSNR-Y, ``scale`` pixels cropped, torch fp32, as vsr eval scores). Calibration never reads val_video.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from vsr.auto import CLEAN, REAL, RULES, Rule, classify, decide_from, measure, rule_for

HERE = Path(__file__).parent
FRAMES = 20
# (label, CRF, noise σ): CRF 0 is lossless in 8-bit x264
CONDITIONS = [("lossless", 0, 0), ("CRF 18", 18, 0), ("CRF 26", 26, 0), ("CRF 34", 34, 0),
              ("σ 2 + CRF 18", 18, 2), ("σ 5 + CRF 18", 18, 5), ("σ 10 + CRF 18", 18, 10),
              ("σ 15 + CRF 18", 18, 15), ("σ 25 + CRF 18", 18, 25)]
MISS = 0.1  # dB: a choice further than this below the better model's score misses


# ---------------------------------------------------------------------------
# clips and their files


def clips(root: Path, frames: int) -> list[tuple[str, list[np.ndarray]]]:
    """(name, HR frames) of every clip under ``root``: folders of frames (their first frames) and video files
    (frames from 2 s in: a film's first seconds are often titles)."""
    from vsr.formats import VIDEO_EXTS, list_images
    from vsr.video.colour import to_8bit
    from vsr.video.source import frames_of

    out = []
    for d in sorted(p for p in root.rglob("*") if p.is_dir() and list_images(p)):
        out.append((d.name, [to_8bit(f) for f in frames_of(d, frames)]))
    for f in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTS):
        if "yuv444" in f.name:  # the same film as its 4:2:0 twin
            continue
        got = [to_8bit(x) for x in frames_of(f, 48 + frames)]
        out.append((f.stem, got[-frames:]))
    return out


def stills(root: Path, frames: int) -> list[tuple[str, list[np.ndarray]]]:
    """A camera move across each PNG photo in ``root`` (clean sources; the training videos are all compressed at
    their source): a window 2 px to the side and a little up or down each frame, whole pixels, so nothing is
    resampled. A larger photo (a JPEG, whose blocks this hides) is area-downscaled to 1536 px wide first."""
    import cv2

    from vsr.picture import read_rgb8

    out = []
    for p in sorted(root.iterdir()):
        img = read_rgb8(p)
        if img.shape[1] > 2000:
            img = cv2.resize(img, (1536, img.shape[0] * 1536 // img.shape[1]), interpolation=cv2.INTER_AREA)
        elif p.suffix.lower() != ".png":
            continue
        h, w = img.shape[:2]
        wh, ww = (480, 854) if w > 1000 else (256, 384)
        ww, wh = min(ww, w - 2 * frames - 4), min(wh, h - 16)
        y0, x0 = (h - wh) // 2, 2
        out.append((p.stem, [img[y0 + dy:y0 + dy + wh, x0 + 2 * t:x0 + 2 * t + ww]
                             for t in range(frames) for dy in [round(6 * np.sin(t / 5))]]))
    return out


def write_conditions(name: str, hr: list[np.ndarray], scale: int, work: Path) -> list[tuple[str, Path]]:
    from vsr.resize import imresize
    from vsr.video.recompress import encode

    lr = [imresize(f, 1.0 / scale) for f in hr]
    out = []
    for label, crf, sigma in CONDITIONS:
        frames = lr
        if sigma:
            rng = np.random.default_rng(zlib.crc32(f"{name}/{scale}/{label}".encode()))
            frames = [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).round().astype(np.uint8) for f in lr]
        path = work / f"{name}_x{scale}_{label.replace(' ', '').replace('+', '_').replace('σ', 'noise')}.mp4"
        encode(frames, path, crf=crf, format="mp4")
        out.append((label, path))
    return out


class Scorer:
    """PSNR-Y of CLEAN and REAL on a file's decoded frames (fp32: torch, the reference, or OpenVINO, which scores
    the same to 1e-5 dB and runs 10× faster on a CPU); a runner per model, scale and frame size."""

    def __init__(self, backend: str = "torch"):
        self.backend, self.runners = backend, {}

    def runner(self, model: str, scale: int, shape: tuple[int, int]):
        from vsr.runner import choose, open_runner

        key = (model, scale, shape if self.backend != "torch" else None)
        if key not in self.runners:
            self.runners[key] = open_runner(choose(model, scale, "video"), self.backend, "fp32", shape=shape,
                                            warn=lambda _m: None)[0]
        return self.runners[key]

    def __call__(self, path: Path, hr: list[np.ndarray], scale: int) -> dict[str, float]:
        from vsr.evaluate import Item, Source, evaluate
        from vsr.video.recompress import decode

        h, w = hr[0].shape[0] // scale, hr[0].shape[1] // scale
        lr = [f[:h, :w] for f in decode(path)]
        src = Source(path.stem, "video", [Item(path.stem, hr, lr)])
        return {m: evaluate(self.runner(m, scale, (h, w)), src, with_ssim=False)[0].psnr for m in (CLEAN, REAL)}


def collect(sources, scales: list[int], out: Path, work: Path | None, backend: str) -> list[dict]:
    """Every clip × scale × condition: its file's signals, auto's choice and time, both models' PSNR. Scores
    already in ``out`` (same clip, scale and condition) are kept: the files are the same on every run."""
    from vsr.metrics import modcrop

    old = {}
    if out.exists():
        old = {(r["clip"], r["scale"], r["condition"]): r["psnr"] for r in json.loads(out.read_text())["rows"]}
    score = Scorer(backend)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, frames_hr in sources:
            for scale in scales:
                hr = [modcrop(f, scale) for f in frames_hr]
                for label, path in write_conditions(name, hr, scale, work):
                    t0 = time.perf_counter()
                    s = measure(path)
                    d = decide_from(s, scale)
                    ms = (time.perf_counter() - t0) * 1000
                    psnr = old.get((name, scale, label)) or score(path, hr, scale)
                    rows.append({"clip": name, "scale": scale, "condition": label, "bytes": path.stat().st_size,
                                 "signals": {**dataclasses.asdict(s), "bpp_h264": s.bpp_h264}, "choice": d.model,
                                 "why": d.why, "ms": round(ms, 1), "psnr": psnr})
                    print(f"{name} ×{scale} {label}: {d.line} [{ms:.0f} ms]; {CLEAN} {psnr[CLEAN]:.2f}, "
                          f"{REAL} {psnr[REAL]:.2f}", flush=True)
                    out.write_text(json.dumps({"rows": rows}, indent=1, ensure_ascii=False))
    return rows


# ---------------------------------------------------------------------------
# the rule's outcome


def signals_of(row: dict):
    from vsr.auto import Signals

    fields = {f.name for f in dataclasses.fields(Signals)}
    return Signals(**{k: v for k, v in row["signals"].items() if k in fields})


def loss(row: dict, model: str) -> float:
    """dB below the better of the two models."""
    return max(row["psnr"].values()) - row["psnr"][model]


def choice_of(row: dict) -> str:
    """What auto runs for this row's file, by the rule as it is now (the row's signals are the file's)."""
    return decide_from(signals_of(row), row["scale"]).model


def choose_with(row: dict, rule: Rule, use_qp: bool = True) -> str:
    return REAL if classify(signals_of(row), rule, use_qp=use_qp)[0] else CLEAN


def cells(rows: list[dict], scale: int, label: str) -> list[str]:
    """Both models' mean PSNR-Y and auto's, how many clips auto gave REAL, its worst loss to the better model."""
    rs = [r for r in rows if r["scale"] == scale and r["condition"] == label]
    if not rs:
        return ["", ""]
    mean = [np.mean([r["psnr"][m] for r in rs]) for m in (CLEAN, REAL)]
    auto = np.mean([r["psnr"][choice_of(r)] for r in rs])
    picks = sum(choice_of(r) == REAL for r in rs)
    worst = max(loss(r, choice_of(r)) for r in rs)
    return [f"{mean[0]:.2f} / {mean[1]:.2f} / **{auto:.2f}**", f"{picks} of {len(rs)}, {worst:.2f}"]


def summary(rows: list[dict]) -> list[str]:
    lines = []
    for scale in sorted({r["scale"] for r in rows}, reverse=True):
        rs = [r for r in rows if r["scale"] == scale]
        for what, picks in (("auto", [choice_of(r) for r in rs]),
                            ("auto without QP", [choose_with(r, rule_for(scale), use_qp=False) for r in rs])):
            within = sum(loss(r, c) <= MISS for r, c in zip(rs, picks))
            lines.append(f"×{scale} {what}: within {MISS} dB of the better model on {within} of {len(rs)}; picks "
                         f"{REAL} {picks.count(REAL)}, {CLEAN} {picks.count(CLEAN)}; worst loss "
                         f"{max(loss(r, c) for r, c in zip(rs, picks)):.2f} dB")
        misses = [f"{r['clip']} {r['condition']} ({loss(r, choice_of(r)):.2f})" for r in rs
                  if loss(r, choice_of(r)) > MISS]
        lines.append(f"×{scale} misses: " + (", ".join(misses) or "none"))
    ms = [r["ms"] for r in rows]
    lines.append(f"choice time: median {np.median(ms):.0f} ms, max {max(ms):.0f} ms")
    return lines


def report(rows: list[dict]) -> None:
    scales = sorted({r["scale"] for r in rows}, reverse=True)
    head = [f"×{s}: `{CLEAN}` / `{REAL}` / **auto** | ×{s}: auto picks `{REAL}`, worst loss" for s in scales]
    print("| LR file | " + " | ".join(head) + " |")
    print("|---|" + "---|---|" * len(scales))
    for label, _, _ in CONDITIONS:
        print(f"| {label} | " + " | ".join(c for s in scales for c in cells(rows, s, label)) + " |")
    print("\n".join(summary(rows)))


# ---------------------------------------------------------------------------
# calibration: the thresholds that lose least on the training clips


def fit(rows: list[dict]) -> tuple[Rule, bool, list[str]]:
    """The thresholds with the fewest misses (> MISS dB below the better model), then the least loss in all, on
    these rows: H.264's quantiser, the blockiness and the noise together, then bits per pixel instead of the
    quantiser (for codecs without one) with the other two kept; each where :func:`pick` puts it in its best range.
    Also whether REAL for every row does as well (then clean input too is better served by REAL at this scale)."""
    sig = [signals_of(r) for r in rows]
    gain = np.array([r["psnr"][REAL] - r["psnr"][CLEAN] for r in rows])  # what REAL gains
    lossy = ~np.array([s.lossless for s in sig])
    qp = np.array([s.qp if s.qp is not None else np.nan for s in sig])
    bpp = np.array([s.bpp_h264 if s.bpp_h264 is not None else np.inf for s in sig])
    blk = np.array([s.blockiness for s in sig])
    noise = np.array([s.noise for s in sig])

    def costs(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # real: candidates × rows
        lost = np.where(real, np.maximum(-gain, 0), np.maximum(gain, 0))
        return (lost > MISS).sum(axis=-1), lost.sum(axis=-1)

    def pick(values, grid: list[float]) -> float:
        """A threshold in the middle of its best range where calibration files bound that range on both sides;
        just past the last file where none lies on one side (the range runs to the grid's end there)."""
        values = sorted(set(values))
        lo, hi = values[0], values[-1]
        if lo == grid[0]:
            return float(hi)
        if hi == grid[-1]:
            return float(lo)
        return float(values[(len(values) - 1) // 2])

    def best(grid: list[float], by: np.ndarray, others: list[tuple[float, ...]], rest) -> list[tuple]:
        """Every (threshold, *other) with the least cost; ``by``: rows × grid, fired or not."""
        found, least = [], None
        for o in others:
            misses, lost = costs(by | rest(*o)[None, :])
            for g, m, s in zip(grid, misses, lost):
                c = (int(m), round(float(s), 6))
                if least is None or c < least:
                    least, found = c, []
                if c == least:
                    found.append((g, *o))
        return found, least

    noise_grid = np.round(np.arange(0.2, 8.0, 0.1), 2).tolist() + [np.inf]
    blk_grid = np.round(np.arange(1.0, 1.6, 0.01), 3).tolist() + [np.inf]
    qp_grid = np.arange(4.0, 42.0, 0.5).tolist()
    by_qp = np.array([lossy & (np.nan_to_num(qp, nan=-1) >= q) for q in qp_grid])
    ties, main = best(qp_grid, by_qp, [(k, n) for k in blk_grid for n in noise_grid],
                      lambda k, n: (blk >= k) | (noise >= n))
    q = pick([t[0] for t in ties], qp_grid)
    k = pick([t[1] for t in ties if t[0] == q], blk_grid)
    n = pick([t[2] for t in ties if t[0] == q and t[1] == k], noise_grid)
    notes = [f"QP, blockiness and noise: {main[0]} misses, {main[1]:.2f} dB lost in all"]
    bpp_grid = np.round(np.geomspace(0.02, 4.0, 120), 4).tolist()
    by_bpp = np.array([lossy & (bpp < b) for b in bpp_grid])
    ties, least = best(bpp_grid, by_bpp, [()], lambda: (blk >= k) | (noise >= n))
    b = pick([t[0] for t in ties], bpp_grid)
    notes.append(f"bits/pixel instead of QP: {least[0]} misses, {least[1]:.2f} dB lost in all")
    always = costs(np.ones((1, len(rows)), bool))
    degenerate = (int(always[0][0]), float(always[1][0])) <= (main[0], main[1] + 1e-6)
    notes.append(f"{REAL} for every row: {int(always[0][0])} misses, {float(always[1][0]):.2f} dB lost in all")
    return Rule(qp=q, bpp=round(b, 3), blocky=k, noisy=n), degenerate, notes


def calibrate(args) -> None:
    if "val" in Path(args.data).resolve().name:
        raise SystemExit("calibrate on training clips only (val_video is for measuring the result)")
    out = Path(args.out or HERE / "auto_train.json")
    sources = clips(Path(args.data), args.frames) + (stills(args.stills, args.frames) if args.stills else [])
    rows = collect(sources, args.scales, out, args.work, args.backend)
    rules, degenerate = {}, {}
    for scale in args.scales:
        rules[scale], degenerate[scale], notes = fit([r for r in rows if r["scale"] == scale])
        print(f"×{scale}: " + "; ".join(notes))
    own = [s for s in args.scales if not degenerate[s]]
    for scale in args.scales:  # REAL whatever the input: the labels (compressed, clean) from a scale that has them
        if degenerate[scale]:
            rules[scale] = dataclasses.replace(rules[own[0]] if own else rules[scale], clean=False)
    print(f"fitted: RULES = {rules}\nvsr/auto.py has {RULES}")


def validate(args) -> None:
    out = Path(args.out or HERE / "auto_val.json")
    rows = collect(clips(Path(args.data), args.frames), args.scales, out, args.work, args.backend)
    report(rows)


# ---------------------------------------------------------------------------
# the choice's time


def speed(args) -> None:
    """Time the choice (vsr.auto.decide: open, bit rate, frames sampled by seeking, measures) on generated files:
    1080p and 4K H.264, 4K HEVC, and a 4K lossless Matroska file (no bit rate in its header, larger than what is
    read whole, so its packets are sampled)."""
    import av

    from vsr._testclips import scene
    from vsr.auto import decide

    base = [scene(540, 960, t, seed=3, speed=4.0) for t in range(0, 96, 2)]
    cases = [("1080p H.264 CRF 23, .mp4", (1920, 1080), "libx264", {"crf": "23"}, "mp4", 240),
             ("4K H.264 CRF 23, .mp4", (3840, 2160), "libx264", {"crf": "23"}, "mp4", 240),
             ("4K HEVC CRF 28, .mkv", (3840, 2160), "libx265", {"crf": "28", "x265-params": "log-level=none"},
              "matroska", 120),
             ("4K H.264 lossless, .mkv", (3840, 2160), "libx264", {"qp": "0"}, "matroska", 48)]
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        for label, (w, h), codec, opts, fmt, n in cases:
            path = Path(tmp) / f"clip.{'mp4' if fmt == 'mp4' else 'mkv'}"
            with av.open(str(path), "w", format=fmt) as c:
                s = c.add_stream(codec, rate=24)
                s.width, s.height, s.pix_fmt = w, h, "yuv420p"
                s.options = {"preset": "ultrafast", **opts}
                s.codec_context.gop_size = 48
                for i in range(n):
                    rgb = cv2.resize(base[i % len(base)], (w, h), interpolation=cv2.INTER_CUBIC)
                    f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    f.pts = i
                    c.mux(s.encode(f))
                c.mux(s.encode(None))
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                d = decide(path, 2)
                times.append(time.perf_counter() - t0)
            mb = path.stat().st_size / 1e6
            print(f"| {label}, {n} frames, {mb:.0f} MB | {d.signals.frames} | {d.signals.rate_from} | "
                  f"{1000 * np.median(times):.0f} ms (max {1000 * max(times):.0f}) | {d.line} |", flush=True)
            path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="val_video to measure; with `calibrate`, train_videos; `speed` needs none")
    ap.add_argument("more", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--scales", default="4,2", help="comma-separated")
    ap.add_argument("--frames", type=int, default=FRAMES)
    ap.add_argument("--out", help="the JSON of every row (default benchmarks/auto_val.json or auto_train.json)")
    ap.add_argument("--work", type=Path, help="keep the LR files here (default: a temporary folder)")
    ap.add_argument("--stills", type=Path, help="calibrate: a folder of photos to film as clean clips too")
    ap.add_argument("--backend", default="torch", help="torch (the reference) or openvino, fp32 both")
    ap.add_argument("--repeat", type=int, default=5, help="speed: runs per file")
    args = ap.parse_args()
    args.scales = [int(s) for s in args.scales.split(",")]
    if args.data == "speed":
        speed(args)
    elif args.data == "calibrate":
        if not args.more:
            ap.error("calibrate: which folder of training clips?")
        args.data = args.more
        calibrate(args)
    else:
        validate(args)


if __name__ == "__main__":
    main()
