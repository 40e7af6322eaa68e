"""Export a run's EMA weights (best validation, else latest; or latest on request) as a vsr weight file."""

from __future__ import annotations

from pathlib import Path

from train.checkpoint import TrainError, load_checkpoint
from train.config import config_from_dict
from train.validate import validation_psnr
from vsr.models import build
from vsr.weightfile import WeightInfo, save_weights


def export(run_dir: str | Path, out: str | Path, name: str | None = None, *, last: bool = False) -> Path:
    run_dir = Path(run_dir)
    best, latest = run_dir / "best.pt", run_dir / "checkpoint.pt"
    if not best.exists() and not latest.exists():
        raise TrainError(f"{run_dir}: no checkpoint to export (is it a run folder?)")
    if last and not latest.exists():
        raise TrainError(f"{run_dir}: no latest checkpoint (checkpoint.pt)")
    path = latest if last or not best.exists() else best
    ck = load_checkpoint(path)
    cfg = config_from_dict(ck["config"])
    model = build(cfg.model.arch, scale=cfg.model.scale, **cfg.model.params)
    model.load_state_dict(ck.get("ema") or ck.get("model"))
    validation = {} if last else ck.get("val") or {}
    if not validation and latest.exists():  # the latest validation, if it scored these weights
        hist = [h for h in (ck if path == latest else load_checkpoint(latest)).get("history", []) if "val" in h]
        validation = hist[-1]["val"] if hist and (not last or hist[-1].get("step") == ck.get("step")) else {}
    if validation and "psnr" not in validation:
        validation = {**validation, "psnr": validation_psnr(validation)}
    info = WeightInfo(
        name=name or cfg.model.name or cfg.run.name or cfg.model.arch,
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
