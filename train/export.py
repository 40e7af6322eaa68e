"""Export a run's EMA weights (best validation, else latest) as a vsr weight file."""

from __future__ import annotations

from pathlib import Path

from train.config import config_from_dict
from train.loop import TrainError, load_checkpoint, validation_psnr
from vsr.models import MODELS
from vsr.weights import WeightInfo, save_weights


def export(run_dir: str | Path, out: str | Path, name: str | None = None) -> Path:
    run_dir = Path(run_dir)
    best, last = run_dir / "best.pt", run_dir / "checkpoint.pt"
    if not best.exists() and not last.exists():
        raise TrainError(f"{run_dir}: no checkpoint to export (is it a run folder?)")
    ck = load_checkpoint(best if best.exists() else last)
    cfg = config_from_dict(ck["config"])
    spec = MODELS[cfg.model.name]
    model = spec.build(cfg.model.scale, **cfg.model.params)
    state = ck.get("ema") or ck.get("model")
    model.load_state_dict(state)
    validation = ck.get("val") or {}
    if not validation and last.exists():
        hist = [h for h in load_checkpoint(last).get("history", []) if "val" in h]
        validation = hist[-1]["val"] if hist else {}
    if any(isinstance(v, dict) for v in validation.values()):  # runs before validation_psnr stored a mean here
        validation = {**validation, "psnr": validation_psnr(validation)}
    info = WeightInfo(
        name=name or cfg.run.name or cfg.model.name,
        arch=model.arch,
        hparams=model.hparams,
        scale=cfg.model.scale,
        frames=int(getattr(model, "frames", 1)),
        training={"data": cfg.data.train, "steps": ck.get("step"), "config": cfg.to_dict()},
        validation={"step": ck.get("step"), **validation},
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_weights(out, model.eval(), info)
