"""vsr's multi-frame generator: align t-1 and t+1 to t, fuse, restore, upsample.

Layout (all at low resolution until the last layer):

* per frame (computed once per frame when streaming, see ``encode``):
  features (3×3 conv) and a flow encoding (space-to-depth ×4, conv);
* per window (``decode``): a small flow estimator on (centre, neighbour)
  encodings predicts the displacement at 1/4 resolution, upsampled
  bilinearly; the neighbour's features are warped to the centre with
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
        self.size_multiple = 4 if frames > 1 else 1
        act = nn.LeakyReLU(0.1, inplace=True)
        self.feat = nn.Sequential(nn.Conv2d(3, features, 3, padding=1), act)
        if frames > 1:
            self.flow_enc = nn.Sequential(
                nn.PixelUnshuffle(4), nn.Conv2d(48, flow_features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)
            )
            head: list[nn.Module] = [nn.Conv2d(2 * flow_features, flow_features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
            for _ in range(flow_layers - 1):
                head += [nn.Conv2d(flow_features, flow_features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
            last = nn.Conv2d(flow_features, 2, 3, padding=1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.flow_head = nn.Sequential(*head, last)
            self.fuse = nn.Sequential(nn.Conv2d(features * frames, features, 1), nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*[ResBlock(features) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(features, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.skip = BicubicUpsample(scale=scale)

    # -- streaming API: per-frame work once, per-window work for each output --
    def encode(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-frame features: (features, flow encoding or None)."""
        return self.feat(frame), (self.flow_enc(frame) if self.frames > 1 else None)

    def flow(self, centre_enc: torch.Tensor, neighbour_enc: torch.Tensor) -> torch.Tensor:
        """Displacement (LR pixels) that maps the centre onto the neighbour."""
        coarse = self.flow_head(torch.cat([centre_enc, neighbour_enc], 1))
        return F.interpolate(coarse, scale_factor=4.0, mode="bilinear", align_corners=False)

    def decode(self, centre: torch.Tensor, encoded: list[tuple[torch.Tensor, torch.Tensor | None]]):
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
