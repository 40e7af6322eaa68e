"""mf-fast's architecture: a multi-frame model with its own small learned aligner.

Built to a CPU budget (about 13k multiply-adds per input pixel, 16-channel layers):

* alignment: a small coarse-to-fine flow estimator. Each frame is encoded at 1/4 resolution (space-to-depth ×4,
  conv) and 1/8; for each neighbour a head predicts the displacement at 1/8 (large motion), a second head
  refines it at 1/4 after warping, and the flow is upsampled bilinearly. The neighbours' pixels are warped to
  the centre with ``grid_sample`` (ONNX GridSample: runs in OpenVINO and TensorRT; no deformable convolution);
* fusion and restoration at low resolution: a conv over the aligned stack, residual blocks;
* upsampling: a conv to 3·s² channels added to the bicubic phases of the centre frame, one depth-to-space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models.common import ResBlock
from vsr.models.window import flow_warp
from vsr.resize import BicubicUpsample


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
    def __init__(self, *, scale: int, frames: int = 3, features: int = 16, blocks: int = 2, flow_features: int = 16,
                 flow_layers: int = 2):
        super().__init__()
        if frames != 3:
            raise ValueError("frames must be 3 (t-1, t, t+1)")
        self.scale, self.frames = scale, frames
        self.size_multiple = 8  # the aligner works at 1/8 resolution
        ff = flow_features
        self.flow_enc = nn.Sequential(nn.PixelUnshuffle(4), *_conv_act(48, ff))  # 1/4 resolution
        self.flow_enc8 = nn.Sequential(*_conv_act(ff, ff, stride=2))  # 1/8
        self.flow_coarse = _head(2 * ff, ff, flow_layers)
        self.flow_fine = _head(2 * ff + 2, ff, flow_layers)
        self.head = nn.Sequential(*_conv_act(3 * frames, features))
        self.body = nn.Sequential(*[ResBlock(features) for _ in range(blocks)])
        self.up = nn.Conv2d(features, 3 * scale * scale, 3, padding=1)
        self.skip = BicubicUpsample(scale=scale)

    def encode(self, frame: torch.Tensor):
        """A frame's flow encodings at 1/4 and 1/8 resolution."""
        e4 = self.flow_enc(frame)
        return e4, self.flow_enc8(e4)

    def flow(self, centre_enc, neighbour_enc) -> torch.Tensor:
        """Displacement (in LR pixels, N×2×H×W) from the centre frame to a neighbour."""
        (c4, c8), (n4, n8) = centre_enc, neighbour_enc
        coarse = self.flow_coarse(torch.cat([c8, n8], 1))  # LR pixels, at 1/8 resolution
        coarse = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)
        warped = flow_warp(n4, coarse * 0.25)  # a 1/4-resolution pixel is 4 LR pixels
        fine = coarse + self.flow_fine(torch.cat([c4, warped, coarse * 0.25], 1))
        return F.interpolate(fine, scale_factor=4.0, mode="bilinear", align_corners=False)

    def forward_with_flows(self, x: torch.Tensor):
        """(output, flows of the two neighbours): the flows feed the alignment loss in training."""
        frames = [x[:, 3 * i : 3 * i + 3] for i in range(3)]
        enc = [self.encode(f) for f in frames]
        flows = [self.flow(enc[1], enc[i]) for i in (0, 2)]
        aligned = torch.cat([flow_warp(frames[0], flows[0]), frames[1], flow_warp(frames[2], flows[1])], 1)
        h = self.head(aligned)
        h = h + self.body(h)
        return F.pixel_shuffle(self.up(h) + self.skip.phases(frames[1]), self.scale), flows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_flows(x)[0]
