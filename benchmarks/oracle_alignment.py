"""Oracle alignment: how much would a perfect aligner give mf-fast? (issue 6's ablation, an upper bound)

    python benchmarks/oracle_alignment.py 8000     # steps to run of the 15k-step schedule (~20 min on one core)

Trains mf-fast ×4 exactly as train/configs/mf-fast_x4.toml does (data, batch, schedule, EMA, bf16), except
that t-1 and t+1 are warped with the reference flow (OpenCV DIS on the HR frames, averaged to LR pixels:
train.losses.teacher_flows) instead of the model's own. Validation uses the reference flow too, so the
network sees neighbours aligned far better than any LR-only aligner could. Compare its cockatoo PSNR-Y at
each 1000 steps with the 1-frame twin's log (train/configs/mf-fast-1f_x4.toml). Run it from the repository
root (the config's data paths are relative to it); needs ../shared/data.
An experiment, not part of vsr.
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from train import losses
from train.config import load_config
from train.data import TrainData, load_sources
from train.loop import EMA, _lr_factor
from vsr.evaluate import load_source
from vsr.metrics import psnr, to_uint8
from vsr.models import MODELS
from vsr.models.mfsr import flow_warp
from vsr.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
CFG = load_config(ROOT / "train" / "configs" / "mf-fast_x4.toml")  # every hyperparameter comes from here
CACHE = Path(tempfile.gettempdir()) / "vsr-oracle-cache"


def fwd(m, x, flows):
    """mf-fast's forward with the given flows in place of its aligner's."""
    fr = [x[:, 3 * i : 3 * i + 3] for i in range(3)]
    return m.reconstruct(torch.cat([flow_warp(fr[0], flows[0]), fr[1], flow_warp(fr[2], flows[1])], 1), fr[1])


def main() -> None:
    stop_at = int(sys.argv[1]) if len(sys.argv) > 1 else CFG.optim.steps
    torch.set_num_threads(1)
    torch.manual_seed(0)
    item = load_source(CFG.val.folders[0], 4, max_frames=CFG.val.max_frames).items[0]
    T = len(item.hr)
    hr_t = torch.stack([torch.from_numpy(h).permute(2, 0, 1).float() / 255 for h in item.hr])
    lr_t = torch.stack([torch.from_numpy(l).permute(2, 0, 1).float() / 255 for l in item.lr])
    val_flows = []
    for t in range(T):
        idx = [min(max(k, 0), T - 1) for k in (t - 1, t, t + 1)]
        val_flows.append(losses.teacher_flows(hr_t[idx][None], 4))

    def validate(m) -> float:  # as `vsr eval` scores: PSNR-Y, `scale` pixels shaved, edges repeated
        ps = []
        with torch.inference_mode():
            for t in range(T):
                idx = [min(max(k, 0), T - 1) for k in (t - 1, t, t + 1)]
                y = fwd(m, lr_t[idx].reshape(1, 9, *lr_t.shape[2:]), val_flows[t])
                ps.append(psnr(to_uint8(y[0].permute(1, 2, 0).numpy()), item.hr[t], shave=4))
        return float(np.mean(ps))

    shipped, _ = load_model("mf-fast", 4)  # context: the shipped weights, given the reference flow untrained
    print(json.dumps({"shipped_with_reference_flow": round(validate(shipped.eval()), 3)}), flush=True)

    model = MODELS["mf-fast"].build(4).to(memory_format=torch.channels_last)
    o, d = CFG.optim, CFG.data
    ema = EMA(model, o.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    stills, videos = load_sources(d.train, 4, CACHE, exclude=d.exclude)  # paths relative to the repository root
    data = TrainData(stills, videos, scale=4, patch=d.patch, frames=3, pseudo_video=d.pseudo_video, max_shift=d.max_shift)
    rng = np.random.default_rng(0)
    t0 = time.time()
    for step in range(stop_at):
        for g in opt.param_groups:
            g["lr"] = o.lr * _lr_factor(CFG, step)
        lr, hr = data.batch(rng, d.batch)
        flows = losses.teacher_flows(hr, 4)
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
            print(json.dumps({"step": step + 1, "val_oracle": round(validate(ema.model), 3),
                              "it_s": round((step + 1) / (time.time() - t0), 2)}), flush=True)


if __name__ == "__main__":
    main()
