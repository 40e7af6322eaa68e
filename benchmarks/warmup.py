"""A recurrent model's warm-up: how many frames before a given frame must run for its output to match a run from
the clip's start (within 0.05 dB PSNR-Y against the ground truth).

    python benchmarks/warmup.py ../shared/data/val_video -m rvsr -s 4
    python benchmarks/warmup.py ../shared/data/val_video -m exported_run.safetensors --write
    python benchmarks/warmup.py ../shared/data/val_video -m mf-rec-real --crf 26   # as real footage arrives

For every clip of the folder (all its frames, BI-downscaled), the model runs once from frame 0 (the reference),
then from zero state at each start s; for each number of frames run before a target, k = 0, 1, 2, …, the mean
|ΔPSNR| over all targets t ≥ k (started at s = t - k) is compared with the reference. The warm-up is the smallest
k whose worst clip is within the tolerance. A segment of a long job starts that many frames early (issue: segments).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engines.torch_backend import TorchRunner
from vsr.evaluate import load_source, upscale_clip
from vsr.metrics import psnr
from vsr.weightfile import save_weights
from vsr.zoo import load_model, looks_like_path


def warmup_table(runner, lr: list[np.ndarray], hr: list[np.ndarray], max_k: int, scale: int) -> list[float]:
    """mean |ΔPSNR| (dB) against the run from frame 0, for k = 0 .. max_k frames run before each target."""
    ref = [psnr(sr, h, shave=scale) for sr, h in zip(upscale_clip(runner, lr), hr)]
    n = len(lr)
    deltas = [[] for _ in range(max_k + 1)]
    for s in range(1, n):  # every start: the outputs from s on, k = t - s frames after it
        # one frame past the last target, so that it has its next neighbour as in the reference run
        for k, sr in enumerate(upscale_clip(runner, lr[s : min(n, s + max_k + 2)])):
            if k <= max_k:
                deltas[k].append(abs(psnr(sr, hr[s + k], shave=scale) - ref[s + k]))
    return [float(np.mean(d)) if d else 0.0 for d in deltas]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a folder of clips (../shared/data/val_video)")
    ap.add_argument("-m", "--model", default="rvsr")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--max-k", type=int, default=12)
    ap.add_argument("--frames", type=int, default=40, help="frames per clip (the first ones)")
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--crf", type=int, default=0, help="LR clips through libx264 at this CRF (vsr eval --crf): "
                                                       "the protocol of the models for real footage")
    ap.add_argument("--write", action="store_true", help="store the warm-up in the weight file (-m a .safetensors "
                                                         "path): validation.warmup_frames, which long jobs read")
    args = ap.parse_args()
    model, info = load_model(args.model, None if looks_like_path(args.model) else args.scale)
    runner = TorchRunner(model)
    src = load_source(args.data, info.scale, max_frames=args.frames, crf=args.crf)
    table = {item.name: warmup_table(runner, item.lr, item.hr, args.max_k, info.scale) for item in src.items}
    worst = [max(t[k] for t in table.values()) for k in range(args.max_k + 1)]
    k = next((k for k, w in enumerate(worst) if w <= args.tolerance), None)
    for name, t in table.items():
        print(f"{name:>12}: " + " ".join(f"{v:.3f}" for v in t))
    print(f"{'worst':>12}: " + " ".join(f"{v:.3f}" for v in worst))
    print(json.dumps({"model": info.name, "scale": info.scale, "crf": args.crf, "tolerance_db": args.tolerance,
                      "warmup_frames": k}))
    if args.write:
        if info.path is None or k is None:
            raise SystemExit("error: --write needs a weight file and a warm-up within --max-k")
        info.validation.update(warmup_frames=k, warmup_tolerance_db=args.tolerance, warmup_clips=sorted(table),
                               warmup_crf=args.crf)
        save_weights(info.path, model, info)
        print(f"wrote validation.warmup_frames = {k} into {info.path}")


if __name__ == "__main__":
    main()
