"""Does a multi-frame model use its neighbours? Its output with the real window against the centre frame repeated.

    python benchmarks/neighbours.py -m mf-fast -s 4
    python benchmarks/neighbours.py -m runs/x.safetensors --video ../shared/data/train_videos/cockatoo_1280x720_yuv420.mp4
    python benchmarks/neighbours.py -m mf3.safetensors --twin mf1.safetensors --degradation bd   # the 1- vs 3-frame ablation

If the neighbours add nothing, both inputs score the same: the model has learnt to ignore t-1 and t+1,
whatever its alignment does. Two sources, both kept out of training:

* pseudo-video of held-out still images (Set5 HR), moved by the same random camera the training data
  uses (``train.data.camera_motion``, up to ``--shift`` LR pixels per frame), each frame BI-downscaled:
  pure sub-pixel camera motion, where extra frames are known to carry extra detail;
* a real clip (optional), BI-downscaled as ``vsr eval`` does.

``--degradation bd`` makes the LR frames by Gaussian blur and subsampling instead (``train.degrade.BlurDown``),
for models trained that way; ``--twin`` scores a single-frame model on the same frames.
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import cv2
import numpy as np

from train.data import camera_motion
from train.degrade import BlurDown
from vsr.evaluate import load_source, upscale_frames
from vsr.metrics import psnr
from vsr.resize import imresize
from vsr.weights import load_model


def _scores(model, twin, lr: list[np.ndarray], hr: np.ndarray, t: int, scale: int) -> tuple[float, ...]:
    """PSNR-Y with the window, with the centre frame three times, and of the single-frame twin if any."""
    outs = [upscale_frames(model, lr, t, 3, scale, model.size_multiple),
            upscale_frames(model, [lr[t]] * len(lr), t, 3, scale, model.size_multiple)]
    if twin is not None:
        outs.append(upscale_frames(twin, lr, t, 1, scale, twin.size_multiple))
    return tuple(psnr(o, hr, shave=scale) for o in outs)


def _down(frames, scale: int, degradation: str) -> list[np.ndarray]:
    if degradation == "bd":
        return list(BlurDown(scale)(np.stack(frames)))
    return [imresize(f, 1.0 / scale) for f in frames]


def pseudo_video(model, twin, scale: int, images: str, shift: float, repeats: int, degradation: str,
                 seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for path in sorted(glob.glob(str(Path(images) / "*.png"))):
        hr = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        margin = int(np.ceil(shift * scale * 1.1)) + 2
        side = min(hr.shape[:2])
        out = min(int((side - 2 * margin) / 1.06) // (8 * scale) * 8 * scale, 192)
        if out < 8 * scale:
            continue
        for _ in range(repeats):
            frames = camera_motion(hr, 3, out, rng, max_shift=shift * scale)
            rows.append(_scores(model, twin, _down(frames, scale, degradation), frames[1], 1, scale))
    return np.array(rows)


def clip(model, twin, scale: int, video: str, max_frames: int, degradation: str) -> np.ndarray:
    item = load_source(video, scale, max_frames=max_frames).items[0]
    lr = item.lr if degradation == "bi" else _down(item.hr, scale, degradation)
    return np.array([_scores(model, twin, lr, item.hr[t], t, scale) for t in range(len(item.hr))])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="mf-fast")
    ap.add_argument("-s", "--scale", type=int, default=None)
    ap.add_argument("--images", default="../shared/data/val/Set5")
    ap.add_argument("--shift", type=float, default=2.0, help="pseudo-video: at most this many LR pixels per frame")
    ap.add_argument("--repeats", type=int, default=8, help="pseudo-video windows per image")
    ap.add_argument("--video", default=None)
    ap.add_argument("--twin", default=None, help="a single-frame model to score on the same frames")
    ap.add_argument("--degradation", choices=("bi", "bd"), default="bi")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scale = args.scale if args.scale or Path(args.model).suffix else 4
    model, info = load_model(args.model, scale)
    if getattr(model, "frames", 1) < 3:
        raise SystemExit(f"error: {info.name} is a single-frame model")
    twin = load_model(args.twin, info.scale)[0].eval() if args.twin else None
    model.eval()
    res = {"model": info.name, "scale": info.scale, "degradation": args.degradation}
    sources = {"pseudo-video": pseudo_video(model, twin, info.scale, args.images, args.shift, args.repeats,
                                            args.degradation)}
    if args.video:
        sources[Path(args.video).stem] = clip(model, twin, info.scale, args.video, args.max_frames, args.degradation)
    for name, rows in sources.items():
        means = [round(float(v), 3) for v in rows.mean(0)]
        res[name] = {"n": len(rows), "window": means[0], "centre_only": means[1],
                     "gain": round(means[0] - means[1], 3)}
        if twin is not None:
            res[name].update(one_frame_twin=means[2], vs_twin=round(means[0] - means[2], 3))
    if args.json:
        print(json.dumps(res))
        return 0
    for name, r in res.items():
        if isinstance(r, dict):
            print(f"{info.name} ×{info.scale} {name} ({r['n']} windows): PSNR-Y {r['window']:.3f} with t-1, t, t+1; "
                  f"{r['centre_only']:.3f} with t three times; neighbours add {r['gain']:+.3f} dB"
                  + (f"; 1-frame twin {r['one_frame_twin']:.3f} ({r['vs_twin']:+.3f})" if "vs_twin" in r else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
