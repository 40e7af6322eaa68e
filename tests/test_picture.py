"""What the shipped models draw, beyond their scores: defects a validation number does not show."""

from __future__ import annotations

import numpy as np
import pytest

from engines.torch_backend import TorchRunner
from vsr.evaluate import upscale_clip
from vsr.resize import imresize
from vsr.video.recompress import recompress
from vsr.zoo import entry, load_model, weight_files


def _street_sign(scale: int = 4):
    """The street sign filmed as a phone would: downscaled, then H.264 at CRF 30. (HR frames, LR frames.)"""
    from vsr._testclips import street_sign

    hr = street_sign()
    return hr, recompress([imresize(f, 1 / scale) for f in hr], crf=30)


def _worst_block(out: np.ndarray, truth: np.ndarray, block: int = 16) -> float:
    """The largest mean error of any 16×16 block: what a model draws where the truth has nothing like it."""
    d = np.abs(out.astype(np.float32) - truth.astype(np.float32)).mean(axis=2)
    h, w = d.shape[0] // block * block, d.shape[1] // block * block
    return float(d[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3)).max())


REAL = sorted(name for name, s in weight_files() if s == 4 and entry(name) is not None
              and load_model(name, 4)[1].training.get("config", {}).get("data", {}).get("degradation") == "realistic")


@pytest.mark.parametrize("name", REAL)
def test_no_real_footage_model_draws_streaks_over_text(name):
    """On compressed text moving past (×4), no block of a model's output is much further from the truth than
    bicubic's worst: a GAN once drew bright horizontal streaks and blobs over lettering (worst block 126 levels off
    where bicubic's is 50) that its validation score did not show."""
    hr, lr = _street_sign()
    out = list(upscale_clip(TorchRunner(load_model(name, 4)[0]), lr))
    t = len(hr) - 2
    assert _worst_block(out[t], hr[t]) <= 1.3 * _worst_block(imresize(lr[t], 4.0), hr[t])
