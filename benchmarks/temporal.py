"""The temporal stage, per frame against stabilised: quality on held-out clips and cost at 1080p.

    python benchmarks/temporal.py quality ../shared/data/val_video -m realesr-general-x4v3,image
    python benchmarks/temporal.py cost -m realesr-general-x4v3,image
    python benchmarks/temporal.py figure ../shared/data/val_video -m realesr-general-x4v3
    python benchmarks/temporal.py bound ../shared/data/train_videos/davis -m image

quality: the SOURCES.md protocol (first 20 frames of each clip, ×4, LR clean BI and through libx264 CRF 26), torch
fp32: PSNR-Y, SSIM-Y, tOF, and two measures of temporal change taken along the ground truth's motion: the warping
error (the output's change minus the truth's; below 0: steadier than the truth) and the temporal error (mean
|output's change − truth's change|: 0 when the output changes exactly as the truth does, above it for flicker and
for lag alike). Rows: each model per frame, with the stage as it ships, and the naive blend (α 0.8, σ 8, the FAST
preset's flow, no occlusion or difference check) for reference.
figure: crops of a moving car (car-shadow, ×4, LR through CRF 26, frame 10): bicubic, vsr's real-footage model and a
community model per frame and stabilised, over how much each output changes from the previous frame along the
truth's motion (flicker is what changes where the truth does not; written to benchmarks/figures/temporal.png).
cost: the stage's time per frame at 480×270 → 1920×1080 (its flow on the reader thread, its blend after the model)
beside the model's own on OpenVINO, at the precision ``--precision auto`` picks.
bound: what a blend after the model could do at best, on training clips (DAVIS): PSNR-Y, tOF and tErr against per
frame of a blend given what no stage has: the truth's motion and occlusions (weight α where the truth is still), and
the best weight any stage could learn, read off the truth (per pixel, or one per 9×9 neighbourhood: what a small
network at the frame's scale could draw), with the stage's motion or the truth's; beside the stage as it ships and a
learned weight (a logistic function of the stage's measures, fitted to the truth on the same clips: optimistic)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vsr.evaluate import load_source, upscale_clip
from vsr.flow import Dis, luma8, warp_back
from vsr.metrics import _farneback, psnr, rgb_to_y, ssim, tof_pair, warp_error_pair
from vsr.temporal import Stabiliser, Temporal, motion

NAIVE = Temporal(strength=0.8, sigma=8.0, tau=0.0, consistency=0.0, dis=Dis())


def temporal_error(sr: list[np.ndarray], hr: list[np.ndarray]) -> float:
    out = []
    for i in range(1, len(sr)):
        flow = _farneback(hr[i], hr[i - 1])
        change = rgb_to_y(sr[i]) - warp_back(rgb_to_y(sr[i - 1]), flow)
        truth = rgb_to_y(hr[i]) - warp_back(rgb_to_y(hr[i - 1]), flow)
        out.append(float(np.mean(np.abs(change - truth)[8:-8, 8:-8])))
    return float(np.mean(out))


def stabilise(lr: list[np.ndarray], sr: list[np.ndarray], stage: Temporal) -> list[np.ndarray]:
    """The stage over a model's frames, its motion measured on the LR frames as the reader thread measures it."""
    stab, prev, out = Stabiliser(4, stage), None, []
    for f, y in zip(lr, sr):
        lum = luma8(f)
        out.append(stab.step(y, motion(prev, lum, stage) if prev is not None else None, prev is None))
        prev = lum
    return out


def runner_for(name: str, backend: str = "torch", precision: str = "fp32"):
    from vsr.runner import choose, open_runner

    return open_runner(choose(name, 4, "video"), backend, precision, warn=lambda _m: None)[0]


def quality(args) -> list[dict]:
    rows = []
    for crf in (0, 26):
        src = load_source(args.folder, 4, max_frames=args.frames, crf=crf)
        for name in args.models.split(","):
            runner = runner_for(name)
            model_out = [list(upscale_clip(runner, item.lr)) for item in src.items]  # the stage comes after it
            for label, stage in (("per frame", None), ("stabilised", Temporal()), ("naive blend", NAIVE)):
                per_clip = []
                for item, frames in zip(src.items, model_out):
                    sr = frames if stage is None else stabilise(item.lr, frames, stage)
                    hr = item.hr
                    per_clip.append([np.mean([psnr(a, b, shave=4) for a, b in zip(sr, hr)]),
                                     np.mean([ssim(a, b, shave=4) for a, b in zip(sr, hr)]),
                                     np.mean([tof_pair(sr[i - 1], sr[i], hr[i - 1], hr[i]) for i in range(1, len(sr))]),
                                     np.mean([warp_error_pair(sr[i - 1], sr[i], hr[i - 1], hr[i])
                                              for i in range(1, len(sr))]),
                                     temporal_error(sr, hr)])
                m = np.mean(per_clip, axis=0)
                row = {"model": Path(name).stem, "lr": f"CRF {crf}" if crf else "clean BI", "run": label,
                       "psnr": m[0], "ssim": m[1], "tof": m[2], "warp": m[3], "terr": m[4],
                       "clips": {it.name: [round(float(v), 4) for v in c] for it, c in zip(src.items, per_clip)}}
                rows.append(row)
                print(f"{row['model']:22s} {row['lr']:9s} {label:12s} {m[0]:.2f} / {m[1]:.4f} / tOF {m[2]:.3f} / "
                      f"warp {m[3]:+.3f} / tErr {m[4]:.3f}", flush=True)
    return rows


def truth_blend(hr: list[np.ndarray], sr: list[np.ndarray], alpha: float, still: float = 4.0) -> list[np.ndarray]:
    """The blend with what no stage has: the truth's own motion, and its occlusions (where the truth's frame t−1
    moved by that motion is more than ``still`` levels off frame t, in a 5×5 neighbourhood)."""
    import cv2

    out = [sr[0]]
    for i in range(1, len(sr)):
        flow = _farneback(hr[i], hr[i - 1])
        moved = np.stack([warp_back(out[-1][..., c], flow) for c in range(3)], -1)
        off = cv2.blur(np.abs(rgb_to_y(hr[i]) - warp_back(rgb_to_y(hr[i - 1]), flow)), (5, 5))
        w = (alpha * (off < still))[..., None]
        out.append(np.clip(np.rint(w * moved + (1 - w) * sr[i]), 0, 255).astype(np.uint8))
    return out


def recursive_blend(hr: list[np.ndarray], lr: list[np.ndarray], sr: list[np.ndarray], weight, truth: bool = False):
    """out_t = sr_t + w · (out_{t−1} moved − sr_t), moved by the stage's motion (or the truth's); ``weight(i, cur,
    d, m)`` gives w (H×W) from the new frame, the moved previous output minus it, and the stage's Motion (None with
    the truth's)."""
    import cv2

    out, stage = [sr[0]], Temporal()
    for i in range(1, len(sr)):
        m = None
        if truth:
            flow = _farneback(hr[i], hr[i - 1])
        else:
            m = motion(luma8(lr[i - 1]), luma8(lr[i]), stage)
            flow = cv2.resize(m.flow * np.float32(hr[i].shape[0] / lr[i].shape[0]), hr[i].shape[1::-1],
                              interpolation=cv2.INTER_LINEAR)
        cur = sr[i].astype(np.float32)
        d = cv2.remap(out[-1].astype(np.float32), flow, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                      borderMode=cv2.BORDER_REPLICATE) - cur
        w = weight(i, cur, d, m)[..., None]
        out.append(np.clip(np.rint(cur + w * d), 0, 255).astype(np.uint8))
    return out


def best_weight(hr: list[np.ndarray], smooth: int = 0):
    """The weight that brings each pixel closest to the truth (least squares over RGB, in [0, 1]; with ``smooth``,
    one weight per smooth×smooth neighbourhood): no learned weight can do better."""
    import cv2

    def weight(i, cur, d, m):
        num, den = ((hr[i] - cur) * d).sum(-1), (d * d).sum(-1)
        if smooth:
            num, den = cv2.blur(num, (smooth, smooth)), cv2.blur(den, (smooth, smooth))
        return np.clip(num / (den + 1e-3), 0, 1)
    return weight


def measures(cur: np.ndarray, d: np.ndarray, m) -> np.ndarray:
    """What a learned weight sees at each output pixel, as log(1 + x²): the stage's LR error (warp and occlusion),
    the output difference and its 9×9 mean, the texture, the motion's length."""
    import cv2

    h, w = cur.shape[:2]
    grey = cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY)
    diff = np.abs(cv2.cvtColor(cur + d, cv2.COLOR_RGB2GRAY) - grey) / 16
    texture = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)) / 64
    speed = np.hypot(*m.flow.transpose(2, 0, 1)) * (h / m.flow.shape[0] / 8)
    x = [cv2.resize(m.error, (w, h)), diff, cv2.blur(diff, (9, 9)), cv2.blur(texture, (5, 5)),
         cv2.resize(speed, (w, h))]
    return np.log1p(np.square(np.stack(x, -1)))


def learned_weight(clips: list[tuple], samples: int = 4000):
    """A weight sigmoid(θ · measures + b), θ fitted to the truth (least squares of the blended output) on pixels of
    ``clips`` [(hr, lr, sr)], the previous outputs the shipped stage's."""
    import torch

    stage, rng, xs, ds, gs = Temporal(), np.random.default_rng(0), [], [], []
    for hr, lr, sr in clips:
        def shipped(i, cur, d, m, hr=hr):  # the shipped stage's weight, and a sample of pixels
            import cv2

            f = measures(cur, d, m)
            pick = rng.choice(f.shape[0] * f.shape[1], samples, replace=False)
            xs.append(f.reshape(-1, f.shape[-1])[pick])
            ds.append(d.reshape(-1, 3)[pick])
            gs.append((hr[i] - cur).reshape(-1, 3)[pick])
            diff = np.abs(cv2.cvtColor(cur + d, cv2.COLOR_RGB2GRAY) - cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY))
            trust = np.exp(-cv2.resize(m.error, cur.shape[1::-1]))
            return stage.strength * trust * np.exp(-np.square(diff / stage.tau))
        recursive_blend(hr, lr, sr, shipped)
    x, d, g = (torch.from_numpy(np.concatenate(v).astype(np.float32)) for v in (xs, ds, gs))
    theta = torch.zeros(x.shape[1] + 1, requires_grad=True)
    opt = torch.optim.LBFGS([theta], max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = ((torch.sigmoid(x @ theta[:-1] + theta[-1])[:, None] * d - g) ** 2).mean()
        value.backward()
        return value
    opt.step(loss)
    t = theta.detach().numpy()
    print(f"learned weight: θ {np.round(t, 3).tolist()}", flush=True)
    return lambda i, cur, d, m: 1 / (1 + np.exp(-(measures(cur, d, m) @ t[:-1] + t[-1])))


BEST = {"best weight, the stage's motion": (False, 0), "best weight per 9×9, the stage's motion": (False, 9),
        "best weight, the truth's motion": (True, 0), "best weight per 9×9, the truth's motion": (True, 9)}


def bound(args) -> list[dict]:
    """How far any blend after the model could lower tOF, given what no stage has, on training clips."""
    from vsr.evaluate import _clip
    from vsr.video.source import frames_of

    rows = []
    for name in args.models.split(","):
        runner = runner_for(name)
        clips = {}
        for crf in (0, 26):
            for clip in args.clips.split(","):
                item = _clip(clip, frames_of(args.folder / clip, args.frames), 4, 0, crf)
                clips[(crf, clip)] = (item.hr, item.lr, list(upscale_clip(runner, item.lr)))
        learned = learned_weight(list(clips.values()))
        for (crf, clip), (hr, lr, sr) in clips.items():
            base = _scores(sr, hr)
            runs = {"the stage as it ships": stabilise(lr, sr, Temporal()),
                    "a learned weight (fitted on these clips)": recursive_blend(hr, lr, sr, learned)}
            runs.update({f"the truth's motion, α {a}": truth_blend(hr, sr, a) for a in (0.6, 0.8)})
            runs.update({label: recursive_blend(hr, lr, sr, best_weight(hr, smooth), truth)
                         for label, (truth, smooth) in BEST.items()})
            for label, out in runs.items():
                b = _scores(out, hr)
                rows.append({"model": Path(name).stem, "crf": crf, "clip": clip, "blend": label,
                             "psnr": b[0] - base[0], "tof": b[1] / base[1], "terr": b[2] / base[2]})
        for label in dict.fromkeys(x["blend"] for x in rows):
            r = np.array([(x["psnr"], x["tof"], x["terr"]) for x in rows if x["blend"] == label
                          and x["model"] == Path(name).stem])
            print(f"{Path(name).stem}, {label}: PSNR-Y {r[:, 0].mean():+.3f} dB, tOF ×{r[:, 1].mean():.3f} (lowest "
                  f"×{r[:, 1].min():.2f}), tErr ×{r[:, 2].mean():.3f}", flush=True)
    return rows


def _scores(sr: list[np.ndarray], hr: list[np.ndarray]) -> tuple[float, float, float]:
    return (float(np.mean([psnr(a, b, shave=4) for a, b in zip(sr, hr)])),
            float(np.mean([tof_pair(sr[i - 1], sr[i], hr[i - 1], hr[i]) for i in range(1, len(sr))])),
            temporal_error(sr, hr))


def cost(args) -> list[dict]:
    from vsr._testclips import scene

    lr = [scene(270, 480, t, speed=2.0) for t in range(12)]
    stage = Temporal()
    rows = []
    for name in args.models.split(","):
        runner = runner_for(name, "openvino", "auto")  # the precision vsr upscale runs it at
        runner([lr[0]])  # compiled, warm
        t = time.perf_counter()
        sr = [runner([f]) for f in lr]
        model = (time.perf_counter() - t) / len(lr)
        stab, prev = Stabiliser(4, stage), None
        t_motion = t_blend = 0.0
        for i, (f, y) in enumerate(zip(lr, sr)):
            t = time.perf_counter()
            lum = luma8(f)
            m = motion(prev, lum, stage) if prev is not None else None
            t_motion += time.perf_counter() - t
            t = time.perf_counter()
            stab.step(y, m, i == 0)
            t_blend += time.perf_counter() - t
            prev = lum
        row = {"model": Path(name).stem, "precision": runner.precision, "model_ms": model * 1000,
               "motion_ms": t_motion / (len(lr) - 1) * 1000, "blend_ms": t_blend / (len(lr) - 1) * 1000}
        row["share"] = (row["motion_ms"] + row["blend_ms"]) / row["model_ms"]
        rows.append(row)
        print(f"{row['model']}: model ({runner.precision}) {row['model_ms']:.0f} ms/frame; stage: flow "
              f"{row['motion_ms']:.1f} ms + blend {row['blend_ms']:.1f} ms = {row['share'] * 100:.1f} % of the model",
              flush=True)
    return rows


def figure(args) -> list[dict]:
    from PIL import Image, ImageDraw

    clip, t, (y, x, size) = "car-shadow", 10, (120, 300, 192)
    src = load_source(args.folder / clip, 4, max_frames=t + 1, crf=26)
    item = src.items[0]
    hr = item.hr
    flow = _farneback(hr[t], hr[t - 1])
    community = args.models.split(",")[0]
    columns = [("bicubic", "bicubic", None), ("vsr quality-real", "quality-real", None),
               (f"{Path(community).stem}", community, None), (f"{Path(community).stem} + stage", community, Temporal())]
    tiles = []

    def change(a, b):
        c = np.abs(rgb_to_y(b) - warp_back(rgb_to_y(a), flow))[y : y + size, x : x + size]
        return np.repeat(np.clip(c * 4, 0, 255).astype(np.uint8)[..., None], 3, axis=2)

    def label(img, text):
        im = Image.fromarray(np.ascontiguousarray(img))
        d = ImageDraw.Draw(im)
        d.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(0, 0, 0))
        d.text((4, 1), text, fill=(255, 255, 255))
        return np.asarray(im)

    for text, name, stage in columns:
        frames = list(upscale_clip(runner_for(name), item.lr, temporal=stage))
        tiles.append((label(frames[t][y : y + size, x : x + size], text), change(frames[t - 1], frames[t])))
    tiles.append((label(hr[t][y : y + size, x : x + size], "ground truth"), change(hr[t - 1], hr[t])))
    gap = np.full((size, 4, 3), 255, np.uint8)
    rows = [np.concatenate([p for tile in tiles for p in (tile[r], gap)][:-1], axis=1) for r in (0, 1)]
    out = Path(__file__).with_name("figures") / "temporal.png"
    Image.fromarray(np.concatenate([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8), rows[1]])).save(out)
    print(f"wrote {out}")
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("folder", type=Path)
    q.add_argument("--frames", type=int, default=20)
    c = sub.add_parser("cost")
    f = sub.add_parser("figure")
    f.add_argument("folder", type=Path)
    b = sub.add_parser("bound")
    b.add_argument("folder", type=Path)
    b.add_argument("--clips", default="camel,breakdance,car-roundabout,dog,parkour,kite-surf")
    b.add_argument("--frames", type=int, default=20)
    for p in (q, c, f, b):
        p.add_argument("-m", "--models", default="image")
        p.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = {"quality": quality, "cost": cost, "figure": figure, "bound": bound}[args.what](args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
