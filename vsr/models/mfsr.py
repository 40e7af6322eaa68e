"""vsr's multi-frame generator: align t-1 and t+1 to t, fuse, restore, upsample.

Built to a CPU budget (``mf-fast``: about 13k multiply-adds per input pixel, 16-channel
layers, which oneDNN's bf16 kernels run at full width):

* alignment: a small coarse-to-fine flow estimator. Each frame is encoded once
  at 1/4 resolution (space-to-depth ×4, conv) and 1/8; for each neighbour a
  head predicts the displacement at 1/8 (large motion), a second head refines
  it at 1/4 after warping, and the flow is upsampled bilinearly. The
  neighbours' *pixels* (3 channels, cheap) are warped to the centre with
  ``grid_sample`` (ONNX GridSample: runs in OpenVINO and TensorRT; no
  deformable convolution);
* fusion and restoration at low resolution: a conv over the aligned stack,
  residual blocks;
* upsampling: a conv to 3·s² channels added to the bicubic phases of the
  centre frame, then one depth-to-space (the bicubic skip costs a 5×5 grouped
  conv and no full-resolution pass of its own).

With ``phase=True`` neighbours move by whole pixels and the fusion also sees the sub-pixel offsets;
``refine=True`` (an experiment) adds a last flow step at full LR resolution. With ``frames=1`` it is the same
network without alignment: the single-frame twin for the ablation.

``flow="dis"`` drops the learned estimator: the flows come in as four more input channels, computed by OpenCV's
DIS on the LR frames (:mod:`vsr.flow`; the exported graph takes them as input, every runner appends them, and in
eager mode a 9-channel window gets them computed on the spot). ``confidence=True`` lets the fusion see how far each
aligned neighbour is from the centre (their mean absolute difference), so it can learn where a flow failed.
``dis_finest_scale`` is the DIS pyramid level the flows are found at, part of the model because it is the flow the
weights were trained with: 2 (OpenCV's FAST preset, 1/4 of the frame's size) or 0 (the frame's own pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.flow import FINEST_SCALE
from vsr.models.common import ResBlock
from vsr.resize import BicubicUpsample


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at (pixel + flow); ``flow`` is N×2×H×W in pixels (dx, dy), borders repeated.

    The sampling positions are always computed in float32: in bf16 (training under autocast) a pixel index
    of 8 to 16 is only good to 1/16 of a pixel, which would blur away the sub-pixel precision the flow is for."""
    _, _, h, w = x.shape
    flow = flow.float()
    gx = torch.arange(w, dtype=flow.dtype, device=x.device).view(1, 1, 1, w).expand(1, 1, h, w)
    gy = torch.arange(h, dtype=flow.dtype, device=x.device).view(1, 1, h, 1).expand(1, 1, h, w)
    # normalised coordinates for align_corners=False: (i + 0.5) / size * 2 - 1
    norm = torch.tensor([2.0 / w, 2.0 / h], dtype=flow.dtype, device=x.device).view(1, 2, 1, 1)
    grid = (torch.cat([gx, gy], 1) + flow + 0.5) * norm - 1.0
    out = F.grid_sample(x.to(grid.dtype), grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.to(x.dtype)


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
        features: int = 16,
        blocks: int = 2,
        flow_features: int = 16,
        flow_layers: int = 2,
        phase: bool = False,
        refine: bool = False,
        flow: str = "learned",
        confidence: bool = False,
        dis_finest_scale: int = FINEST_SCALE,
    ):
        super().__init__()
        if frames not in (1, 3):
            raise ValueError("frames must be 1 or 3")
        if flow not in ("learned", "dis"):
            raise ValueError("flow must be 'learned' or 'dis'")
        self.scale, self.frames = scale, frames
        self.phase = phase and frames > 1
        self.confidence = confidence and frames > 1
        self.flow_input = flow == "dis" and frames > 1  # the flows are input channels 9..12
        self.dis_finest_scale = dis_finest_scale  # the DIS pyramid level its flows are found at (vsr.flow)
        self.in_channels = 3 * frames + (4 if self.flow_input else 0)
        self.size_multiple = 8 if frames > 1 and not self.flow_input else 1
        self.flow_refine = None
        if frames > 1 and not self.flow_input:
            ff = flow_features
            self.flow_enc = nn.Sequential(nn.PixelUnshuffle(4), *_conv_act(48, ff))  # 1/4 resolution
            self.flow_enc8 = nn.Sequential(*_conv_act(ff, ff, stride=2))  # 1/8
            self.flow_coarse = _head(2 * ff, ff, flow_layers)
            self.flow_fine = _head(2 * ff + 2, ff, flow_layers)
            # optional last step at full LR resolution: the centre, the neighbour warped so far and the flow
            self.flow_refine = _head(3 + 3 + 2, ff, flow_layers) if refine else None
        extra = (4 if self.phase else 0) + (2 if self.confidence else 0)
        self.head = nn.Sequential(*_conv_act(3 * frames + extra, features))
        self.body = nn.Sequential(*[ResBlock(features) for _ in range(blocks)])
        self.up = nn.Conv2d(features, 3 * scale * scale, 3, padding=1)
        self.skip = BicubicUpsample(scale=scale)

    def encode(self, frame: torch.Tensor):
        """Per-frame flow encodings (1/4 and 1/8 resolution); computed once per frame when streaming."""
        e4 = self.flow_enc(frame)
        return e4, self.flow_enc8(e4)

    def flow(self, centre_enc, neighbour_enc, centre=None, neighbour=None) -> torch.Tensor:
        """Displacement (in LR pixels, N×2×H×W) from the centre frame to a neighbour.

        Models built with ``refine`` also need the two frames themselves for the full-resolution step."""
        (c4, c8), (n4, n8) = centre_enc, neighbour_enc
        coarse = self.flow_coarse(torch.cat([c8, n8], 1))  # LR pixels, at 1/8 resolution
        coarse = F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=False)
        warped = flow_warp(n4, coarse * 0.25)  # a 1/4-resolution pixel is 4 LR pixels
        fine = coarse + self.flow_fine(torch.cat([c4, warped, coarse * 0.25], 1))
        fine = F.interpolate(fine, scale_factor=4.0, mode="bilinear", align_corners=False)
        if self.flow_refine is None:
            return fine
        return fine + self.flow_refine(torch.cat([centre, flow_warp(neighbour, fine), fine], 1))

    def forward_with_flows(self, x: torch.Tensor):
        """(output, flows of the neighbours): the flows feed the alignment loss in training."""
        mid = self.frames // 2
        centre = x[:, 3 * mid : 3 * mid + 3]
        flows = []
        if self.frames > 1:
            if self.flow_input and x.shape[1] == 3 * self.frames:  # eager use with a bare window
                from vsr.flow import with_flows

                x = with_flows(x, self.dis_finest_scale)
            frames = [x[:, 3 * i : 3 * i + 3] for i in range(self.frames)]
            if self.flow_input:
                given = x[:, 3 * self.frames :]
                given = [given[:, 0:2], given[:, 2:4]]
            else:
                enc = [self.encode(f) for f in frames]
            aligned, offsets, distances = [], [], []
            for i, f in enumerate(frames):
                if i != mid:
                    fl = given[len(flows)] if self.flow_input else self.flow(enc[mid], enc[i], frames[mid], f)
                    flows.append(fl)
                    f, offset = self.align(f, fl)
                    if offset is not None:
                        offsets.append(offset)
                    if self.confidence:
                        distances.append((f - centre).abs().mean(1, keepdim=True))
                aligned.append(f)
            x = torch.cat(aligned + offsets + distances, 1)
        return self.reconstruct(x, centre), flows

    def align(self, frame: torch.Tensor, flow: torch.Tensor):
        """A neighbour moved onto the centre by ``flow``, and its sub-pixel offset (``phase`` models) or None."""
        if self.phase:
            return self._whole_pixel_warp(frame, flow)
        return flow_warp(frame, flow), None

    def _whole_pixel_warp(self, frame: torch.Tensor, flow: torch.Tensor):
        """``phase`` alignment: move the neighbour by whole LR pixels (its samples reach the fusion unfiltered;
        a bilinear warp low-passes away the aliasing that carries its sub-pixel detail) and return the sub-pixel
        remainder as an input. The flow learns through a bilinear straight-through estimate in training; the
        remainder carries no gradient, so the fusion cannot bend the flow to shape its own input."""
        whole = torch.round(flow)
        moved = flow_warp(frame, whole)
        if self.training:
            soft = flow_warp(frame, flow)
            moved = moved + soft - soft.detach()
        return moved, (flow - whole).detach()

    def reconstruct(self, aligned: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """Fusion, residual blocks and upsampling of the aligned window (frames stacked on channels)."""
        h = self.head(aligned)
        h = h + self.body(h)
        return F.pixel_shuffle(self.up(h) + self.skip.phases(centre), self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_flows(x)[0]
