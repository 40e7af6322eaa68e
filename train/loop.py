"""The training loop, top to bottom.

    python -m train CONFIG.toml [--set key=value ...] [--resume RUN_DIR]

A run folder holds ``config.json``, ``checkpoint.pt`` (latest, written to a
temporary file and renamed), ``best.pt`` (best validation), ``log.jsonl`` and
``curves.png``. SIGINT/SIGTERM write a checkpoint and stop; ``--resume``
continues at the same step with the same optimiser, schedule, EMA and RNG
state, so an interrupted run ends where an uninterrupted one would.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from train import losses
from train.config import TrainConfig, config_from_dict, dumps
from train.data import TrainData, load_sources, spoil_flows
from vsr.errors import VsrError
from vsr.flow import with_flows
from vsr.models import MODELS, frames_of, size_multiple_of


class TrainError(VsrError):
    pass


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped the run after writing a checkpoint."""

    def __init__(self, run_dir: Path, signum: int):
        super().__init__(signum)
        self.run_dir, self.signum = run_dir, signum


# ---------------------------------------------------------------------------
# small helpers


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.run.device == "cuda" or (cfg.run.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    p = cfg.run.precision
    if p == "fp32":
        return None
    if p == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if torch.backends.mkldnn.is_available() and _cpu_has_bf16() else None
    return torch.bfloat16 if p == "bf16" else torch.float16


def _cpu_has_bf16() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text() or "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    o = cfg.optim
    if o.warmup and step < o.warmup:
        return (step + 1) / o.warmup
    if o.schedule == "cosine":
        t = (step - o.warmup) / max(1, o.steps - o.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    if o.schedule == "multistep":
        return o.gamma ** sum(step >= m for m in o.milestones)
    return 1.0


class EMA:
    """Exponential moving average of a model's parameters and buffers.

    The decay warms up as (1 + step) / (10 + step) until it reaches ``decay``,
    so early in a run the average follows the model instead of its initialisation.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TrainError(f"cannot save checkpoint {path}: {e.strerror or e}") from None


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise TrainError(f"no checkpoint at {path}") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        raise TrainError(f"corrupt checkpoint {path} ({type(e).__name__})") from None


def _init_from(model: torch.nn.Module, source: str) -> int:
    """Copy every tensor whose name and shape match from weights or a run (e.g. ×2 → ×4, fidelity → GAN)."""
    path = Path(source)
    if path.is_dir():
        path = next((p for p in (path / "best.pt", path / "checkpoint.pt") if p.exists()), path / "best.pt")
    if path.suffix == ".safetensors":
        from vsr.weights import load_weights

        state = load_weights(path)[0].state_dict()
    else:
        ck = load_checkpoint(path)
        state = ck.get("ema") or ck["model"]
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    if not matched:
        raise TrainError(f"{source}: no tensor matches the model")
    return len(matched)


# ---------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig | None, resume: str | None = None, *, quiet: bool = False, stop_after: int | None = None,
          overrides: list[str] = ()) -> Path:
    """Train; returns the run folder.

    ``resume`` continues a run folder (its saved config, plus ``overrides`` such as
    ``optim.steps=8000`` to extend it); ``stop_after`` stops with a checkpoint after
    that many steps (tests).
    """
    dist = _init_distributed()
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)
    main = rank == 0

    if resume:
        run_dir = Path(resume)
        saved = load_checkpoint(run_dir / "checkpoint.pt")
        cfg = config_from_dict(saved["config"], list(overrides))
    else:
        run_dir = Path(cfg.run.out) / (cfg.run.name or f"{cfg.model.name}_x{cfg.model.scale}")
        saved = None
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    device = _device(cfg)
    amp = _autocast_dtype(cfg, device)
    if amp is torch.bfloat16 and device.type == "cpu" and not _cpu_has_bf16() and main:
        warnings.warn("run.precision = \"bf16\" on a CPU without native bf16 (AVX-512 BF16 or AMX) is emulated and "
                      "several times slower than fp32; set run.precision = \"auto\" or \"fp32\"", stacklevel=2)
    torch.manual_seed(cfg.run.seed + rank)
    rng = np.random.default_rng(cfg.run.seed + 1000 * rank)

    # model, EMA, optimiser
    spec = MODELS[cfg.model.name]
    model = spec.build(cfg.model.scale, **cfg.model.params).to(device)
    frames = frames_of(model)  # what the model sees per output
    win = max(cfg.data.frames or frames, frames)  # the centre frames come from windows this long (ablations)
    off = (win - frames) // 2
    if cfg.model.init and saved is None:
        n = _init_from(model, cfg.model.init)
        if main and not quiet:
            print(f"initialised {n} tensors from {cfg.model.init}")
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.optim.ema) if cfg.optim.ema > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                            weight_decay=cfg.optim.weight_decay)
    use_flows = bool(cfg.loss.flow_weight or cfg.loss.flow_teacher or cfg.loss.flow_exact) and frames > 1
    flow_input = bool(getattr(model, "flow_input", False))  # given DIS flows (vsr.flow) instead of estimating them
    if flow_input and use_flows:
        raise TrainError(f"{cfg.model.name} is given its flows (DIS) and has no aligner to train: "
                         "set loss.flow_weight, flow_teacher and flow_exact to 0")
    if cfg.data.flow_noise and not flow_input:
        raise TrainError("data.flow_noise is for models given their flows (flow = \"dis\")")
    net = _WithFlows(model) if use_flows else model  # forward returns (image, flows)
    if dist:  # buffers are constants (or BatchNorm statistics, kept per process)
        net = torch.nn.parallel.DistributedDataParallel(net, broadcast_buffers=False)

    # GAN parts
    disc = d_opt = None
    video_outputs = 3 if win > 1 and (cfg.loss.temporal_weight or cfg.loss.adversarial_weight) else 1
    if cfg.loss.adversarial_weight:
        disc = losses.Discriminator(in_channels=3 * video_outputs).to(device)
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.optim.d_lr, betas=(0.9, 0.99))
        if dist:
            disc = torch.nn.parallel.DistributedDataParallel(disc, broadcast_buffers=False)
    vgg = losses.VGGFeatures(cfg.loss.vgg_weights).to(device) if cfg.loss.perceptual_weight else None
    if cfg.loss.perceptual_weight and not cfg.loss.vgg_weights:
        raise TrainError("loss.perceptual_weight needs loss.vgg_weights: a local VGG19 file (nothing is downloaded)")

    # data
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else run_dir / "cache"
    stills, videos = load_sources(cfg.data.train, cfg.model.scale, cache, kind=cfg.data.kind,
                                  stride=cfg.data.video_stride, limit=cfg.data.max_video_frames,
                                  exclude=cfg.data.exclude)
    degrade = None
    if cfg.data.degradation == "realistic":
        from train.degrade import RealisticDegradation

        degrade = RealisticDegradation(cfg.model.scale)
    elif cfg.data.degradation == "bd":
        from train.degrade import BlurDown

        degrade = BlurDown(cfg.model.scale)
    window = win + video_outputs - 1
    data = TrainData(stills, videos, scale=cfg.model.scale, patch=cfg.data.patch, frames=window,
                     pseudo_video=cfg.data.pseudo_video, degrade=degrade, max_shift=cfg.data.max_shift,
                     motion_blur=cfg.data.motion_blur)
    validator = _Validator(cfg, frames, size_multiple_of(model)) if cfg.val.folders and main else None

    # state
    step, best = 0, -float("inf")
    history: list[dict] = []
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optim"])
        if ema is not None:
            ema.model.load_state_dict(saved["ema"])
        if disc is not None:
            _unwrap(disc).load_state_dict(saved["disc"])
            d_opt.load_state_dict(saved["d_optim"])
        step, best = saved["step"], saved["best"]
        rng.bit_generator.state = saved["rng"][rank]
        torch.set_rng_state(saved["torch_rng"])
        history = saved.get("history", [])
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(dumps(cfg))

    def checkpoint(path: Path) -> None:
        rngs = [rng.bit_generator.state]
        if dist:
            gathered: list = [None] * world
            dist.all_gather_object(gathered, rng.bit_generator.state)
            rngs = gathered
        if not main:
            return
        _atomic_save({
            "config": cfg.to_dict(), "step": step, "best": best, "model": model.state_dict(),
            "ema": ema.model.state_dict() if ema else None, "optim": opt.state_dict(),
            "disc": _unwrap(disc).state_dict() if disc is not None else None,
            "d_optim": d_opt.state_dict() if d_opt is not None else None,
            "rng": rngs, "torch_rng": torch.get_rng_state(), "history": history,
        }, path)

    stop = {"signal": 0}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    log = _Log(run_dir) if main else None
    progress = _Progress(cfg.optim.steps, step, enabled=main and not quiet)
    t_last, steps_last = time.perf_counter(), step
    try:
        while step < cfg.optim.steps:
            if stop["signal"] or (stop_after is not None and step >= stop_after):
                break
            for g in opt.param_groups:
                g["lr"] = cfg.optim.lr * _lr_factor(cfg, step)
            lr, hr, *motion = data.batch(rng, cfg.data.batch // world if dist else cfg.data.batch,
                                         flows=bool(use_flows and cfg.loss.flow_exact))
            lr, hr = lr.to(device), hr.to(device)

            # generator step: one output per window of `frames` LR frames
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                outs, flows = [], []
                for i in range(video_outputs):
                    x = lr[:, i + off : i + off + frames].flatten(1, 2)
                    if flow_input:
                        x = with_flows(x, model.dis_finest_scale)
                        if cfg.data.flow_noise:
                            x = torch.cat([x[:, :9], spoil_flows(x[:, 9:], rng, cfg.data.flow_noise)], 1)
                    if device.type == "cpu":
                        x = x.contiguous(memory_format=torch.channels_last)
                    if use_flows:
                        y, fl = net(x)
                        flows.append(fl)
                    else:
                        y = net(x)
                    outs.append(y.float())
            targets = [hr[:, i + win // 2] for i in range(video_outputs)]
            terms = {"pixel": sum(losses.pixel_loss(cfg.loss.pixel, o, t) for o, t in zip(outs, targets)) / len(outs)}
            if flows and cfg.loss.flow_weight:
                terms["flow"] = cfg.loss.flow_weight * sum(
                    losses.flow_loss(lr[:, i + off : i + off + frames].float(), [f.float() for f in fl])
                    for i, fl in enumerate(flows)
                ) / len(flows)
            if flows and cfg.loss.flow_teacher:
                ref = [losses.teacher_flows(hr[:, i + off : i + off + frames], cfg.model.scale) for i in range(len(flows))]
                terms["flow_teacher"] = cfg.loss.flow_teacher * sum(
                    (f.float() - r.to(device)).abs().mean() for fl, rl in zip(flows, ref) for f, r in zip(fl, rl)
                ) / sum(len(fl) for fl in flows)
            if flows and motion:  # the exact motion starts from the window's centre frame: supervise that output's flows
                i = window // 2 - off - frames // 2
                ref = [motion[0][:, i + off + k].to(device) for k in range(frames) if k != frames // 2]
                terms["flow_exact"] = cfg.loss.flow_exact * losses.exact_flow_loss(flows[i], ref)
            if cfg.loss.temporal_weight and video_outputs > 1:
                terms["temporal"] = cfg.loss.temporal_weight * losses.temporal_loss(outs, targets)
            if vgg is not None:
                terms["perceptual"] = cfg.loss.perceptual_weight * sum(vgg(o, t) for o, t in zip(outs, targets)) / len(outs)
            if disc is not None:
                fake, real = torch.cat(outs, 1), torch.cat(targets, 1)
                d_real, real_feats = disc(real)
                d_fake, fake_feats = disc(fake)
                g_adv, _ = losses.ragan_losses(d_real.detach(), d_fake)
                terms["adversarial"] = cfg.loss.adversarial_weight * g_adv
                if cfg.loss.feature_match_weight:
                    terms["feature_match"] = cfg.loss.feature_match_weight * losses.feature_matching(real_feats, fake_feats)
            terms["pixel"] = cfg.loss.pixel_weight * terms["pixel"]
            loss = sum(terms.values())
            if not torch.isfinite(loss):
                raise TrainError(f"loss became {loss.item()} at step {step}; lower optim.lr or use run.precision='fp32'")
            opt.zero_grad(set_to_none=True)
            if disc is not None:
                disc.requires_grad_(False)
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model, step)

            if disc is not None:  # discriminator step
                disc.requires_grad_(True)
                d_real, _ = disc(torch.cat(targets, 1))
                d_fake, _ = disc(torch.cat([o.detach() for o in outs], 1))
                _, d_loss = losses.ragan_losses(d_real, d_fake)
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                terms["d"] = d_loss.detach()
            step += 1

            if main and (step % cfg.run.log_every == 0 or step == cfg.optim.steps):
                now = time.perf_counter()
                rate = (step - steps_last) / max(now - t_last, 1e-9)
                t_last, steps_last = now, step
                rec = {"step": step, "loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"], "it_s": rate,
                       **{k: float(v.detach()) for k, v in terms.items()}}
                history.append(rec)
                log.write(rec)
                progress.update(step, float(loss.detach()), rate)
            if validator and (cfg.val.every and step % cfg.val.every == 0 or step == cfg.optim.steps):
                result = validator.run((ema.model if ema else model))
                rec = {"step": step, "val": result}
                history.append(rec)
                log.write(rec)
                progress.note(f"step {step}: val PSNR-Y {result['psnr']:.3f} dB")
                if result["psnr"] > best:
                    best = result["psnr"]
                    _atomic_save({"config": cfg.to_dict(), "step": step, "val": result,
                                  "ema": (ema.model if ema else model).state_dict()}, run_dir / "best.pt")
            if step % cfg.run.checkpoint_every == 0:
                checkpoint(run_dir / "checkpoint.pt")
                if main:
                    _plot(history, run_dir / "curves.png")
        checkpoint(run_dir / "checkpoint.pt")
        if main:
            _plot(history, run_dir / "curves.png")
        if dist:
            dist.barrier()  # leave together: a rank that exits while the others still talk to it aborts
    finally:
        progress.close()
        if log:
            log.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if dist:  # a process leaving with gloo's threads alive aborts ("terminate called without an active exception")
            dist.destroy_process_group()
    if stop["signal"]:
        raise Interrupted(run_dir, stop["signal"])
    return run_dir


class _Log:
    """``log.jsonl`` (one record a line), mirrored to TensorBoard when it is installed."""

    def __init__(self, run_dir: Path):
        self.file = open(run_dir / "log.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.tb = None

    def write(self, rec: dict) -> None:
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()
        if self.tb is not None:
            flat = {f"val/{k}": v for k, v in _flatten(rec["val"]).items()} if "val" in rec else {
                f"train/{k}": v for k, v in rec.items() if k != "step"}
            for key, value in flat.items():
                self.tb.add_scalar(key, value, rec["step"])
            self.tb.flush()

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = float(v)
    return out


class _WithFlows(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_with_flows(x)


def _unwrap(m):
    return m.module if hasattr(m, "module") else m


def _init_distributed():
    """torch.distributed when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist


class _Validator:
    def __init__(self, cfg: TrainConfig, frames: int, multiple: int):
        from vsr.evaluate import load_source

        self.scale, self.frames, self.multiple = cfg.model.scale, frames, multiple
        self.sources = [
            load_source(p, cfg.model.scale, max_frames=cfg.val.max_frames if _is_video(p) else 0, crop=cfg.val.crop)
            for p in cfg.val.folders
        ]

    def run(self, model) -> dict:
        from vsr.evaluate import evaluate, mean

        model.eval()
        out: dict = {}
        for src in self.sources:
            scores = evaluate(lambda x: model(x.contiguous(memory_format=torch.channels_last)), src,
                              scale=self.scale, frames=self.frames, multiple=self.multiple)
            p, s = mean(scores)
            out[src.name] = {"psnr": p, "ssim": s}
        out["psnr"] = validation_psnr(out)
        return out


def validation_psnr(val: dict) -> float:
    """The score that picks the best checkpoint and is shipped with the weights: the first validation set's
    (``val.folders[0]``); any further sets are reported beside it."""
    return float(next(v["psnr"] for v in val.values() if isinstance(v, dict)))


def _is_video(path: str) -> bool:
    from vsr.files import VIDEO_EXTS

    p = Path(path)
    return p.is_file() and p.suffix.lower() in VIDEO_EXTS


def _plot(history: list[dict], path: Path) -> None:
    """Loss and validation PSNR against step, as a PNG (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    train_pts = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val_pts = [(h["step"], h["val"]["psnr"]) for h in history if "val" in h]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if train_pts:
        ax[0].plot(*zip(*train_pts))
        ax[0].set_yscale("log")
    ax[0].set_title("training loss")
    ax[0].set_xlabel("step")
    if val_pts:
        ax[1].plot(*zip(*val_pts), marker="o")
    ax[1].set_title("validation PSNR-Y (dB)")
    ax[1].set_xlabel("step")
    fig.tight_layout()
    tmp = path.with_name(".curves.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


class _Progress:
    """Rich progress bar with loss, it/s and ETA; silent when disabled."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.2f} it/s"),
                          TimeRemainingColumn())
        self.p.start()
        self.task = self.p.add_task("train", total=total, completed=start, loss=float("nan"), rate=0.0)

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.enabled:
            self.p.update(self.task, completed=step, loss=loss, rate=rate)

    def note(self, text: str) -> None:
        if self.enabled:
            self.p.console.print(text)

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
