"""How much fine detail does each model put back? A number for "visibly sharper textures" beside the crops.

    python benchmarks/texture.py ../shared/data/val_video -s 4 --crf 26 -m mf-lite-real,mf-lite-real-gan

For every clip (first frames, LR made as `vsr eval` makes it), the mean |Laplacian| of each output's Y channel
divided by the ground truth's: 1.0 is the ground truth's fine-detail energy, below it smoother than the truth.
A GAN should sit nearer 1 than its fidelity model. Energy is not accuracy (codec blocks and invented grain count
too): read it with PSNR and tOF (`vsr eval`) and the crops (`benchmarks/crops.py`).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from engines.torch_backend import TorchRunner
from vsr.evaluate import Source, load_source, upscale_clip
from vsr.metrics import rgb_to_y
from vsr.zoo import load_model


def detail(rgb: np.ndarray, shave: int) -> float:
    """Mean |Laplacian| of Y (the PSNR protocol's), borders shaved as the protocol shaves them."""
    lap = np.abs(cv2.Laplacian(rgb_to_y(rgb).astype(np.float32), cv2.CV_32F, ksize=1))
    return float(lap[shave:-shave, shave:-shave].mean())


def clips_and_models(doc: str, default_models: str) -> tuple[argparse.Namespace, Source, list[str]]:
    """The command line these measurements share: the clips (LR made as `vsr eval` makes it) and the models."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("-m", "--models", default=default_models, help="names or weight files")
    ap.add_argument("--crf", type=int, default=0, help="LR through libx264 at this CRF (the real-footage protocol)")
    ap.add_argument("--max-frames", type=int, default=10)
    args = ap.parse_args()
    src = load_source(args.folder, args.scale, max_frames=args.max_frames, crf=args.crf)
    return args, src, [m.strip() for m in args.models.split(",") if m.strip()]


def main() -> None:
    args, src, names = clips_and_models(__doc__, "bicubic,mf-lite-real,mf-lite-real-gan")
    truth = [[detail(hr, args.scale) for hr in item.hr] for item in src.items]  # once, not once per model
    table = {}
    for name in names:
        runner = TorchRunner(load_model(name, args.scale)[0], precision="fp32")
        table[name] = [np.mean([detail(sr, args.scale) / d for sr, d in zip(upscale_clip(runner, item.lr), ds)])
                       for item, ds in zip(src.items, truth)]
    clips = [item.name for item in src.items]
    print(f"detail energy / ground truth's, ×{args.scale}{f', LR at CRF {args.crf}' if args.crf else ''}, "
          f"first {args.max_frames} frames")
    print("| model | mean | " + " | ".join(clips) + " |")
    print("|---|---|" + "---|" * len(clips))
    for name, vals in table.items():
        print(f"| {name} | {np.mean(vals):.3f} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")


if __name__ == "__main__":
    main()
