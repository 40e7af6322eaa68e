"""Losses and discriminators.

* pixel: L1, Charbonnier, MSE;
* perceptual: VGG19 features (SRGAN/ESRGAN), only from a local weights file;
* adversarial: relativistic average GAN (ESRGAN) with an image discriminator
  for single-frame models and a spatio-temporal one (three consecutive output
  frames stacked) for the multi-frame model; discriminator feature matching;
* temporal consistency: frame differences of the output follow the ground truth's;
* flow: the multi-frame model's alignment should make the warped neighbour look
  like the centre (photometric Charbonnier) and be smooth.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vsr.errors import VsrError
from vsr.models.mfsr import flow_warp


def pixel_loss(kind: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return F.l1_loss(out, target)
    if kind == "mse":
        return F.mse_loss(out, target)
    return torch.sqrt((out - target) ** 2 + 1e-6).mean()  # charbonnier


def temporal_loss(outs: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Consecutive outputs should change as the ground truth changes (no flicker)."""
    terms = [
        F.l1_loss(outs[i] - outs[i - 1], targets[i] - targets[i - 1]) for i in range(1, len(outs))
    ]
    return torch.stack(terms).mean()


def flow_loss(lr_window: torch.Tensor, flows: list[torch.Tensor]) -> torch.Tensor:
    """Photometric + smoothness loss on the alignment; lr_window is N×T×3×h×w, flows for non-centre frames."""
    t = lr_window.shape[1]
    mid = t // 2
    centre = lr_window[:, mid]
    neighbours = [lr_window[:, i] for i in range(t) if i != mid]
    photo = torch.stack(
        [torch.sqrt((flow_warp(n, f) - centre) ** 2 + 1e-6).mean() for n, f in zip(neighbours, flows)]
    ).mean()
    smooth = torch.stack(
        [(f[..., 1:, :] - f[..., :-1, :]).abs().mean() + (f[..., 1:] - f[..., :-1]).abs().mean() for f in flows]
    ).mean()
    return photo + 0.01 * smooth


def exact_flow_loss(flows: list[torch.Tensor], ref: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 (LR pixels) between the alignment's flows and the known motion, over the windows where it is known
    (``ref`` is NaN where it is not: real video); zero when no window in the batch has it."""
    total = count = 0
    for f, r in zip(flows, ref):
        known = ~torch.isnan(r[:, :1, :1, :1])  # a window's motion is known everywhere or nowhere
        total = total + ((f.float() - torch.nan_to_num(r)).abs() * known).sum()
        count = count + known.sum() * f[0].numel()
    return total / max(int(count), 1)


def teacher_flows(hr_window: torch.Tensor, scale: int) -> list[torch.Tensor]:
    """Reference flows for the alignment: OpenCV's DIS optical flow from the centre HR frame to each
    neighbour, area-averaged down to LR pixels. hr_window is N×T×3×H×W in [0, 1]; returns, for each
    non-centre frame, N×2×(H/scale)×(W/scale) in LR pixels (dx, dy), the convention of ``flow_warp``.

    Computed on the HR frames (``scale``× the resolution the model sees), so it is a far finer signal
    than what the model can find in its LR input; training-time only, nothing of it ships.
    """
    import cv2
    import numpy as np

    from vsr.flow import dis_flow, gray8

    n, t, _, h, w = hr_window.shape
    mid = t // 2
    gray = [gray8(hr_window[:, j]) for j in range(t)]
    out = []
    for j in range(t):
        if j == mid:
            continue
        flows = [dis_flow(gray[mid][b], gray[j][b]) for b in range(n)]
        if scale != 1:
            flows = [cv2.resize(f, (w // scale, h // scale), interpolation=cv2.INTER_AREA) for f in flows]
        out.append(torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2) / scale)
    return out


# VGG19 "features" layout, as torchvision names it (features.<index>.weight).
_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


class VGGFeatures(nn.Module):
    """VGG19 up to conv5_4 (before activation), as ESRGAN's perceptual loss uses it."""

    def __init__(self, weights: str | Path):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        path = Path(weights)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
            raise VsrError(f"cannot load VGG19 weights {path}: {e}") from None
        state = {k: v for k, v in state.items() if k.startswith("features.")}
        missing = self.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise VsrError(f"{path}: not a VGG19 state dict (missing {missing[0]})")
        self.features = self.features[:35]  # conv5_4, before its ReLU
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.features((x - self.mean) / self.std)
        fy = self.features((y - self.mean) / self.std)
        return F.l1_loss(fx, fy)


class Discriminator(nn.Module):
    """A VGG-style patch discriminator; ``in_channels`` = 3 (image) or 9 (three consecutive frames)."""

    def __init__(self, in_channels: int = 3, features: int = 32, depth: int = 4):
        super().__init__()
        blocks: list[nn.Sequential] = []
        c = in_channels
        for i in range(depth):
            out = features * 2**i
            blocks.append(
                nn.Sequential(
                    nn.utils.parametrizations.spectral_norm(nn.Conv2d(c, out, 3, padding=1)),
                    nn.LeakyReLU(0.2, inplace=True),
                    nn.utils.parametrizations.spectral_norm(nn.Conv2d(out, out, 4, stride=2, padding=1)),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            c = out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return self.head(x), feats


def ragan_losses(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relativistic average GAN: (generator loss, discriminator loss)."""
    bce = F.binary_cross_entropy_with_logits
    real_rel = d_real - d_fake.mean()
    fake_rel = d_fake - d_real.mean()
    ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_real)
    g = (bce(real_rel, zeros) + bce(fake_rel, ones)) / 2
    d = (bce(real_rel, ones) + bce(fake_rel, zeros)) / 2
    return g, d


def feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.l1_loss(f, r.detach()) for r, f in zip(real_feats, fake_feats)]).mean()
