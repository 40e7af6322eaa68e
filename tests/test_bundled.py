"""The weights vsr ships: loadable by name, described by their metadata, and as good as it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vsr.models import MODELS
from vsr.weights import bundled, default_model, load_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(bundled())


def test_the_defaults_are_trained_models_when_weights_ship():
    for job in ("image", "video"):
        for scale in (2, 4):
            name = default_model(job, scale)
            if any(s == scale for _, s in SHIPPED):
                assert name != "bicubic", f"{job} ×{scale} falls back to bicubic although weights ship"
    for name, scale in SHIPPED:
        if MODELS.get(name) and MODELS[name].frames == 3:
            assert default_model("video", scale) != default_model("image", scale)


@pytest.mark.parametrize("name,scale", SHIPPED, ids=[f"{n}-x{s}" for n, s in SHIPPED])
def test_shipped_weights_load_and_say_what_they_are(name, scale):
    path = bundled()[(name, scale)]
    assert path.stat().st_size < 8 << 20, "bundled weights must stay small"
    model, info = load_model(name, scale)
    assert info.scale == scale and info.path == path
    assert info.validation.get("psnr", 0) > 20, "validation numbers belong in the metadata"
    assert info.training.get("config") and info.training.get("data"), "the config that made it belongs in the metadata"
    for folder in info.training["data"]:
        assert "cockatoo" not in folder, "the validation clip must stay out of training"
    h, w = 24, 32
    x = torch.rand(1, 3 * info.frames, h, w)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (1, 3, h * scale, w * scale) and torch.isfinite(y).all()


@pytest.mark.parametrize("name,scale", SHIPPED, ids=[f"{n}-x{s}" for n, s in SHIPPED])
def test_shipped_validation_numbers_are_reproduced(shared, name, scale):
    """Re-score each bundled weight on the validation sets its metadata names (the first is the one shipped as
    its score; others are reported beside it); it must beat bicubic on each."""
    from vsr.evaluate import evaluate, load_source

    model, info = load_model(name, scale)
    val = info.training["config"]["val"]
    folders = [ROOT / f for f in val["folders"]]
    ours, bic = [], []
    bicubic, _ = load_model("bicubic", scale)
    multiple = int(getattr(model, "size_multiple", 1))
    for folder in folders:
        src = load_source(folder, scale, max_frames=val["max_frames"] if folder.is_file() else 0,
                          crop=val.get("crop", 0))
        ours.append(np.mean([s.psnr for s in evaluate(model, src, scale=scale, frames=info.frames, multiple=multiple,
                                                      with_ssim=False)]))
        bic.append(np.mean([s.psnr for s in evaluate(bicubic, src, scale=scale, with_ssim=False)]))
        if isinstance(info.validation.get(src.name), dict):
            assert ours[-1] == pytest.approx(info.validation[src.name]["psnr"], abs=0.05), src.name
    assert ours[0] == pytest.approx(info.validation["psnr"], abs=0.05)
    assert all(o > b + 0.3 for o, b in zip(ours, bic))
