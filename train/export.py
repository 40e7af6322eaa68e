"""Export a run's EMA weights (best validation, else latest; or latest on request) as a vsr weight file."""

from __future__ import annotations

from pathlib import Path

from train.checkpoint import TrainError, load_checkpoint
from train.config import config_from_dict
from train.validate import validation_psnr
from vsr.models import build
from vsr.weightfile import WeightInfo, save_weights


def weights_name(cfg, out: Path, name: str | None = None) -> str:
    """The name exported weights carry (and ``vsr`` announces): ``name`` as given; otherwise the first of the config's
    ``model.name``, the run's name and the output file's stem that is not the name of a model vsr ships, so weights a
    user trained are never taken for the shipped ones."""
    if name:
        return name
    from vsr.zoo import ALIASES, ZOO

    shipped = {e.name for e in ZOO} | {e.files for e in ZOO} | set(ALIASES)  # (and the names they had)
    for candidate in (cfg.model.name, cfg.run.name, out.stem):
        if candidate and candidate not in shipped:
            return candidate
    raise TrainError(f"{out.stem!r} is the name of a model vsr ships: give the weights another file name, or "
                     f"--name {out.stem} to name them so anyway")


def export(run_dir: str | Path, out: str | Path, name: str | None = None, *, last: bool = False) -> Path:
    run_dir, out = Path(run_dir), Path(out)
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
        name=weights_name(cfg, out, name),
        arch=model.arch,
        hparams=model.hparams,
        scale=cfg.model.scale,
        frames=int(getattr(model, "frames", 1)),
        training={"data": cfg.data.train, "steps": ck.get("step"), "config": cfg.to_dict()},
        validation={"step": ck.get("step"), **validation},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_weights(out, model.eval(), info)
