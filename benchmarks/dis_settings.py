"""How precisely each DIS setting aligns frames, and what it costs: the flow a window's neighbours and a recurrent
state are moved by.

    python benchmarks/dis_settings.py ../shared/data/train_videos/davis ../shared/data/val_video -s 4

For each clip folder (first frames of each clip; LR made as `vsr eval` makes it), the flow from LR frame t to t-1
is computed with each setting (`vsr.flow.Dis`: finest pyramid level, variational refinement iterations), scaled
up to HR, and moves the *ground-truth* HR frame t-1 onto t (bilinear, as `WindowSR` moves its state). PSNR-Y
against HR t, and the share of pixels within 3 grey levels, say how much of frame t a perfect previous output
could supply once moved: the ceiling on what a state carried by that flow can bring. "zero" is no motion
compensation. Time: one flow on one thread at the two LR sizes the product's speed targets use (480×270 for
×4 270p, 854×480 for ×2 480p), median of the clips' frames resized to that size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from vsr.evaluate import load_source
from vsr.flow import Dis, dis_flow, luma8
from vsr.metrics import psnr, rgb_to_y
from vsr.models.window import flow_warp

SETTINGS = {"FAST preset (level 2, refine 5)": Dis(2, 5), "level 1, refine 5": Dis(1, 5),
            "level 1, no refinement": Dis(1, 0), "level 0, refine 5": Dis(0, 5), "level 0, no refinement": Dis(0, 0)}


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def moved(hr_prev: np.ndarray, flow_lr: np.ndarray | None, scale: int) -> np.ndarray:
    """HR frame t-1 moved onto t by an LR flow t → t-1 (h×w×2), scaled up to HR; None: not moved."""
    if flow_lr is None:
        return hr_prev
    f = torch.from_numpy(flow_lr).permute(2, 0, 1)[None]
    f = F.interpolate(f, scale_factor=scale, mode="bilinear", align_corners=False) * scale
    out = flow_warp(_tensor(hr_prev), f)[0].permute(1, 2, 0).clamp(0, 1) * 255
    return (out + 0.5).floor().to(torch.uint8).numpy()


def precision(items, dis: Dis | None, scale: int) -> tuple[float, float]:
    """Mean over clips of (PSNR-Y of HR t-1 moved onto HR t, share of pixels within 3 levels)."""
    per_clip = []
    for item in items:
        ps, ok = [], []
        for t in range(1, len(item.hr)):
            flow = None if dis is None else dis_flow(luma8(item.lr[t]), luma8(item.lr[t - 1]), dis)
            m = moved(item.hr[t - 1], flow, scale)
            ps.append(psnr(m, item.hr[t], shave=scale))
            err = np.abs(rgb_to_y(m) - rgb_to_y(item.hr[t]))[scale:-scale, scale:-scale]
            ok.append(float((err <= 3).mean()))
        per_clip.append((np.mean(ps), np.mean(ok)))
    return float(np.mean([p for p, _ in per_clip])), float(np.mean([o for _, o in per_clip]))


def ms_per_flow(items, dis: Dis, size: tuple[int, int]) -> float:
    import cv2

    times = []
    for item in items:
        g = [cv2.resize(luma8(f), size, interpolation=cv2.INTER_AREA) for f in item.hr[:4]]
        for t in range(1, len(g)):
            t0 = time.perf_counter()
            dis_flow(g[t], g[t - 1], dis)
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="folders of clips (frame folders or videos)")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--max-frames", type=int, default=12)
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    sources = [load_source(f, args.scale, max_frames=args.max_frames) for f in args.folders]
    names = [s.name for s in sources]
    print(f"×{args.scale}, first {args.max_frames} frames of each clip; HR t-1 moved onto t: PSNR-Y / share within "
          "3 levels; ms per flow on one thread\n")
    print("| DIS | " + " | ".join(names) + " | ms 480×270 | ms 854×480 |")
    print("|---|" + "---|" * len(names) + "---:|---:|")
    print("| zero (no motion) | " + " | ".join("{:.2f} / {:.3f}".format(*precision(s.items, None, args.scale))
                                              for s in sources) + " | | |")
    for label, dis in SETTINGS.items():
        cells = ["{:.2f} / {:.3f}".format(*precision(s.items, dis, args.scale)) for s in sources]
        timing = [ms_per_flow(sources[0].items, dis, size) for size in ((480, 270), (854, 480))]
        print(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(f"{t:.1f}" for t in timing) + " |",
              flush=True)


if __name__ == "__main__":
    main()
