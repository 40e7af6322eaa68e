"""Losses and discriminators.

* pixel: L1, Charbonnier, MSE;
* adversarial: relativistic average GAN (ESRGAN) with an image discriminator
  for single-frame models and a spatio-temporal one (three consecutive output
  frames stacked) for the multi-frame model; discriminator feature matching;
* temporal consistency: frame differences of the output follow the ground truth's;
* grid: no periodic pattern at the upsampler's period that the ground truth lacks (a GAN's cheap detail);
* flow: a learned aligner (mfsr) should make the warped neighbour look like the
  centre (photometric Charbonnier) and be smooth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models.window import flow_warp


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


def grid_loss(out: torch.Tensor, target: torch.Tensor, scale: int, cell: int = 8) -> torch.Tensor:
    """A periodic pattern at the upsampler's period, the cheapest "detail" a GAN learns (peaks in the spectrum at
    periods 2…scale that neither the pixel loss nor the discriminator stops), should be the truth's: per window
    of ``cell``² LR pixels, the mean of each of the scale² output phases against the phases' mean."""
    def grid(x: torch.Tensor) -> torch.Tensor:
        u = F.avg_pool2d(F.pixel_unshuffle(x, scale), cell)  # N × C·s² × h/cell × w/cell
        u = u.unflatten(1, (x.shape[1], scale * scale))
        return u - u.mean(2, keepdim=True)

    return F.l1_loss(grid(out), grid(target))


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


def generator_terms(cfg, outs: list[torch.Tensor], targets: list[torch.Tensor], *, scale: int, lr_clip=None,
                    flows=None, disc=None) -> dict[str, torch.Tensor]:
    """The generator's weighted loss terms for a clip's outputs (``cfg`` is the config's ``loss`` section).

    ``flows`` are a learned aligner's flows per output (for ``flow_weight``; ``lr_clip`` the LR windows they
    align); the discriminator sees the last three outputs stacked (video) or the last one (images)."""
    terms = {"pixel": cfg.pixel_weight * sum(pixel_loss(cfg.pixel, o, t) for o, t in zip(outs, targets)) / len(outs)}
    if flows and cfg.flow_weight:
        terms["flow"] = cfg.flow_weight * sum(flow_loss(w, f) for w, f in zip(lr_clip, flows)) / len(flows)
    if cfg.grid_weight:
        terms["grid"] = cfg.grid_weight * sum(grid_loss(o, t, scale) for o, t in zip(outs, targets)) / len(outs)
    if cfg.temporal_weight and len(outs) > 1:
        terms["temporal"] = cfg.temporal_weight * temporal_loss(outs, targets)
    if disc is not None:
        fake, real = disc_input(outs), disc_input(targets)
        d_real, real_feats = disc(real)
        d_fake, fake_feats = disc(fake)
        terms["adversarial"] = cfg.adversarial_weight * ragan_losses(d_real.detach(), d_fake)[0]
        if cfg.feature_match_weight:
            terms["feature_match"] = cfg.feature_match_weight * feature_matching(real_feats, fake_feats)
    return terms


def disc_input(frames: list[torch.Tensor]) -> torch.Tensor:
    """What the discriminator judges: three consecutive frames stacked on channels (one for image models)."""
    return torch.cat(frames[-3:], 1) if len(frames) >= 3 else frames[-1]


def discriminator_loss(disc, outs: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    d_real, _ = disc(disc_input(targets))
    d_fake, _ = disc(disc_input([o.detach() for o in outs]))
    return ragan_losses(d_real, d_fake)[1]
