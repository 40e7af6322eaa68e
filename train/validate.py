"""Validation during training: each ``val.folders`` source scored as ``vsr eval`` scores it (the same windows,
flows and state, through the torch runner); the first source's PSNR picks the best checkpoint and ships with the
weights, the others are reported beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from train.config import TrainConfig


class Validator:
    def __init__(self, cfg: TrainConfig):
        from vsr.evaluate import is_video, load_source

        self.sources = []
        for p in cfg.val.folders:
            video = is_video(Path(p))
            self.sources.append(load_source(p, cfg.model.scale, max_frames=cfg.val.max_frames if video else 0,
                                            crop=cfg.val.crop, crf=cfg.val.crf if video else 0))

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


def validation_psnr(val: dict) -> float:
    """The score that picks the best checkpoint and ships with the weights: the first validation set's."""
    return float(next(v["psnr"] for v in val.values() if isinstance(v, dict)))
