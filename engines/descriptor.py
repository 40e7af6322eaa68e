"""What a compiled model takes and gives, independent of what the model is.

The engines run any ``nn.Module`` whose forward is ``model(x[, flows][, state])`` with

* ``x``: N×(3·frames)×H×W float RGB in [0, 1], frames oldest first;
* ``flows`` (``flow_channels`` > 0): N×flow_channels×H×W float32, computed by the caller;
* ``state`` (``state_channels`` > 0): N×state_channels×H×W, the state the previous frame's call returned
  (zeros at the start); such a model returns ``(image, next state)``, others the image N×3×sH×sW.

H and W must be multiples of ``size_multiple``, at least ``min_size`` and, for ``square`` models, equal; runners
pad to that (edges repeated) and crop.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

MIN_SIDE = 8  # smaller inputs are padded: some layers (a 5×5 bicubic skip, strided encoders) need the room


@dataclass(frozen=True)
class Descriptor:
    scale: int
    frames: int = 1
    flow_channels: int = 0
    state_channels: int = 0
    size_multiple: int = 1
    min_size: int = MIN_SIDE
    square: bool = False

    @classmethod
    def of(cls, model: nn.Module) -> Descriptor:
        """Read from the module's attributes (``scale`` required, the rest optional)."""
        return cls(scale=int(model.scale), frames=int(getattr(model, "frames", 1)),
                   flow_channels=int(getattr(model, "flow_channels", 0)),
                   state_channels=int(getattr(model, "state_channels", 0)),
                   size_multiple=int(getattr(model, "size_multiple", 1)),
                   min_size=max(MIN_SIDE, int(getattr(model, "min_size", 0))),
                   square=bool(getattr(model, "square", False)))

    @property
    def recurrent(self) -> bool:
        return self.state_channels > 0

    def padded(self, h: int, w: int) -> tuple[int, int]:
        """The input size a frame of h×w runs at."""
        m = self.size_multiple
        if self.square:
            h = w = max(h, w)
        return -(-max(h, self.min_size) // m) * m, -(-max(w, self.min_size) // m) * m
