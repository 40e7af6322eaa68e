"""Oracle alignment: how much would a perfect aligner give mf-fast? (issue 6's ablation, an upper bound)

    python benchmarks/oracle_alignment.py 8000     # steps to run of the 15k-step schedule (~20 min on one core)
    python benchmarks/oracle_alignment.py 6000 --pseudo   # stills only, as pseudo-video; validated on Set5 pseudo-video
    python benchmarks/oracle_alignment.py 6000 --pseudo --degradation bd --model mf-quality

Trains mf-fast ×4 exactly as train/configs/mf-fast_x4.toml does (data, batch, schedule, EMA, bf16), except
that t-1 and t+1 are warped with the reference flow (OpenCV DIS on the HR frames, averaged to LR pixels:
train.losses.teacher_flows) instead of the model's own. Validation uses the reference flow too, so the
network sees neighbours aligned far better than any LR-only aligner could. Compare its cockatoo PSNR-Y at
each 1000 steps with the 1-frame twin's log (train/configs/mf-fast-1f_x4.toml). Run it from the repository
root (the config's data paths are relative to it); needs ../shared/data.

``--pseudo`` asks the cleanest form of the question: trained only on stills moved by the random camera
(pure sub-pixel camera motion, where extra frames provably carry extra detail) and validated on Set5 moved
the same way (held out), with the reference flow, against the same network fed the centre frame three times.
``--phase`` removes the bilinear warp's low-pass: neighbours move by whole pixels, the sub-pixel offset is an input.
``--flow lr`` computes the same DIS flow on the LR frames instead (what a deployed model could be given: no HR
there). ``--model`` swaps in another multi-frame preset (same schedule); ``--degradation bd`` makes every LR frame,
in training and validation, by Gaussian blur and subsampling (``train.degrade.BlurDown``) instead of BI.
``--frames 1`` trains the same preset on the centre frame alone (the twin, same data and schedule).
``--clip 20:`` is a diagnostic of the training data, not a way to train a model to ship: it trains on the
validation clip's own frames 20.. (its later seconds, never the validated ones) instead of the training mix,
so both twins see footage like the validated frames: can the neighbours help there when the training data is right?
``--val VIDEO ...`` validates on other clips instead of cockatoo (and keeps them out of training).
``--confidence`` adds, per neighbour, its mean absolute difference from the centre after alignment to the fusion's
input; ``--flow-noise P`` spoils the flow over a random rectangle in a share P of the training windows, so the
network meets flows that fail and learns what that looks like.
``--clip 0:20`` trains on the validated frames themselves: a bound on what the neighbours can add to this
network on this footage, never a result.
An experiment, not part of vsr.
"""
import argparse
import glob
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from train import losses
from train.config import load_config
from train.data import TrainData, camera_motion, load_sources, spoil_flows
from train.degrade import BlurDown
from train.loop import EMA, _lr_factor
from vsr.evaluate import load_source
from vsr.metrics import psnr, to_uint8
from vsr.models import MODELS
from vsr.resize import imresize
from vsr.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
CFG = load_config(ROOT / "train" / "configs" / "mf-fast_x4.toml")  # every hyperparameter comes from here
CACHE = Path(tempfile.gettempdir()) / "vsr-oracle-cache"


def fwd(m, x, flows):
    """mf-fast's forward with the given flows in place of its aligner's.

    With ``m.phase`` (``--phase``), each neighbour moves by whole LR pixels only (an exact copy of its samples:
    no interpolation filter) and the remaining sub-pixel offset reaches the fusion as two more channels."""
    fr = [x[:, 3 * i : 3 * i + 3] for i in range(3)]
    if m.frames == 1:
        return m.reconstruct(fr[1], fr[1])
    (n0, o0), (n2, o2) = m.align(fr[0], flows[0]), m.align(fr[2], flows[1])
    offsets = [o0, o2] if m.phase else []
    if getattr(m, "confidence", False):  # --confidence: how far each aligned neighbour is from the centre
        offsets += [(n - fr[1]).abs().mean(1, keepdim=True) for n in (n0, n2)]
    return m.reconstruct(torch.cat([n0, fr[1], n2, *offsets], 1), fr[1])


def perturb_flows(flows: list[torch.Tensor], rng: np.random.Generator, p: float) -> list[torch.Tensor]:
    """--flow-noise: ``train.data.spoil_flows`` (what ``data.flow_noise`` does in training) on the two flows."""
    out = spoil_flows(torch.cat(flows, 1), rng, p)
    return [out[:, :2], out[:, 2:]]


FLOW_FROM_LR = False  # --flow lr


def reference_flows(lr_window: torch.Tensor, hr_window: torch.Tensor) -> list[torch.Tensor]:
    """DIS flows (LR pixels) from the centre to the other frames, on the HR frames or (``--flow lr``) the LR ones."""
    return losses.teacher_flows(lr_window, 1) if FLOW_FROM_LR else losses.teacher_flows(hr_window, 4)


def _t(frames) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float() / 255 for f in frames])


def _down(frames, degrade) -> torch.Tensor:
    return _t(degrade(np.stack(frames)) if degrade else [imresize(f, 0.25) for f in frames])


def pseudo_validation(degrade=None, images: str = "../shared/data/val/Set5", repeats: int = 8):
    """Held-out pseudo-video windows (Set5 moved by the training camera, BI ×4), with their reference flows."""
    rng = np.random.default_rng(0)
    wins = []
    for path in sorted(glob.glob(f"{images}/*.png")):
        hr = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        out = min((min(hr.shape[:2]) - 2 * int(CFG.data.max_shift * 4 * 1.1 + 3)) * 94 // 100 // 32 * 32, 192)
        for _ in range(repeats):
            frames = camera_motion(hr, 3, out, rng, max_shift=CFG.data.max_shift * 4)
            x = _down(frames, degrade).reshape(1, 9, out // 4, out // 4)
            wins.append((x, reference_flows(x.reshape(1, 3, 3, *x.shape[2:]), _t(frames)[None]), frames[1]))

    def validate(m) -> dict:
        ps, alone = [], []
        with torch.inference_mode():
            for x, flows, hr in wins:
                ps.append(psnr(to_uint8(fwd(m, x, flows)[0].permute(1, 2, 0).numpy()), hr, shave=4))
                c = x[:, 3:6]
                y = fwd(m, torch.cat([c, c, c], 1), [torch.zeros_like(f) for f in flows])
                alone.append(psnr(to_uint8(y[0].permute(1, 2, 0).numpy()), hr, shave=4))
        return {"val_oracle": round(float(np.mean(ps)), 3), "centre_only": round(float(np.mean(alone)), 3)}

    return validate


def clips_validation(degrade, videos: list[str]):
    """Each clip's validation, under its name."""
    checks = {Path(v).stem.split("_")[0]: clip_validation(degrade, v) for v in videos}
    return lambda m: {name: check(m) for name, check in checks.items()} if len(checks) > 1 else \
        next(iter(checks.values()))(m)


def clip_validation(degrade=None, video: str = CFG.val.folders[0]):
    """A clip (the config's, cockatoo, unless ``--val``; ×4, BI unless ``degrade``) with its reference flows."""
    item = load_source(video, 4, max_frames=CFG.val.max_frames).items[0]
    T = len(item.hr)
    hr_t, lr_t = _t(item.hr), _t(item.lr) if degrade is None else _down(item.hr, degrade)
    val_flows = []
    for t in range(T):
        idx = [min(max(k, 0), T - 1) for k in (t - 1, t, t + 1)]
        val_flows.append(reference_flows(lr_t[idx][None], hr_t[idx][None]))

    def validate(m) -> dict:  # as `vsr eval` scores: PSNR-Y, `scale` pixels shaved, edges repeated
        ps, alone = [], []
        with torch.inference_mode():
            for t in range(T):
                idx = [min(max(k, 0), T - 1) for k in (t - 1, t, t + 1)]
                y = fwd(m, lr_t[idx].reshape(1, 9, *lr_t.shape[2:]), val_flows[t])
                ps.append(psnr(to_uint8(y[0].permute(1, 2, 0).numpy()), item.hr[t], shave=4))
                if m.frames > 1:  # the same network with its neighbours replaced by the centre frame
                    y = fwd(m, lr_t[[t, t, t]].reshape(1, 9, *lr_t.shape[2:]), [torch.zeros_like(f) for f in val_flows[t]])
                    alone.append(psnr(to_uint8(y[0].permute(1, 2, 0).numpy()), item.hr[t], shave=4))
        return {"val_oracle": round(float(np.mean(ps)), 3), **({"centre_only": round(float(np.mean(alone)), 3)} if alone else {})}

    return validate


def clip_frames(video: str, start: int, stop: int) -> list:
    """Frames ``start``..``stop``-1 of a clip as a training sequence (HR and BI LR, cached like any video)."""
    from train.data import Sequence, _cache_key, _file_sig, _store, decode_video

    path = Path(video)
    frames = lambda: (f for i, f in enumerate(decode_video(path, limit=stop)) if i >= start)  # noqa: E731
    key = _cache_key(["clip-from", start, 4] + ([stop] if stop < 1 << 30 else []) + _file_sig([path]))
    hr, lr = _store(CACHE, key, frames, 4)
    return [Sequence(f"{path.name}[{start}:{stop}]", hr, lr)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps", type=int, nargs="?", default=CFG.optim.steps, help="steps of the schedule to run")
    ap.add_argument("--pseudo", action="store_true", help="stills as pseudo-video only; Set5 pseudo-video validation")
    ap.add_argument("--model", default="mf-fast", help="a multi-frame preset")
    ap.add_argument("--degradation", choices=("bi", "bd"), default="bi")
    ap.add_argument("--phase", action="store_true", help="whole-pixel warps plus the sub-pixel offsets as input")
    ap.add_argument("--flow", choices=("hr", "lr"), default="hr", help="DIS on the HR frames, or on the LR frames")
    ap.add_argument("--frames", type=int, choices=(1, 3), default=3, help="1: the single-frame twin")
    ap.add_argument("--val", nargs="+", default=[CFG.val.folders[0]], metavar="VIDEO",
                    help="validate on these clips (their first 20 frames), kept out of training; default: cockatoo")
    ap.add_argument("--confidence", action="store_true",
                    help="the fusion also sees how far each aligned neighbour is from the centre frame")
    ap.add_argument("--flow-noise", type=float, default=0.0, metavar="P",
                    help="in training, spoil the flow over a random rectangle in this share of the windows")
    ap.add_argument("--save", metavar="PATH", help="save the EMA weights here at the end (for analysis)")
    ap.add_argument("--clip", default=None, metavar="FROM:TO",
                    help="train on these frames of the validation clip instead of the training mix (a diagnostic)")
    args = ap.parse_args()
    global FLOW_FROM_LR
    FLOW_FROM_LR = args.flow == "lr"
    degrade = BlurDown(4) if args.degradation == "bd" else None
    stop_at = args.steps
    torch.set_num_threads(1)
    torch.manual_seed(0)
    validate = pseudo_validation(degrade) if args.pseudo else clips_validation(degrade, args.val)

    if args.model == "mf-fast" and degrade is None:  # context: the shipped weights, given the reference flow untrained
        shipped, _ = load_model("mf-fast", 4)
        print(json.dumps({"shipped_with_reference_flow": validate(shipped.eval())}), flush=True)

    model = MODELS[args.model].build(4, phase=args.phase, frames=args.frames)
    if args.confidence and args.frames > 1:
        conv = model.head[0]
        model.head[0] = torch.nn.Conv2d(conv.in_channels + 2, conv.out_channels, 3, padding=1)
        model.confidence = True
    model = model.to(memory_format=torch.channels_last)
    o, d = CFG.optim, CFG.data
    ema = EMA(model, o.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    if args.clip is not None:
        start, _, stop = args.clip.partition(":")
        start, stop = int(start or 0), int(stop or 1 << 30)
        if start < CFG.val.max_frames:
            print(f"--clip {args.clip}: trains on validated frames; the scores are a bound, not results", file=sys.stderr)
        stills, videos = [], clip_frames(args.val[0], start, stop)
    else:
        exclude = d.exclude + [Path(v).name for v in args.val]  # the validation clips never train
        stills, videos = load_sources(d.train, 4, CACHE, exclude=exclude)  # paths relative to the repository root
    if args.pseudo:
        videos = []
    data = TrainData(stills, videos, scale=4, patch=d.patch, frames=3, pseudo_video=1.0 if args.pseudo else d.pseudo_video,
                     max_shift=d.max_shift, degrade=degrade)
    rng = np.random.default_rng(0)
    t0 = time.time()
    for step in range(stop_at):
        for g in opt.param_groups:
            g["lr"] = o.lr * _lr_factor(CFG, step)
        lr, hr = data.batch(rng, d.batch)
        flows = reference_flows(lr, hr) if model.frames > 1 else None
        if flows is not None and args.flow_noise:
            flows = perturb_flows(flows, rng, args.flow_noise)
        x = lr.flatten(1, 2).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = fwd(model, x, flows)
        loss = losses.pixel_loss(CFG.loss.pixel, y.float(), hr[:, 1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        ema.update(model, step)
        if (step + 1) % 1000 == 0:
            print(json.dumps({"step": step + 1, **validate(ema.model),
                              "it_s": round((step + 1) / (time.time() - t0), 2)}), flush=True)
    if args.save:
        torch.save({"args": vars(args), "ema": ema.model.state_dict()}, args.save)


if __name__ == "__main__":
    main()
