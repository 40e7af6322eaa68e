"""vsr's multi-frame generator: align t-1 and t+1 to t, fuse, restore, upsample.

Layout (all at low resolution until the last layer):

* per frame (computed once per frame when streaming, see ``encode``):
  features (3×3 conv) and a flow encoding (space-to-depth ×4, conv);
* per window (``decode``): a small coarse-to-fine flow estimator on
  (centre, neighbour) encodings predicts the displacement at 1/8 resolution
  (large motion), refines it at 1/4 after warping, and upsamples it bilinearly; the neighbour's features are warped to the centre with
  ``grid_sample`` (exports to ONNX GridSample, OpenVINO and TensorRT; no
  deformable convolution); features are fused by a 1×1 conv, refined by
  residual blocks and upsampled by depth-to-space onto a bicubic skip of the
  centre frame.

With ``frames=1`` it is the same network without alignment and fusion: the
single-frame twin used for the ablation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models.common import ResBlock
from vsr.resize import BicubicUpsample


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at (pixel + flow); ``flow`` is N×2×H×W in pixels (dx, dy)."""
    n, _, h, w = x.shape
    gy = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1).expand(n, h, w)
    gx = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w).expand(n, h, w)
    # normalised coordinates for align_corners=False: (i + 0.5) / size * 2 - 1
    sx = (gx + flow[:, 0] + 0.5) * (2.0 / w) - 1.0
    sy = (gy + flow[:, 1] + 0.5) * (2.0 / h) - 1.0
    grid = torch.stack([sx, sy], dim=3)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _conv_act(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.1, inplace=True)]


def _head(cin: int, features: int, layers: int) -> nn.Sequential:
    """conv stack ending in a zero-initialised 2-channel flow (so training starts from 'no motion')."""
    mods = _conv_act(cin, features)
    for _ in range(layers - 1):
        mods += _conv_act(features, features)
    last = nn.Conv2d(features, 2, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


class MultiFrameSR(nn.Module):
    def __init__(
        self,
        *,
        scale: int,
        frames: int = 3,
        features: int = 32,
        blocks: int = 2,
        flow_features: int = 24,
        flow_layers: int = 2,
    ):
        super().__init__()
        if frames not in (1, 3):
            raise ValueError("frames must be 1 or 3")
        self.scale, self.frames = scale, frames
        self.size_multiple = 8 if frames > 1 else 1
        self.feat = nn.Sequential(*_conv_act(3, features))
        if frames > 1:
            ff = flow_features
            # per frame: encodings at 1/4 (space-to-depth) and 1/8 resolution
            self.flow_enc = nn.Sequential(nn.PixelUnshuffle(4), *_conv_act(48, ff))
            self.flow_enc8 = nn.Sequential(*_conv_act(ff, ff, stride=2))
            # per pair: coarse flow at 1/8, refined at 1/4 after warping with it
            self.flow_coarse = _head(2 * ff, ff, flow_layers)
            self.flow_fine = _head(2 * ff + 2, ff, flow_layers)
            self.fuse = nn.Sequential(nn.Conv2d(features * frames, features, 1), nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*[ResBlock(features) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(features, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.skip = BicubicUpsample(scale=scale)

    # -- streaming API: per-frame work once, per-window work for each output --
    def encode(self, frame: torch.Tensor):
        """Per-frame work: (features, (1/4-res flow encoding, 1/8-res flow encoding)) or (features, None)."""
        if self.frames == 1:
            return self.feat(frame), None
        e4 = self.flow_enc(frame)
        return self.feat(frame), (e4, self.flow_enc8(e4))

    def flow(self, centre_enc, neighbour_enc) -> torch.Tensor:
        """Displacement (in LR pixels, N×2×H×W) from the centre frame to a neighbour."""
        (c4, c8), (n4, n8) = centre_enc, neighbour_enc
        coarse = self.flow_coarse(torch.cat([c8, n8], 1))  # LR pixels, at 1/8 resolution
        coarse = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)
        warped = flow_warp(n4, coarse * 0.25)  # 1/4-res pixels are 4 LR pixels
        fine = coarse + self.flow_fine(torch.cat([c4, warped, coarse * 0.25], 1))
        return F.interpolate(fine, scale_factor=4.0, mode="bilinear", align_corners=False)

    def decode(self, centre: torch.Tensor, encoded: list):
        """Output for the centre frame from the encodings of the window; returns (image, flows)."""
        mid = len(encoded) // 2
        feats, flows = [], []
        for i, (f, e) in enumerate(encoded):
            if i != mid:
                flow = self.flow(encoded[mid][1], e)
                flows.append(flow)
                f = flow_warp(f, flow)
            feats.append(f)
        h = self.fuse(torch.cat(feats, 1)) if self.frames > 1 else feats[0]
        h = self.body(h)
        return self.up(h) + self.skip(centre), flows

    def forward_with_flows(self, x: torch.Tensor):
        frames = [x[:, 3 * i : 3 * i + 3] for i in range(self.frames)]
        encoded = [self.encode(f) for f in frames]
        return self.decode(frames[self.frames // 2], encoded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_flows(x)[0]
