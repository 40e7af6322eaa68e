"""The training loop, top to bottom.

    python -m train CONFIG.toml [--set key=value ...] [--resume RUN_DIR]

A batch is a clip of ``data.frames`` LR/HR frames; the model makes an output for each inner frame (1 .. T-2, or
the one frame of T = 1): a window model from each window, a recurrent model frame after frame with its state
carried through the clip (back-propagated through all of it). A run folder holds ``config.json``,
``checkpoint.pt`` (latest, written to a temporary file and renamed), ``best.pt`` (best validation), ``log.jsonl``
and ``curves.png``. SIGINT/SIGTERM write a checkpoint and stop; ``--resume`` continues at the same step with the
same optimiser, schedule, EMA and RNG state, so an interrupted run ends where an uninterrupted one would.
"""

from __future__ import annotations

import math
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from train import losses
from train.checkpoint import EMA, TrainError, atomic_save, init_from, load_checkpoint
from train.config import TrainConfig, config_from_dict, dumps
from train.logs import Log, Progress, plot
from train.sampler import TrainData, spoil_flows
from train.store import DataError, load_sources
from train.validate import Validator
from vsr.models import build

__all__ = ["Interrupted", "TrainError", "train"]


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped the run after writing a checkpoint."""

    def __init__(self, run_dir: Path, signum: int):
        super().__init__(signum)
        self.run_dir, self.signum = run_dir, signum


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.run.device == "cuda" or (cfg.run.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    from engines.cpu import has_native_bf16

    p = cfg.run.precision
    if p == "fp32":
        return None
    if p == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if torch.backends.mkldnn.is_available() and has_native_bf16() else None
    return torch.bfloat16 if p == "bf16" else torch.float16


def lr_factor(cfg: TrainConfig, step: int) -> float:
    o = cfg.optim
    if o.warmup and step < o.warmup:
        return (step + 1) / o.warmup
    if o.schedule == "cosine":
        t = (step - o.warmup) / max(1, o.steps - o.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return 1.0


def run_clip(model, lr: torch.Tensor, cfg: TrainConfig, rng) -> tuple[list[torch.Tensor], list]:
    """The model over an N×T×3×h×w clip: (outputs for frames 1 .. T-2, or [frame 0] when T = 1; a learned aligner's
    flows per output, for the flow loss)."""
    from vsr.flow import Dis, clip_flows

    n, length, _, h, w = lr.shape
    positions = range(1, length - 1) if length > 1 else [0]
    given = clip_flows(lr, Dis.of(model)).to(lr) if getattr(model, "flow_channels", 0) else None
    state = lr.new_zeros((n, model.state_channels, h, w)) if getattr(model, "state_channels", 0) else None
    learned = bool(cfg.loss.flow_weight) and hasattr(model, "forward_with_flows")
    outs, flows = [], []
    for t in positions:
        x = lr[:, t - 1 : t + 2].flatten(1, 2) if getattr(model, "frames", 1) == 3 else lr[:, t]
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        args = [x]
        if given is not None:
            f = given[:, t - 1]
            args.append(spoil_flows(f, rng, cfg.data.flow_noise) if cfg.data.flow_noise else f)
        if state is not None:
            args.append(state)
        if learned:
            y, fl = model.forward_with_flows(x)
            flows.append([f.float() for f in fl])
        else:
            y = model(*args)
        if state is not None:
            y, state = y
        outs.append(y.float())
    return outs, flows


def train(cfg: TrainConfig | None, resume: str | None = None, *, quiet: bool = False, stop_after: int | None = None,
          overrides: list[str] = ()) -> Path:
    """Train; returns the run folder.

    ``resume`` continues a run folder (its saved config, plus ``overrides`` such as ``optim.steps=8000`` to extend
    it); ``stop_after`` stops with a checkpoint after that many steps (tests).
    """
    if resume:
        run_dir = Path(resume)
        saved = load_checkpoint(run_dir / "checkpoint.pt")
        cfg = config_from_dict(saved["config"], list(overrides))
    else:
        run_dir, saved = Path(cfg.run.out) / (cfg.run.name or f"{cfg.model.arch}_x{cfg.model.scale}"), None
        if (run_dir / "checkpoint.pt").exists():  # a new run would overwrite it at its first checkpoint
            raise TrainError(f"{run_dir} holds a run already: continue it with python -m train --resume {run_dir}, "
                             "or give this one another run.name")
    check_paths(cfg, init=saved is None)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    device = _device(cfg)
    amp = _autocast_dtype(cfg, device)
    if amp is torch.bfloat16 and device.type == "cpu":
        from engines.cpu import has_native_bf16

        if not has_native_bf16():
            warnings.warn("run.precision = \"bf16\" on a CPU without native bf16 (AVX-512 BF16 or AMX) is emulated "
                          "and several times slower than fp32; set run.precision = \"auto\" or \"fp32\"", stacklevel=2)
    torch.manual_seed(cfg.run.seed)
    rng = np.random.default_rng(cfg.run.seed)

    # the model, its EMA and optimiser, and the GAN's parts
    model = build(cfg.model.arch, scale=cfg.model.scale, **cfg.model.params).to(device)
    if cfg.model.init and saved is None:
        n = init_from(model, cfg.model.init, new_inputs=cfg.model.init_new)
        if not quiet:
            print(f"initialised {n} tensors from {cfg.model.init}")
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    if cfg.data.flow_noise and not getattr(model, "flow_channels", 0):
        raise TrainError("data.flow_noise is for models given their flows (flow_channels)")
    if cfg.loss.flow_weight and not hasattr(model, "forward_with_flows"):
        raise TrainError(f"{cfg.model.arch} has no learned aligner to train: set loss.flow_weight to 0")
    ema = EMA(model, cfg.optim.ema) if cfg.optim.ema > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                            weight_decay=cfg.optim.weight_decay)
    window = int(getattr(model, "frames", 1))
    frames = cfg.data.frames or window
    if frames < window or (getattr(model, "state_channels", 0) and frames < 3):
        raise TrainError(f"data.frames = {frames} is too short for {cfg.model.arch} (3 or more)")
    disc = d_opt = None
    if cfg.loss.adversarial_weight:
        outputs = frames - 2 if frames > 1 else 1
        disc = losses.Discriminator(in_channels=9 if outputs >= 3 else 3).to(device)  # see losses.disc_input
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.optim.d_lr, betas=(0.9, 0.99))

    # data and validation
    data = TrainData(*load_sources(cfg.data.train, cfg.model.scale,
                                   Path(cfg.data.cache_dir) if cfg.data.cache_dir else run_dir / "cache",
                                   stride=cfg.data.video_stride, limit=cfg.data.max_video_frames,
                                   exclude=cfg.data.exclude),
                     scale=cfg.model.scale, patch=cfg.data.patch, frames=frames, pseudo_video=cfg.data.pseudo_video,
                     degrade=_degradation(cfg), max_shift=cfg.data.max_shift, motion_blur=cfg.data.motion_blur)
    validator = Validator.from_config(cfg) if cfg.val.folders else None

    # state
    step, best, history = 0, -float("inf"), []
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optim"])
        if ema is not None:
            ema.model.load_state_dict(saved["ema"])
        if disc is not None:
            disc.load_state_dict(saved["disc"])
            d_opt.load_state_dict(saved["d_optim"])
        step, best, history = saved["step"], saved["best"], saved.get("history", [])
        rng.bit_generator.state = saved["rng"][0]
        torch.set_rng_state(saved["torch_rng"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(dumps(cfg))

    def checkpoint() -> None:
        atomic_save({"config": cfg.to_dict(), "step": step, "best": best, "model": model.state_dict(),
                     "ema": ema.model.state_dict() if ema else None, "optim": opt.state_dict(),
                     "disc": disc.state_dict() if disc is not None else None,
                     "d_optim": d_opt.state_dict() if d_opt is not None else None,
                     "rng": [rng.bit_generator.state],  # a list, as checkpoints have always held it
                     "torch_rng": torch.get_rng_state(), "history": history}, run_dir / "checkpoint.pt")
        plot(history, run_dir / "curves.png")

    stop = {"signal": 0}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    log = Log(run_dir)
    progress = Progress(cfg.optim.steps, step, enabled=not quiet)
    t_last, steps_last = time.perf_counter(), step
    try:
        while step < cfg.optim.steps and not stop["signal"] and (stop_after is None or step < stop_after):
            for g in opt.param_groups:
                g["lr"] = cfg.optim.lr * lr_factor(cfg, step)
            lr, hr = (t.to(device) for t in data.batch(rng, cfg.data.batch))

            # generator step
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                outs, flows = run_clip(model, lr, cfg, rng)
            targets = [hr[:, t] for t in (range(1, hr.shape[1] - 1) if hr.shape[1] > 1 else [0])]
            lr_windows = [lr[:, t - 1 : t + 2].float() for t in range(1, lr.shape[1] - 1)] if flows else None
            if disc is not None:
                disc.requires_grad_(False)
            terms = losses.generator_terms(cfg.loss, outs, targets, scale=cfg.model.scale, lr_clip=lr_windows,
                                           flows=flows, disc=disc)
            loss = sum(terms.values())
            if not torch.isfinite(loss):
                raise TrainError(f"loss became {loss.item()} at step {step}; lower optim.lr or use run.precision='fp32'")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model, step)

            # discriminator step
            if disc is not None:
                disc.requires_grad_(True)
                d_loss = losses.discriminator_loss(disc, outs, targets)
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                terms["d"] = d_loss.detach()
            step += 1

            if step % cfg.run.log_every == 0 or step == cfg.optim.steps:
                now = time.perf_counter()
                rate = (step - steps_last) / max(now - t_last, 1e-9)
                t_last, steps_last = now, step
                rec = {"step": step, "loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"], "it_s": rate,
                       **{k: float(v.detach()) for k, v in terms.items()}}
                history.append(rec)
                log.write(rec)
                progress.update(step, rec["loss"], rate)
            if validator and (cfg.val.every and step % cfg.val.every == 0 or step == cfg.optim.steps):
                result = validator.run(ema.model if ema else model)
                model.train()
                history.append({"step": step, "val": result})
                log.write(history[-1])
                progress.note(f"step {step}: val PSNR-Y {result['psnr']:.3f} dB")
                if result["psnr"] > best:
                    best = result["psnr"]
                    atomic_save({"config": cfg.to_dict(), "step": step, "val": result,
                                 "ema": (ema.model if ema else model).state_dict()}, run_dir / "best.pt")
            if step % cfg.run.checkpoint_every == 0:
                checkpoint()
        checkpoint()
    finally:
        progress.close()
        log.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
    if stop["signal"]:
        raise Interrupted(run_dir, stop["signal"])
    return run_dir


def check_paths(cfg: TrainConfig, init: bool = True) -> None:
    """Every training and validation path (and with ``init`` the weights or run it starts from) exists, checked
    before anything is built or decoded; the errors say how to train on one's own data (the configs name
    ../shared/data, this repository's data folder)."""
    if init and cfg.model.init and not Path(cfg.model.init).exists():
        raise TrainError(f"model.init {cfg.model.init} not found: the weights or the run this config starts from (a "
                         "stage's config makes that run: train it first), or name others with --set model.init=PATH")
    if not cfg.data.train:
        raise DataError("no training data: train on your own images or videos with --data PATH")
    for p in cfg.data.train:
        if not Path(p).expanduser().exists():
            raise DataError(f"training data not found: {p} — train on your own images or videos with --data PATH "
                            "(or --set data.train='[\"PATH\"]')")
    for p in cfg.val.folders:
        if not Path(p).expanduser().exists():
            raise DataError(f"validation data not found: {p} — validate on images or videos of your own, held out of "
                            "training, with --set val.folders='[\"PATH\"]', or train without validation: "
                            "--set val.folders=[]")


def _degradation(cfg: TrainConfig):
    if cfg.data.degradation == "realistic":
        from train.degrade import RealisticDegradation

        return RealisticDegradation(cfg.model.scale, cfg.degrade)
    return None
