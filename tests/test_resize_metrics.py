import numpy as np
import pytest
import torch
from PIL import Image

from vsr.metrics import modcrop, psnr, rgb_to_y, ssim, tof_pair, warp_error_pair
from vsr.resize import BicubicUpsample, imresize

SET5 = ["baby", "bird", "butterfly", "head", "woman"]


def _rgb(path):
    return np.array(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imresize_reproduces_reference_lr_exactly(shared, scale):
    for name in SET5:
        hr = modcrop(_rgb(shared / "val" / "Set5" / f"{name}.png"), scale)
        ref = _rgb(shared / "val" / "Set5_LR_bicubic" / f"X{scale}" / f"{name}.png")
        assert np.array_equal(imresize(hr, 1 / scale), ref), name


def test_bicubic_set5_x4_matches_published_psnr(shared):
    scores = []
    for name in SET5:
        hr = modcrop(_rgb(shared / "val" / "Set5" / f"{name}.png"), 4)
        lr = _rgb(shared / "val" / "Set5_LR_bicubic" / "X4" / f"{name}.png")
        scores.append(psnr(imresize(lr, 4.0), hr, shave=4))
    assert np.mean(scores) == pytest.approx(28.42, abs=0.03)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_conv_upsampler_equals_imresize(natural_rgb, scale):
    x = torch.from_numpy(natural_rgb).permute(2, 0, 1)[None].double()
    conv = BicubicUpsample(scale=scale).double()(x)[0].permute(1, 2, 0).numpy()
    ref = imresize(natural_rgb.astype(np.float64), float(scale))
    assert np.abs(conv - ref).max() < 1e-4  # float32 taps


def test_imresize_shapes_and_dtypes():
    img16 = (np.random.default_rng(0).random((30, 41, 3)) * 65535).astype(np.uint16)
    out = imresize(img16, 0.5)
    assert out.dtype == np.uint16 and out.shape == (15, 21, 3)
    gray = np.full((20, 20), 100, np.uint8)
    assert np.array_equal(imresize(gray, 2.0), np.full((40, 40), 100, np.uint8))  # flat stays flat
    assert imresize(np.zeros((10, 12)), size=(7, 5)).shape == (7, 5)


def test_psnr_and_ssim_behave():
    rng = np.random.default_rng(0)
    a = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert psnr(noisy, a) > psnr(noisier, a)
    assert 0 < ssim(noisier, a) < ssim(noisy, a) < 1
    # PSNR from its definition on Y
    y1, y2 = rgb_to_y(noisy), rgb_to_y(a)
    assert psnr(noisy, a) == pytest.approx(10 * np.log10(255**2 / np.mean((y1 - y2) ** 2)))
    assert psnr(noisy, a, shave=4) != psnr(noisy, a)


def test_rgb_to_y_matches_matlab():
    # rgb2ycbcr([255 255 255]) → Y = 235; black → 16
    assert rgb_to_y(np.array([[[255, 255, 255]]]))[0, 0] == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(np.array([[[0, 0, 0]]]))[0, 0] == pytest.approx(16.0)


def _panning(rgb: np.ndarray, steps: int = 2) -> list[np.ndarray]:
    """The photo seen by a camera panning 2 px a frame (a crop moving over it)."""
    return [rgb[8:88, 8 + 2 * k : 104 + 2 * k] for k in range(steps)]


def test_warp_error_separates_flicker_from_smoothing(natural_rgb):
    import cv2

    hr = _panning(natural_rgb)
    assert abs(warp_error_pair(*hr, *hr)) < 1e-9  # the truth against itself
    rng = np.random.default_rng(0)
    flicker = [np.clip(f.astype(np.int16) + rng.integers(-12, 13, f.shape), 0, 255).astype(np.uint8) for f in hr]
    assert warp_error_pair(*flicker, *hr) > 1.0  # noise that changes every frame
    smooth = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in hr]
    assert warp_error_pair(*smooth, *hr) < 0.0  # steadier than the truth, not flicker
    # tOF, by contrast, rises for the smoothed pair: the flow estimator has less to follow
    assert tof_pair(*smooth, *hr) > tof_pair(*hr, *hr)
