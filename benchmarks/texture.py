"""How much fine detail does each model put back? A number for "visibly sharper textures" beside the crops.

    python benchmarks/texture.py ../shared/data/val_video -s 4 --crf 26 -m mf-lite-real,mf-lite-real-gan

For every clip (first frames, LR made as `vsr eval` makes it), the mean |Laplacian| of each output's Y channel
divided by the ground truth's: 1.0 is the ground truth's fine-detail energy, below it smoother than the truth.
A GAN should sit nearer 1 than its fidelity model. Energy is not accuracy (codec blocks, invented grain and a
grid pattern count too): read it with the `grid` column, PSNR and tOF (`vsr eval`) and the crops
(`benchmarks/crops.py`).

`grid`: how far a pattern at the upsampler's period stands out — the Y spectrum's amplitude at periods 2…scale
(rows and columns) over the median of the neighbouring frequencies, averaged; about 1.0 for the truth and
bicubic, well above it where a GAN drew stripes or a checkerboard to look detailed.
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


def grid_peak(rgb: np.ndarray, scale: int) -> float:
    y = rgb_to_y(rgb).astype(np.float32)
    peaks = []
    for axis in (0, 1):
        amp = np.abs(np.fft.rfft(y - y.mean(axis=axis, keepdims=True), axis=axis)).mean(axis=1 - axis)
        n = y.shape[axis]
        for period in range(2, scale + 1):
            k = round(n / period)
            around = np.r_[amp[max(k - 8, 1) : k - 2], amp[k + 3 : k + 9]]
            peaks.append(amp[k - 1 : k + 2].max() / np.median(around))
    return float(np.mean(peaks))


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
    table, grids = {}, {"truth": np.mean([grid_peak(hr, args.scale) for item in src.items for hr in item.hr])}
    for name in names:
        runner = TorchRunner(load_model(name, args.scale)[0], precision="fp32")
        table[name], g = [], []
        for item, ds in zip(src.items, truth):
            srs = list(upscale_clip(runner, item.lr))
            table[name].append(np.mean([detail(sr, args.scale) / d for sr, d in zip(srs, ds)]))
            g += [grid_peak(sr, args.scale) for sr in srs]
        grids[name] = np.mean(g)
    clips = [item.name for item in src.items]
    print(f"detail energy / ground truth's, ×{args.scale}{f', LR at CRF {args.crf}' if args.crf else ''}, "
          f"first {args.max_frames} frames")
    print(f"the truth's grid: {grids['truth']:.2f}")
    print("| model | mean | grid | " + " | ".join(clips) + " |")
    print("|---|---|---|" + "---|" * len(clips))
    for name, vals in table.items():
        print(f"| {name} | {np.mean(vals):.3f} | {grids[name]:.2f} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")


if __name__ == "__main__":
    main()
