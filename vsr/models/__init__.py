"""The model zoo: an explicit registry of architectures and named presets.

Every architecture is a plain ``nn.Module`` with keyword-only hyperparameters;
a weight file stores the architecture name and those hyperparameters, so
loading needs no config (see :mod:`vsr.weights`).

Contract: input N×(3·frames)×H×W float RGB in [0, 1] (frames oldest first),
output N×3×(s·H)×(s·W). H and W must be multiples of ``size_multiple``. Models with
``flow_input`` (``flow="dis"``) also take the neighbours' flows as 4 more channels
(``in_channels``; :mod:`vsr.flow` computes them, and does so itself in eager mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from vsr.models.bicubic import Bicubic
from vsr.models.edsr import EDSR
from vsr.models.espcn import ESPCN
from vsr.models.fsrcnn import FSRCNN
from vsr.models.mfsr import MultiFrameSR
from vsr.models.rrdb import RRDBNet
from vsr.models.srcnn import SRCNN
from vsr.models.srresnet import SRResNet
from vsr.models.vdsr import VDSR

# architecture name (as stored in weight files) → class
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "bicubic": Bicubic,
    "srcnn": SRCNN,
    "vdsr": VDSR,
    "espcn": ESPCN,
    "fsrcnn": FSRCNN,
    "srresnet": SRResNet,
    "edsr": EDSR,
    "rrdb": RRDBNet,
    "mfsr": MultiFrameSR,
}


@dataclass(frozen=True)
class ModelSpec:
    """A named configuration of an architecture: what users pick with ``-m NAME``."""

    name: str
    arch: str
    params: dict[str, Any] = field(default_factory=dict)
    frames: int = 1
    size_multiple: int = 1
    scales: tuple[int, ...] = (2, 3, 4)
    description: str = ""

    def build(self, scale: int, **overrides: Any) -> nn.Module:
        if scale not in self.scales:
            raise ValueError(f"model {self.name!r} supports scales {', '.join(map(str, self.scales))}, not {scale}")
        return build(self.arch, scale=scale, **{**self.params, **overrides})


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("bicubic", "bicubic", description="MATLAB bicubic interpolation (no weights)"),
        ModelSpec("srcnn", "srcnn", description="SRCNN 9-5-5, luma"),
        ModelSpec("vdsr", "vdsr", description="VDSR, 20 layers, luma"),
        ModelSpec("espcn", "espcn", description="ESPCN sub-pixel CNN, luma"),
        ModelSpec("fsrcnn", "fsrcnn", description="FSRCNN(56,12,4), luma"),
        ModelSpec("srresnet", "srresnet", description="SRResNet 16×64 (SRGAN generator)"),
        ModelSpec("edsr", "edsr", {"features": 64, "blocks": 16}, description="EDSR baseline 16×64"),
        ModelSpec(
            "edsr-large", "edsr", {"features": 256, "blocks": 32, "res_scale": 0.1}, description="EDSR 32×256"
        ),
        ModelSpec("rrdb", "rrdb", {"features": 64, "blocks": 23, "growth": 32}, description="ESRGAN RRDB 23 blocks"),
        ModelSpec(
            "sr-lite",
            "mfsr",
            {"frames": 1, "features": 64, "blocks": 8},
            description="single-image: 8×64 residual blocks at LR, sub-pixel + bicubic skip",
        ),
        ModelSpec(
            "mf-fast",
            "mfsr",
            {"frames": 3, "features": 16, "blocks": 2, "flow_features": 16},
            frames=3,
            size_multiple=8,
            description="multi-frame (t-1, t, t+1), flow-aligned, fast",
        ),
        ModelSpec(
            "mf-quality",
            "mfsr",
            {"frames": 3, "features": 48, "blocks": 3, "flow_features": 32},
            frames=3,
            size_multiple=8,
            description="multi-frame (t-1, t, t+1), flow-aligned, larger",
        ),
        ModelSpec(
            "mf-dis",
            "mfsr",
            {"frames": 3, "features": 48, "blocks": 2, "flow": "dis", "phase": True, "confidence": True},
            frames=3,
            description="multi-frame (t-1, t, t+1) aligned by DIS optical flow on the LR frames, "
            "confidence-aware fusion",
        ),
    ]
}


def build(arch: str, **hparams: Any) -> nn.Module:
    """Instantiate an architecture by name with keyword hyperparameters."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}") from None
    model = cls(**hparams)
    model.arch = arch  # type: ignore[assignment]
    model.hparams = dict(hparams)  # type: ignore[assignment]
    return model


def in_channels_of(model: nn.Module) -> int:
    """Channels of the model's input tensor: 3 per frame, plus its flows for ``flow_input`` models."""
    return int(getattr(model, "in_channels", 3 * frames_of(model)))


def frames_of(model: nn.Module) -> int:
    return int(getattr(model, "frames", 1))


def size_multiple_of(model: nn.Module) -> int:
    return int(getattr(model, "size_multiple", 1))
