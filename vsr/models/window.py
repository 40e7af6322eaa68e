"""vsr's video and image models: a window of frames aligned by DIS flow, and a hidden state carried from frame to
frame.

The recurrent model (``window=3, state=True``): one step takes the window (t-1, t, t+1), the DIS flows from t to its neighbours (:mod:`vsr.flow`) and the
hidden state the step for t-1 left, and returns frame t upscaled and the new state:

* alignment: t-1 and t+1 are moved onto t by whole LR pixels (``round(flow)``: their samples reach the network
  unfiltered, where a bilinear warp would low-pass away the aliasing that carries sub-pixel detail); the sub-pixel
  remainders and each aligned neighbour's distance from t are inputs, so the network learns where a flow failed;
* the state is moved onto t to the sub-pixel (FRVSR-style): the features by a bilinear warp with the flow to t-1,
  the previous output (feedback) at HR resolution by the same flow scaled up, then space-to-depth again. It is
  already filtered (the network's own output), so resampling loses nothing a whole-pixel move keeps, and a
  whole-pixel move would leave it up to half an LR pixel (s/2 output pixels) off t;
* a head conv, residual blocks at LR resolution, a conv to 3·s² channels added to the bicubic phases of t,
  one depth-to-space; the body's output is the next hidden state.

It is causal with one frame of latency, and streams with memory flat in the video's length. The state starts at
zero and is reset to zero at scene cuts (the caller does that). ``state=False`` drops the state (a window model),
``window=1`` the neighbours; with both, it is a single-image model.

Forward: ``model(x[, flows][, state])`` as :mod:`engines.descriptor` describes it: ``flows`` when
``flow_channels`` (the flows from t to t-1, then to t+1, in LR pixels: :mod:`vsr.flow`), ``state`` when
``state_channels`` (then it returns ``(image, next state)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.flow import FINEST_SCALE, REFINE
from vsr.models.common import ResBlock
from vsr.resize import BicubicUpsample


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at (pixel + flow); ``flow`` is N×2×H×W in pixels (dx, dy), borders repeated.

    The sampling positions are always computed in float32: in bf16 (training under autocast) a pixel index
    of 8 to 16 is only good to 1/16 of a pixel."""
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


class WindowSR(nn.Module):
    def __init__(self, *, scale: int, features: int = 32, blocks: int = 2, window: int = 3, state: bool = True,
                 feedback: bool = False, dis_finest_scale: int = FINEST_SCALE, dis_refine: int = REFINE):
        super().__init__()
        if window not in (1, 3):
            raise ValueError("window must be 1 or 3")
        if feedback and not state:
            raise ValueError("feedback (the previous output) is part of the state")
        self.scale, self.frames = scale, window
        self.feedback = feedback
        # the state: the body's features, and with feedback the previous output frame, space-to-depth onto the LR
        # grid (s² sub-pixel phases per LR pixel), so the state stays one LR-sized tensor in the compiled graph
        self.state_channels = (features + (3 * scale * scale if feedback else 0)) if state else 0
        self.flow_channels = 4 if (window > 1 or state) else 0  # centre → t-1 (dx, dy), centre → t+1
        self.dis_finest_scale, self.dis_refine = dis_finest_scale, dis_refine  # how its flows are made (vsr.flow.Dis)
        self.size_multiple = 1
        offsets = (4 if window > 1 else 2) if self.flow_channels else 0  # sub-pixel remainders of the used flows
        distances = 2 if window > 1 else 0
        self.head = nn.Sequential(nn.Conv2d(3 * window + offsets + distances + self.state_channels, features, 3,
                                            padding=1), nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*[ResBlock(features) for _ in range(blocks)])
        self.up = nn.Conv2d(features, 3 * scale * scale, 3, padding=1)
        self.skip = BicubicUpsample(scale=scale)

    def widened_inputs_at(self, name: str, source: torch.Tensor) -> int:
        """Where a narrower source's kernel goes among this conv's inputs (``train.checkpoint.init_from``): a
        single-image model's three head inputs are this window's centre frame (t-1 comes first), so the window
        model starts at its outputs; otherwise (a state added after the inputs) the source's inputs come first."""
        return 3 if name == "head.0.weight" and self.frames == 3 and source.shape[1] == 3 else 0

    def _align_state(self, state: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
        """The state left by the step for t-1, moved onto t by ``back`` (the flow t → t-1, LR pixels)."""
        features = state.shape[1] - (3 * self.scale**2 if self.feedback else 0)
        aligned = [flow_warp(state[:, :features], back)]
        if self.feedback:
            s = self.scale
            hr_back = F.interpolate(back.float(), scale_factor=s, mode="bilinear", align_corners=False) * s
            previous = flow_warp(F.pixel_shuffle(state[:, features:], s), hr_back)
            aligned.append(F.pixel_unshuffle(previous, s))
        return torch.cat(aligned, 1)

    def forward(self, x: torch.Tensor, flows: torch.Tensor | None = None, state: torch.Tensor | None = None):
        mid = self.frames // 2
        centre = x[:, 3 * mid : 3 * mid + 3]
        parts = [centre]
        if self.flow_channels:
            whole = torch.round(flows)
            remainder = flows - whole
            if self.frames > 1:
                prev = flow_warp(x[:, :3], whole[:, :2])
                nxt = flow_warp(x[:, 6:9], whole[:, 2:4])
                parts = [prev, centre, nxt, remainder,
                         (prev - centre).abs().mean(1, keepdim=True), (nxt - centre).abs().mean(1, keepdim=True)]
            else:
                parts.append(remainder[:, :2])
        if self.state_channels:
            parts.append(self._align_state(state, flows[:, :2]))
        h = self.head(torch.cat(parts, 1))
        h = h + self.body(h)
        phases = self.up(h) + self.skip.phases(centre)
        out = F.pixel_shuffle(phases, self.scale)
        if not self.state_channels:
            return out
        return out, (torch.cat([h, phases], 1) if self.feedback else h)
