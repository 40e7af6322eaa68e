"""Does a multi-frame model's alignment work? Its flow against a reference, on a video it never trained on.

    python benchmarks/alignment.py ../shared/data/train_videos/cockatoo_1280x720_yuv420.mp4 -m mf-fast

For frames t = 1 … n-2 of the clip (BI-downscaled ×scale, as `vsr eval` does), the model predicts the
displacement from frame t to t-1 and to t+1 at LR resolution. The reference is OpenCV's DIS optical
flow computed on the *HR* frames and area-averaged down to LR pixels (4× the resolution the model sees,
so it is a fair yardstick, not ground truth). Reported:

* warp PSNR: the neighbour warped by the flow against frame t (what the fusion layers see); also with
  no motion compensation and with the reference flow, as floor and ceiling;
* end-point error (LR pixels) overall and by reference motion size.

Needs ``opencv-python`` (an install dependency of vsr).
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import torch

from vsr.evaluate import load_source
from vsr.models.mfsr import flow_warp
from vsr.weights import load_model

BINS = [(0, 1), (1, 2), (2, 4), (4, 8), (8, 1e9)]


def _gray(a: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().div_(255)


def _psnr(a: torch.Tensor, b: torch.Tensor, border: int) -> float:
    a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def measure(model, lr: list[np.ndarray], hr: list[np.ndarray], scale: int, border: int = 8) -> dict:
    m = model.size_multiple
    h, w = (lr[0].shape[0] // m) * m, (lr[0].shape[1] // m) * m  # crop to what the flow network accepts
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    psnr = {"none": [], "model": [], "reference": []}
    errors, sizes = [], []
    with torch.inference_mode():
        enc = [model.encode(_tensor(f[:h, :w])) for f in lr]
        for t in range(1, len(lr) - 1):
            centre = _tensor(lr[t][:h, :w])
            for j in (t - 1, t + 1):
                nb = _tensor(lr[j][:h, :w])
                flow = model.flow(enc[t], enc[j])
                ref = dis.calc(_gray(hr[t][: h * scale, : w * scale]), _gray(hr[j][: h * scale, : w * scale]), None)
                ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA) / scale
                ref_t = torch.from_numpy(ref).permute(2, 0, 1)[None]
                psnr["none"].append(_psnr(nb, centre, border))
                psnr["model"].append(_psnr(flow_warp(nb, flow), centre, border))
                psnr["reference"].append(_psnr(flow_warp(nb, ref_t), centre, border))
                errors.append(np.linalg.norm(flow[0].permute(1, 2, 0).numpy() - ref, axis=2).ravel())
                sizes.append(np.linalg.norm(ref, axis=2).ravel())
    err, size = np.concatenate(errors), np.concatenate(sizes)
    by_size = {}
    for lo, hi in BINS:
        sel = (size >= lo) & (size < hi)
        if sel.any():
            label = f"{lo}-{hi:g}px" if hi < 1e9 else f">{lo}px"
            by_size[label] = {"share": round(float(sel.mean()), 3), "epe": round(float(err[sel].mean()), 3)}
    return {
        "warp_psnr": {k: round(float(np.mean(v)), 2) for k, v in psnr.items()},
        "epe": round(float(err.mean()), 3),
        "epe_by_motion": by_size,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("-m", "--model", default="mf-fast")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--max-frames", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    model, info = load_model(args.model, args.scale)
    if getattr(model, "frames", 1) < 3:
        raise SystemExit(f"error: {info.name} is a single-frame model; it has no alignment to measure")
    item = load_source(args.video, args.scale, max_frames=args.max_frames).items[0]
    res = measure(model.eval(), item.lr, item.hr, args.scale)
    if args.json:
        print(json.dumps({"model": info.name, "scale": args.scale, **res}))
        return 0
    wp = res["warp_psnr"]
    print(f"{info.name} ×{args.scale}: warp PSNR {wp['model']:.2f} dB "
          f"(no motion compensation {wp['none']:.2f}, reference flow {wp['reference']:.2f}); EPE {res['epe']:.2f} px")
    for label, v in res["epe_by_motion"].items():
        print(f"  motion {label:>8}: {100 * v['share']:5.1f}% of pixels, EPE {v['epe']:.2f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
