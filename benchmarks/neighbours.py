"""Do the video models use t-1 and t+1, and do the clips offer anything to use?

    python benchmarks/neighbours.py ../shared/data/val_video -s 4 -m mf-fast,mf-dis,mf-lite

Two tables, on the clips' first frames (LR made as `vsr eval` makes it):

1. What the clips offer: the aliasing that BI downscaling leaves in each LR frame, the only detail extra frames can
   add (luma variance of ``BI↓(HR) − BI↓(HR low-passed at the LR Nyquist)``, grey levels², 0–255; 8-bit rounding
   alone gives 1/12 ≈ 0.083). For scale: Set5 3.55, the realshort clip 2.06, the cockatoo clip 0.46 (×4).
2. What each model takes: PSNR-Y with its real window, and with the centre frame given three times (neighbours that
   carry nothing new, zero flow). The difference is what the network draws from its neighbours; near zero, it has
   learnt to ignore them, whatever its size.
"""

from __future__ import annotations

import argparse

import numpy as np

from engines.torch_backend import TorchRunner
from vsr.evaluate import load_source
from vsr.metrics import psnr, rgb_to_y
from vsr.resize import imresize
from vsr.windows import options_for, windows
from vsr.zoo import load_model


def aliasing(hr: np.ndarray, scale: int, border: int = 4) -> float:
    y = rgb_to_y(hr).astype(np.float64)
    h, w = y.shape[0] // (2 * scale) * 2 * scale, y.shape[1] // (2 * scale) * 2 * scale
    y = y[:h, :w]
    fy, fx = np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None]
    low = np.real(np.fft.ifft2(np.fft.fft2(y) * (np.maximum(fx, fy) <= 0.5 / scale)))
    diff = imresize(y, 1.0 / scale) - imresize(low, 1.0 / scale)
    return float(diff[border:-border, border:-border].var())


def drawn(runner, lr: list[np.ndarray], hr: list[np.ndarray], scale: int) -> tuple[float, float]:
    """Mean PSNR-Y over a clip with the real windows, and with every window's neighbours replaced by its centre."""
    real, alone = [], []
    for t, w in enumerate(windows(((f, None) for f in lr), **options_for(runner.model))):
        real.append(psnr(runner(w.frames, w.flows, w.reset), hr[t], shave=scale))
        centre = w.frames[len(w.frames) // 2]
        flows = None if w.flows is None else np.zeros_like(w.flows)
        alone.append(psnr(runner([centre] * len(w.frames), flows, w.reset), hr[t], shave=scale))
    return float(np.mean(real)), float(np.mean(alone))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("-m", "--models", default="mf-fast,mf-dis,mf-lite", help="names or weight files")
    ap.add_argument("--crf", type=int, default=0, help="LR through libx264 at this CRF (the real-footage protocol)")
    ap.add_argument("--max-frames", type=int, default=20)
    args = ap.parse_args()
    src = load_source(args.folder, args.scale, max_frames=args.max_frames, crf=args.crf)
    clips = [item.name for item in src.items]
    lr_note = f", LR at CRF {args.crf}" if args.crf else ""
    print(f"×{args.scale}{lr_note}, first {args.max_frames} frames of each clip\n")
    print("| aliasing in the LR frames | mean | " + " | ".join(clips) + " |")
    print("|---|---|" + "---|" * len(clips))
    offer = [np.mean([aliasing(hr, args.scale) for hr in item.hr]) for item in src.items]
    print(f"| grey levels² | {np.mean(offer):.2f} | " + " | ".join(f"{v:.2f}" for v in offer) + " |\n")
    print("| model | window | centre ×3 | drawn from t±1 | " + " | ".join(clips) + " |")
    print("|---|---|---|---|" + "---|" * len(clips))
    for name in (m.strip() for m in args.models.split(",") if m.strip()):
        runner = TorchRunner(load_model(name, args.scale)[0], precision="fp32")
        pairs = [drawn(runner, item.lr, item.hr, args.scale) for item in src.items]
        real, alone = np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])
        print(f"| {name} | {real:.3f} | {alone:.3f} | {real - alone:+.3f} | "
              + " | ".join(f"{a - b:+.3f}" for a, b in pairs) + " |", flush=True)


if __name__ == "__main__":
    main()
