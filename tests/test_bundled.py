"""The weights vsr ships: loadable by name, described by their metadata, and as good as it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vsr.models import run_window
from vsr.weightfile import read_info
from vsr.zoo import ZOO, default_model, load_model, weight_files

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(weight_files())


def _rescoring(name: str, scale: int):
    """Weights validated on the video validation set (6 clips) take 12–30 s each to re-score on 2 cores:
    slow tests (`-m slow`), so the default suite stays within its budget; the others run by default."""
    folders = read_info(weight_files()[(name, scale)]).validated_on()["folders"]
    slow = any("val_video" in f for f in folders)
    return pytest.param(name, scale, id=f"{name}-x{scale}", marks=[pytest.mark.slow] if slow else [])


def test_the_defaults_are_the_jobs_own_models():
    for job in ("image", "video"):
        for scale in {s for _, s in SHIPPED}:
            name = default_model(job, scale)
            if any(e.job == job and (e.name, scale) in weight_files() for e in ZOO):
                assert next(e for e in ZOO if e.name == name).job == job


@pytest.mark.parametrize("name,scale", SHIPPED, ids=[f"{n}-x{s}" for n, s in SHIPPED])
def test_shipped_weights_load_and_say_what_they_are(name, scale):
    path = weight_files()[(name, scale)]
    assert path.stat().st_size < 8 << 20, "bundled weights must stay small"
    model, info = load_model(name, scale)
    assert info.scale == scale and info.path == path
    assert info.validation.get("psnr", 0) > 20, "validation numbers belong in the metadata"
    assert info.training.get("config") and info.training.get("data"), "the config that made it belongs in the metadata"
    val = info.training["config"]["val"]["folders"] + info.validated_on()["folders"]
    for folder in info.training["data"]:
        assert not any(Path(v).name in folder for v in val if "video" in v), "validation clips stay out of training"
    h, w = 24, 32
    with torch.inference_mode():
        y = run_window(model, torch.rand(1, 3 * info.frames, h, w))
    assert y.shape == (1, 3, h * scale, w * scale) and torch.isfinite(y).all()


@pytest.mark.parametrize("name,scale", [_rescoring(n, s) for n, s in SHIPPED])
def test_shipped_validation_numbers_are_reproduced(shared, name, scale):
    """Re-score each bundled weight on the validation sets its metadata names (the first is the one shipped as
    its score; others are reported beside it; a file scored again after training names that set); a fidelity
    model must beat bicubic on each by 0.3 dB. A GAN trades PSNR for texture (what it draws is not where the truth
    has it): it must keep the structure (SSIM-Y above bicubic's) within 0.5 dB of bicubic's PSNR."""
    from engines.torch_backend import TorchRunner
    from vsr.evaluate import evaluate, is_video, load_source

    model, info = load_model(name, scale)
    val = info.validated_on()
    gan = bool(info.training["config"]["loss"].get("adversarial_weight"))
    ours, bic = [], []
    runner, bicubic = TorchRunner(model), TorchRunner(load_model("bicubic", scale)[0])
    for folder in (ROOT / f for f in val["folders"]):
        video = is_video(folder)
        src = load_source(folder, scale, max_frames=val["max_frames"] if video else 0, crop=val.get("crop", 0),
                          crf=val.get("crf", 0) if video else 0)
        ours.append(np.array([(s.psnr, s.ssim) for s in evaluate(runner, src, with_ssim=gan)]).mean(0))
        bic.append(np.array([(s.psnr, s.ssim) for s in evaluate(bicubic, src, with_ssim=gan)]).mean(0))
        if isinstance(info.validation.get(src.name), dict):
            assert ours[-1][0] == pytest.approx(info.validation[src.name]["psnr"], abs=0.05), src.name
    assert ours[0][0] == pytest.approx(info.validation["psnr"], abs=0.05)
    if gan:
        assert all(o[1] > b[1] and o[0] > b[0] - 0.5 for o, b in zip(ours, bic))
    else:
        assert all(o[0] > b[0] + 0.3 for o, b in zip(ours, bic))
