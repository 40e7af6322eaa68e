"""How much can extra frames offer? The aliasing that BI downscaling leaves in a clip's or an image set's LR frames.

    python benchmarks/aliasing.py ../shared/data/val/Set5 ../shared/data/train_videos/cockatoo_1280x720_yuv420.mp4

Multi-frame SR recovers detail beyond the LR Nyquist frequency from the way it folds (aliases) into each LR frame
differently as things move. Per frame: the luma variance (grey levels², 0–255 scale) of
``BI↓(HR) − BI↓(HR low-passed at the LR Nyquist)``: the part of the LR frame made of that detail. 8-bit rounding
alone adds 1/12 ≈ 0.083. A source with little of it offers a multi-frame model little to gain, however well aligned.
"""

from __future__ import annotations

import argparse

import numpy as np

from vsr.evaluate import load_source
from vsr.metrics import rgb_to_y
from vsr.resize import imresize


def aliasing(hr: np.ndarray, scale: int, border: int = 4) -> float:
    y = rgb_to_y(hr).astype(np.float64)
    h, w = y.shape[0] // (2 * scale) * 2 * scale, y.shape[1] // (2 * scale) * 2 * scale
    y = y[:h, :w]
    fy, fx = np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None]
    low = np.real(np.fft.ifft2(np.fft.fft2(y) * (np.maximum(fx, fy) <= 0.5 / scale)))
    diff = imresize(y, 1.0 / scale) - imresize(low, 1.0 / scale)
    return float(diff[border:-border, border:-border].var())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="image folders, images or videos")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--max-frames", type=int, default=20, help="per video")
    args = ap.parse_args()
    for src in args.sources:
        items = load_source(src, args.scale, max_frames=args.max_frames).items
        values = [aliasing(f, args.scale) for item in items for f in item.hr]
        print(f"{src}: {len(values)} frames, aliasing in the ×{args.scale} LR frames: mean variance "
              f"{np.mean(values):.3f} grey levels² (8-bit rounding: 0.083)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
