"""PSNR and SSIM with the standard super-resolution protocol.

* HR is modcropped to a multiple of the scale (:func:`modcrop`);
* the comparison is on Y of MATLAB's ``rgb2ycbcr`` (BT.601, [16, 235]);
* ``scale`` pixels are shaved at each border;
* SSIM is Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, K1 = 0.01,
  K2 = 0.03, L = 255, 'valid' filtering, as in the reference MATLAB code.

Inputs are H×W×3 (or H×W) arrays, uint8 or float in [0, 255].
"""

from __future__ import annotations

import numpy as np


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB's rgb2ycbcr for [0, 255] RGB, as float64 in [16, 235]."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        return img
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def _prepare(img: np.ndarray, ref: np.ndarray, shave: int, y_only: bool) -> tuple[np.ndarray, np.ndarray]:
    if img.shape != ref.shape:
        raise ValueError(f"image shapes differ: {img.shape} vs {ref.shape}")
    if y_only:
        a, b = rgb_to_y(img), rgb_to_y(ref)
    else:
        a, b = np.asarray(img, np.float64), np.asarray(ref, np.float64)
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return a, b


def psnr(img: np.ndarray, ref: np.ndarray, shave: int = 0, y_only: bool = True) -> float:
    a, b = _prepare(img, ref, shave, y_only)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def _filter_valid(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    import cv2

    k = win.shape[0]
    out = cv2.filter2D(img, cv2.CV_64F, win, borderType=cv2.BORDER_REFLECT)
    r = k // 2
    return out[r : img.shape[0] - r, r : img.shape[1] - r]


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, win), _filter_valid(b, win)
    saa = _filter_valid(a * a, win) - mu_a**2
    sbb = _filter_valid(b * b, win) - mu_b**2
    sab = _filter_valid(a * b, win) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return float(np.mean(num / den))


def ssim(img: np.ndarray, ref: np.ndarray, shave: int = 0, y_only: bool = True) -> float:
    a, b = _prepare(img, ref, shave, y_only)
    if a.ndim == 2:
        return _ssim_channel(a, b)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def _farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import cv2

    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY) if b.ndim == 3 else b
    return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def tof_pair(sr_prev: np.ndarray, sr: np.ndarray, hr_prev: np.ndarray, hr: np.ndarray) -> float:
    """tOF for one step, after TecoGAN: mean |OF(sr_{t-1}, sr_t) − OF(hr_{t-1}, hr_t)| (Farneback flow, pixels).

    Lower is better: the output moves as the ground truth moves (no flicker, no swimming texture). The mean runs
    over both flow components of the whole frame; TecoGAN's script takes each pixel's vector length and crops the
    border, which scales the numbers (about 1.65×) and leaves the ratio between two outputs as it is.
    """
    return float(np.mean(np.abs(_farneback(sr_prev, sr) - _farneback(hr_prev, hr))))


def warp_error_pair(sr_prev: np.ndarray, sr: np.ndarray, hr_prev: np.ndarray, hr: np.ndarray) -> float:
    """Warping error for one step (after Lai et al. 2018), on Y, relative to the ground truth's own.

    mean |sr_t − sr_{t−1} moved by the ground truth's motion| minus the same for the ground truth (what flow error
    and occlusion leave). > 0: the output changes more than the true motion explains (flicker); < 0: steadier
    than the truth (a smoother picture). The motion comes from the ground truth, so unlike tOF the number does not
    depend on how much structure the output has for a flow estimator to follow.
    """
    from vsr.flow import warp_back

    flow = _farneback(hr, hr_prev)  # for each pixel of frame t, where it was in frame t-1

    def residual(prev: np.ndarray, cur: np.ndarray) -> float:
        return float(np.mean(np.abs(rgb_to_y(cur) - warp_back(rgb_to_y(prev), flow))))

    return residual(sr_prev, sr) - residual(hr_prev, hr)
