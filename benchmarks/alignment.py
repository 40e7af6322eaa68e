"""Does a multi-frame model's alignment work? Its flow against a reference, on a video it never trained on.

    python benchmarks/alignment.py ../shared/data/train_videos/cockatoo_1280x720_yuv420.mp4 -m mf-fast
    python benchmarks/alignment.py ../shared/data/train_videos/cockatoo_1280x720_yuv420.mp4 --dis-levels

For frames t = 1 … n-2 of the clip (BI-downscaled ×scale, as `vsr eval` does), the model predicts the
displacement from frame t to t-1 and to t+1 at LR resolution. The reference is OpenCV's DIS optical
flow computed on the *HR* frames and area-averaged down to LR pixels (4× the resolution the model sees,
so it is a fair yardstick, not ground truth). Reported:

* warp PSNR: the neighbour warped by the flow against frame t (what the fusion layers see); also with
  no motion compensation and with the reference flow, as floor and ceiling;
* end-point error (LR pixels) overall and by reference motion size;
* and, where the true motion is known exactly, the end-point error on still images (Set5) shifted by random
  sub-pixel translations of up to 2 LR pixels: the precision that sub-pixel fusion needs (a fraction of a pixel);
  and on Set5 moved by the training camera (``train.data.camera_motion``: pan, zoom, rotation), median and mean
  over the windows' interiors, next to the same figures for OpenCV's DIS flow of the HR frames (the oracle's flow)
  and of the LR frames (what a deployed model could be given).

``--dis-levels`` measures the flow that ``flow="dis"`` models are given instead (``vsr.flow``: DIS on the LR
frames) at each pyramid level it can stop at (``dis_finest_scale`` 2, 1, 0), on the clip, with its cost per flow.

Needs ``opencv-python`` (an install dependency of vsr).
"""

from __future__ import annotations

import argparse
import glob
import json
import time

import cv2
import numpy as np
import torch

from vsr.evaluate import load_source
from vsr.models.mfsr import flow_warp
from vsr.resize import imresize
from vsr.weights import load_model

BINS = [(0, 1), (1, 2), (2, 4), (4, 8), (8, 1e9)]


def _gray(a: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().div_(255)


def _psnr(a: torch.Tensor, b: torch.Tensor, border: int) -> float:
    a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def _pairs(lr: list[np.ndarray], hr: list[np.ndarray], scale: int, h: int, w: int):
    """(t, j, reference flow t → j in LR pixels: DIS on the HR frames, area-averaged) for j = t ± 1."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for t in range(1, len(lr) - 1):
        for j in (t - 1, t + 1):
            ref = dis.calc(_gray(hr[t][: h * scale, : w * scale]), _gray(hr[j][: h * scale, : w * scale]), None)
            yield t, j, cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA) / scale


def measure(model, lr: list[np.ndarray], hr: list[np.ndarray], scale: int, border: int = 8) -> dict:
    m = model.size_multiple
    h, w = (lr[0].shape[0] // m) * m, (lr[0].shape[1] // m) * m  # crop to what the flow network accepts
    psnr = {"none": [], "model": [], "reference": []}
    errors, sizes = [], []
    with torch.inference_mode():
        enc = [model.encode(_tensor(f[:h, :w])) for f in lr]
        for t, j, ref in _pairs(lr, hr, scale, h, w):
            centre, nb = _tensor(lr[t][:h, :w]), _tensor(lr[j][:h, :w])
            flow = model.flow(enc[t], enc[j], centre, nb)
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


def dis_levels(lr: list[np.ndarray], hr: list[np.ndarray], scale: int, border: int = 8) -> dict:
    """The flow ``flow="dis"`` models are given, per ``dis_finest_scale``: warp PSNR of the neighbour moved onto the
    centre, median EPE against the HR reference (LR px, window interiors) and milliseconds per flow (one thread)."""
    from vsr.flow import dis_flow

    h, w = lr[0].shape[:2]
    pairs = list(_pairs(lr, hr, scale, h, w))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    out = {}
    try:
        for level in (2, 1, 0):
            psnr, epe, ms = [], [], []
            for t, j, ref in pairs:
                start = time.perf_counter()
                flow = dis_flow(_gray(lr[t]), _gray(lr[j]), level)
                ms.append(1000 * (time.perf_counter() - start))
                moved = flow_warp(_tensor(lr[j]), torch.from_numpy(flow).permute(2, 0, 1)[None])
                psnr.append(_psnr(moved, _tensor(lr[t]), border))
                epe.append(float(np.median(np.linalg.norm(flow - ref, axis=2)[border:-border, border:-border])))
            out[level] = {"warp_psnr": round(float(np.mean(psnr)), 2), "epe_median": round(float(np.mean(epe)), 3),
                          "ms_per_flow": round(float(np.median(ms)), 1)}
    finally:
        cv2.setNumThreads(threads)
    return out


def translation_epe(model, scale: int, images: str, repeats: int = 6, seed: int = 0) -> float | None:
    """Mean EPE (LR px) of the model's flow against exact translations of still images (BI ×scale)."""
    rng = np.random.default_rng(seed)
    errors = []
    for path in sorted(glob.glob(f"{images}/*.png")):
        hr = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        side = (min(hr.shape[:2]) - 32) // (8 * scale) * 8 * scale
        for _ in range(repeats):
            d = rng.uniform(-2, 2, size=2)  # LR pixels; the neighbour n satisfies n(x + d) = centre(x)
            moved = cv2.warpAffine(hr, np.float32([[1, 0, d[0] * scale], [0, 1, d[1] * scale]]),
                                   (hr.shape[1], hr.shape[0]), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
            c, n = (imresize(a[16 : 16 + side, 16 : 16 + side], 1.0 / scale) for a in (hr, moved))
            with torch.inference_mode():
                c, n = _tensor(c), _tensor(n)
                flow = model.flow(model.encode(c), model.encode(n), c, n)[0, :, 8:-8, 8:-8]
            errors.append(float(torch.linalg.vector_norm(flow - torch.tensor(d).view(2, 1, 1).float(), dim=0).mean()))
    return float(np.mean(errors)) if errors else None


def camera_epe(model, scale: int, images: str, repeats: int = 8, seed: int = 0, border: int = 12) -> dict | None:
    """EPE (LR px; median and mean over windows) of the model's flow and of DIS on the HR frames against the exact
    motion of held-out pseudo-video windows (stills moved by the training camera, BI ×scale)."""
    from train.data import camera_motion
    from train.losses import teacher_flows

    rng = np.random.default_rng(seed)
    errors = {"model": [], "dis_hr": [], "dis_lr": []}
    for path in sorted(glob.glob(f"{images}/*.png")):
        hr = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        out = min((min(hr.shape[:2]) - 2 * int(8 * scale * 1.1 + 3)) * 94 // 100 // (8 * scale) * 8 * scale, 48 * scale)
        for _ in range(repeats):
            views, motion = camera_motion(hr, 3, out, rng, max_shift=8 * scale, flow_scale=scale)
            lr = [_tensor(imresize(v, 1.0 / scale)) for v in views]
            dis_hr = teacher_flows(torch.cat([_tensor(v) for v in views])[None], scale)
            dis_lr = teacher_flows(torch.cat(lr)[None], 1)
            with torch.inference_mode():
                enc = [model.encode(f) for f in lr]
                for k, ref_hr, ref_lr in zip((0, 2), dis_hr, dis_lr):
                    truth = torch.from_numpy(motion[k]).permute(2, 0, 1)
                    flows = (("model", model.flow(enc[1], enc[k], lr[1], lr[k])[0]), ("dis_hr", ref_hr[0]), ("dis_lr", ref_lr[0]))
                    for key, flow in flows:
                        err = torch.linalg.vector_norm(flow - truth, dim=0)[border:-border, border:-border]
                        errors[key].append(float(err.mean()))
    if not errors["model"]:
        return None
    return {k: {"median": round(float(np.median(v)), 3), "mean": round(float(np.mean(v)), 3)} for k, v in errors.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("-m", "--model", default="mf-fast")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--max-frames", type=int, default=20)
    ap.add_argument("--images", default="../shared/data/val/Set5", help="stills for the exact-translation test")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--dis-levels", action="store_true", help="measure the DIS flow of flow-input models instead")
    args = ap.parse_args()
    if args.dis_levels:
        item = load_source(args.video, args.scale, max_frames=args.max_frames).items[0]
        res = dis_levels(item.lr, item.hr, args.scale)
        if args.json:
            print(json.dumps({"scale": args.scale, "dis_levels": res}))
            return 0
        size = f"{item.lr[0].shape[1]}×{item.lr[0].shape[0]}"
        for level, v in res.items():
            print(f"DIS on the LR frames ({size}), dis_finest_scale {level}: warp PSNR {v['warp_psnr']:.2f} dB, "
                  f"EPE against DIS on the HR frames {v['epe_median']:.3f} px (median), {v['ms_per_flow']:.1f} ms/flow")
        return 0
    model, info = load_model(args.model, args.scale)
    if getattr(model, "frames", 1) < 3:
        raise SystemExit(f"error: {info.name} is a single-frame model; it has no alignment to measure")
    item = load_source(args.video, args.scale, max_frames=args.max_frames).items[0]
    res = measure(model.eval(), item.lr, item.hr, args.scale)
    epe = translation_epe(model, args.scale, args.images)
    if epe is not None:
        res["translation_epe"] = round(epe, 3)
        res["camera_epe"] = camera_epe(model, args.scale, args.images)
    if args.json:
        print(json.dumps({"model": info.name, "scale": args.scale, **res}))
        return 0
    wp = res["warp_psnr"]
    print(f"{info.name} ×{args.scale}: warp PSNR {wp['model']:.2f} dB "
          f"(no motion compensation {wp['none']:.2f}, reference flow {wp['reference']:.2f}); EPE {res['epe']:.2f} px")
    for label, v in res["epe_by_motion"].items():
        print(f"  motion {label:>8}: {100 * v['share']:5.1f}% of pixels, EPE {v['epe']:.2f} px")
    if "translation_epe" in res:
        print(f"exact sub-pixel translations of {args.images} (up to 2 px): EPE {res['translation_epe']:.3f} px")
        cam = res["camera_epe"]
        print(f"{args.images} moved by the training camera: EPE median {cam['model']['median']:.3f} / mean "
              f"{cam['model']['mean']:.3f} px (DIS on the HR frames: {cam['dis_hr']['median']:.3f} / "
              f"{cam['dis_hr']['mean']:.3f}; on the LR frames: {cam['dis_lr']['median']:.3f} / {cam['dis_lr']['mean']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
