"""Validation during training: each ``val.folders`` source scored as ``vsr eval`` scores it (the same windows,
flows and state, through the torch runner); the first source's PSNR picks the best checkpoint and ships with the
weights, the others are reported beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from train.config import TrainConfig


class Validator:
    def __init__(self, sources: list):
        self.sources = sources

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> Validator:
        return cls([_source(p, cfg.model.scale, max_frames=cfg.val.max_frames, crop=cfg.val.crop, crf=cfg.val.crf)
                    for p in cfg.val.folders])

    def run(self, model: torch.nn.Module) -> dict:
        from engines.torch_backend import TorchRunner
        from vsr.evaluate import evaluate, mean

        runner = TorchRunner(model, precision="fp32")
        out: dict = {}
        for src in self.sources:
            p, s = mean(evaluate(runner, src))
            out[src.name] = {"psnr": p, "ssim": s}
        out["psnr"] = validation_psnr(out)
        return out


def _source(path: str | Path, scale: int, *, max_frames: int, crop: int = 0, crf: int = 0):
    from vsr.evaluate import is_video, load_source

    path = Path(path).expanduser()
    video = is_video(path)
    return load_source(path, scale, max_frames=max_frames if video else 0, crop=crop, crf=crf if video else 0)


def revalidate(path: str | Path, folder: str | Path, *, crf: int = 0, max_frames: int = 20,
               write: bool = False) -> dict:
    """Score a weight file on ``folder`` as training validates (so older weights, validated on a set since retired,
    can be compared with newer ones). With ``write`` the scores replace the file's validation in place (tensors
    untouched); what the training run measured is kept under ``at_training``."""
    from vsr.weightfile import load_weights, save_weights

    model, info = load_weights(path)
    scores = Validator([_source(folder, info.scale, max_frames=max_frames, crf=crf)]).run(model)
    if write:
        old = {k: v for k, v in info.validation.items() if k != "at_training"}
        kept = {k: old[k] for k in ("step", "warmup_frames") if k in old}
        on = {"folders": [str(folder)], "max_frames": max_frames, "crf": crf}
        info.validation = {**kept, **scores, "on": on, "at_training": old}
        save_weights(path, model, info)
    return scores


def validation_psnr(val: dict) -> float:
    """The score that picks the best checkpoint and ships with the weights: the first validation set's."""
    return float(next(v["psnr"] for v in val.values() if isinstance(v, dict)))
