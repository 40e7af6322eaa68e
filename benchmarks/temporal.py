"""The temporal stage, per frame against stabilised: quality on held-out clips and cost at 1080p.

    python benchmarks/temporal.py quality ../shared/data/val_video -m realesr-general-x4v3,image
    python benchmarks/temporal.py cost -m realesr-general-x4v3,image
    python benchmarks/temporal.py figure ../shared/data/val_video -m realesr-general-x4v3
    python benchmarks/temporal.py bound ../shared/data/train_videos/davis -m image
    python benchmarks/temporal.py floor ../shared/data/val_video
    python benchmarks/temporal.py fit ../shared/data/train_videos/davis -m image

quality: the SOURCES.md protocol (first 20 frames of each clip, ×4 or ``--scale``, LR clean BI and through libx264 CRF
26), torch fp32: PSNR-Y, SSIM-Y, tOF, and two measures of temporal change taken along the ground truth's motion: the
warping error (the output's change minus the truth's; below 0: steadier than the truth) and the temporal error (mean
|output's change − truth's change|: 0 when the output changes exactly as the truth does, above it for flicker and for
lag alike). Rows: each model per frame, with the stage as it ships, and the naive blend (α 0.8, σ 8, the FAST preset's
flow, no occlusion or difference check) for reference.
figure: crops of a moving car (car-shadow, ×4, LR through CRF 26, frame 10): bicubic, vsr's real-footage model and a
community model per frame and stabilised, over how much each output changes from the previous frame along the
truth's motion (flicker is what changes where the truth does not; written to benchmarks/figures/temporal.png).
cost: the stage's time per frame at 480×270 → 1920×1080 (its flow on the reader thread, its blend after the model)
beside the model's own on OpenVINO, at the precision ``--precision auto`` picks (the median of ``--rounds``).
bound: what a blend after the model could do at best, on training clips (DAVIS): PSNR-Y, tOF and tErr against per
frame of a blend given what no stage has: the truth's motion and occlusions (weight α where the truth is still), and
the best weight any stage could learn, read off the truth (per pixel, or one per 9×9 neighbourhood: what a small
network at the frame's scale could draw), with the stage's motion or the truth's; beside the stage as it ships.
floor: PSNR-Y and tOF of frames with no flicker at all: the truth itself, blurred alike in every frame (a Gaussian of
several widths), at ×4's protocol (no model runs; nothing is fitted).
fit: the stage's weight (vsr.temporal.Temporal.theta) fitted to the truth on training clips (all of the folder's by
default), clean and CRF 26, ×4 or ``--scale``, along the model's frames: least squares of the blended output at 4,000
pixels of each frame, each frame's squared error over the per-frame model's (so that every frame counts as it does in
the mean PSNR, not only the hard ones), in rounds (each samples along the outputs of the last round's weight)."""

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

NAIVE = Temporal(consistency=0.0, dis=Dis())  # its motion: the FAST preset's flow, no occlusion check


class Naive(Stabiliser):
    """The naive blend: w = α · exp(−(e/σ)²) from the LR warp error e alone, α 0.8, σ 8."""

    def weight(self, cur, moved, m):
        import cv2

        error = np.sqrt(np.expm1(m.measures[0]))  # (the measure is log(1 + error²))
        return cv2.resize(0.8 * np.exp(-error), cur.shape[1::-1], interpolation=cv2.INTER_LINEAR)


def temporal_error(sr: list[np.ndarray], hr: list[np.ndarray]) -> float:
    out = []
    for i in range(1, len(sr)):
        flow = _farneback(hr[i], hr[i - 1])
        change = rgb_to_y(sr[i]) - warp_back(rgb_to_y(sr[i - 1]), flow)
        truth = rgb_to_y(hr[i]) - warp_back(rgb_to_y(hr[i - 1]), flow)
        out.append(float(np.mean(np.abs(change - truth)[8:-8, 8:-8])))
    return float(np.mean(out))


def stabilise(lr: list[np.ndarray], sr: list[np.ndarray], stage: Temporal, kind=Stabiliser,
              each=None) -> list[np.ndarray]:
    """The stage over a model's frames, its motion measured on the LR frames as the reader thread measures it
    (``each(stab, t)`` before frame t's step)."""
    stab, prev, out = kind(sr[0].shape[0] // lr[0].shape[0], stage), None, []
    for t, (f, y) in enumerate(zip(lr, sr)):
        lum = luma8(f)
        if each:
            each(stab, t)
        out.append(stab.step(y, motion(prev, lum, stage) if prev is not None else None, prev is None))
        prev = lum
    return out


def runner_for(name: str, backend: str = "torch", precision: str = "fp32", scale: int = 4):
    from vsr.runner import choose, open_runner

    return open_runner(choose(name, scale, "video"), backend, precision, warn=lambda _m: None)[0]


def quality(args) -> list[dict]:
    rows = []
    for crf in (0, 26):
        src = load_source(args.folder, args.scale, max_frames=args.frames, crf=crf)
        for name in args.models.split(","):
            runner = runner_for(name, scale=args.scale)
            model_out = [list(upscale_clip(runner, item.lr)) for item in src.items]  # the stage comes after it
            for label, stage, kind in (("per frame", None, None), ("stabilised", Temporal(), Stabiliser),
                                       ("naive blend", NAIVE, Naive)):
                per_clip = []
                for item, frames in zip(src.items, model_out):
                    sr = frames if stage is None else stabilise(item.lr, frames, stage, kind)
                    hr = item.hr
                    per_clip.append([np.mean([psnr(a, b, shave=args.scale) for a, b in zip(sr, hr)]),
                                     np.mean([ssim(a, b, shave=args.scale) for a, b in zip(sr, hr)]),
                                     np.mean([tof_pair(sr[i - 1], sr[i], hr[i - 1], hr[i]) for i in range(1, len(sr))]),
                                     np.mean([warp_error_pair(sr[i - 1], sr[i], hr[i - 1], hr[i])
                                              for i in range(1, len(sr))]),
                                     temporal_error(sr, hr)])
                m = np.mean(per_clip, axis=0)
                row = {"model": Path(name).stem, "scale": args.scale, "lr": f"CRF {crf}" if crf else "clean BI",
                       "run": label, "psnr": m[0], "ssim": m[1], "tof": m[2], "warp": m[3], "terr": m[4],
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


class Sampler(Stabiliser):
    """The stage, recording at random output pixels of each frame what its weight sees (MEASURES), the moved previous
    output minus the new frame (d) and the truth minus the new frame (g): the fit's data."""

    def __init__(self, scale, settings, rng, samples):
        super().__init__(scale, settings)
        self.rng, self.samples, self.hr, self.rows = rng, samples, None, []

    def weight(self, cur, moved, m):
        from vsr.temporal import _feature

        diff, block = self.differences(cur, moved, m.flow.shape[1::-1])
        h, w = cur.shape[:2]
        ys, xs = np.divmod(self.rng.choice(h * w, self.samples, replace=False), w)
        ly, lx = np.minimum(ys // self.scale, block.shape[0] - 1), np.minimum(xs // self.scale, block.shape[1] - 1)
        x = np.concatenate([m.measures[:, ly, lx].T, _feature(diff[ys, xs])[:, None],
                            _feature(block[ly, lx])[:, None]], 1)
        c = cur[ys, xs].astype(np.float32)
        # each frame's pixels weigh 1 / the frame's squared error: what a frame's PSNR moves by, to first order
        each = 1.0 / max(float(np.mean(np.square(self.hr.astype(np.float32) - cur))), 1e-3)
        self.rows.append((x, moved[ys, xs] - c, self.hr[ys, xs] - c, np.full(len(x), each, np.float32)))
        return super().weight(cur, moved, m)


def samples(clips: list[tuple], stage: Temporal, count: int) -> list:
    """The fit's data: the stage run over ``clips`` [(hr, lr, sr)], ``count`` pixels of each frame recorded."""
    rows = []
    for n, (hr, lr, sr) in enumerate(clips):
        sampler = Sampler(sr[0].shape[0] // lr[0].shape[0], stage, np.random.default_rng(n), count)
        stabilise(lr, sr, stage, lambda *_, s=sampler: s, lambda stab, t, hr=hr: setattr(stab, "hr", hr[t]))
        rows += sampler.rows
    return rows


def blend_error(theta, x, d, g, f, strength: float):
    """The blended pixels' squared error against the truth, each frame's relative to its own (``f``: 1 / the
    frame's mean squared error; the mean over frames of this is the mean PSNR's change, to first order), for the
    weight ``theta``: Stabiliser.weight in torch, to be differentiated (each output pixel takes its LR pixel's
    measures, where the stage interpolates)."""
    import torch

    logit = x[:, :3] @ theta[:3] + x[:, 4] * theta[4] + theta[5]
    w = strength * torch.sigmoid(logit) * torch.exp(theta[3].clamp(max=0) * x[:, 3])
    return (((w[:, None] * d - g) ** 2).mean(1) * f).mean()


def fit(args) -> list[dict]:
    """The stage's weight fitted to the truth on training clips: least squares of the blended output, at pixels of
    the stage's own outputs (the previous output is what the stage made of it); each round refits along the outputs
    of the last round's weight."""
    import torch

    from vsr.evaluate import _clip
    from vsr.temporal import MEASURES, coefficients
    from vsr.video.source import frames_of

    runner, clips = runner_for(args.models.split(",")[0], scale=args.scale), []
    names = args.clips.split(",") if args.clips else sorted(p.name for p in args.folder.iterdir() if p.is_dir())
    for crf in (0, 26):
        for clip in names:
            item = _clip(clip, frames_of(args.folder / clip, args.frames), args.scale, 0, crf)
            clips.append((item.hr, item.lr, list(upscale_clip(runner, item.lr))))
    stage, rows = Temporal(theta=((args.scale, coefficients(Temporal(), args.scale)),)), []
    for rnd in range(args.rounds):
        x, d, g, f = (torch.from_numpy(np.concatenate(v).astype(np.float32))
                      for v in zip(*samples(clips, stage, args.samples)))
        theta = torch.tensor(stage.theta[0][1], requires_grad=True)
        opt = torch.optim.LBFGS([theta], max_iter=300, line_search_fn="strong_wolfe")

        def step(theta=theta, opt=opt, x=x, d=d, g=g, f=f):
            opt.zero_grad()
            value = blend_error(theta, x, d, g, f, Temporal.strength)
            value.backward()
            return value
        before = float(step().detach())
        opt.step(step)
        after = float(step().detach())
        t = theta.detach().numpy().astype(float)
        t[3] = min(t[3], 0.0)  # the output difference's factor is at most 1 (the weight stays below strength)
        stage = Temporal(theta=((args.scale, tuple(round(float(v), 3) for v in t)),))
        rows.append({"round": rnd, "scale": args.scale, "theta": dict(zip([*MEASURES, "bias"], stage.theta[0][1])),
                     "pixels": len(x), "error_before": before, "error_after": after})
        print(f"round {rnd}: {len(x)} pixels, blend error {before:.3f} → {after:.3f}: theta = {stage.theta}",
              flush=True)
    return rows


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
        for (crf, clip), (hr, lr, sr) in clips.items():
            base = _scores(sr, hr)
            runs = {"the stage as it ships": stabilise(lr, sr, Temporal())}
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


def floor(args) -> list[dict]:
    """What tOF gives frames that do not flicker: the truth, the same blur in every frame, at a range of PSNR-Y."""
    import cv2

    src, rows = load_source(args.folder, 4, max_frames=args.frames), []
    for sigma in (0.8, 1.2, 1.6, 2.0):
        p, t = [], []
        for item in src.items:
            out = [cv2.GaussianBlur(f, (0, 0), sigma) for f in item.hr]
            p += [psnr(a, b, shave=4) for a, b in zip(out, item.hr)]
            t += [tof_pair(out[i - 1], out[i], item.hr[i - 1], item.hr[i]) for i in range(1, len(out))]
        rows.append({"sigma": sigma, "psnr": float(np.mean(p)), "tof": float(np.mean(t))})
        print(f"the truth, Gaussian σ {sigma}: PSNR-Y {rows[-1]['psnr']:.2f}, tOF {rows[-1]['tof']:.3f}", flush=True)
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
        times = []  # per round: the model's time a frame, the stage's flow and blend (one after the other: the
        for _ in range(args.rounds):  # stage's share with neither waiting on the other; the median round counts)
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
            times.append((model, t_motion / (len(lr) - 1), t_blend / (len(lr) - 1)))
        model, t_motion, t_blend = np.median(times, axis=0)
        row = {"model": Path(name).stem, "precision": runner.precision, "model_ms": model * 1000,
               "motion_ms": t_motion * 1000, "blend_ms": t_blend * 1000, "rounds": args.rounds}
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
    q.add_argument("--scale", type=int, default=4)
    c = sub.add_parser("cost")
    c.add_argument("--rounds", type=int, default=5)
    f = sub.add_parser("figure")
    f.add_argument("folder", type=Path)
    b = sub.add_parser("bound")
    b.add_argument("folder", type=Path)
    b.add_argument("--clips", default="camel,breakdance,car-roundabout,dog,parkour,kite-surf")
    b.add_argument("--frames", type=int, default=20)
    fl = sub.add_parser("floor")
    fl.add_argument("folder", type=Path)
    fl.add_argument("--frames", type=int, default=20)
    fl.add_argument("--json", type=Path)  # (no model: the truth alone)
    t = sub.add_parser("fit")
    t.add_argument("folder", type=Path)
    t.add_argument("--clips", help="the folder's clips to fit on (default: all)")
    t.add_argument("--frames", type=int, default=20)
    t.add_argument("--samples", type=int, default=4000)
    t.add_argument("--rounds", type=int, default=2)
    t.add_argument("--scale", type=int, default=4)
    for p in (q, c, f, b, t):
        p.add_argument("-m", "--models", default="image")
        p.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = {"quality": quality, "cost": cost, "figure": figure, "bound": bound, "floor": floor, "fit": fit}[args.what](args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
