"""Architectures: plain ``nn.Module`` classes with keyword-only hyperparameters, by the name weight files store.

A weight file stores the architecture's name and hyperparameters, so loading needs no config
(:mod:`vsr.weightfile`). Which trained models vsr ships is :mod:`vsr.zoo`'s table; any architecture here can be
trained with ``python -m train``.

Contract (:mod:`engines.descriptor`): ``model(x[, flows][, state])`` with x N×(3·frames)×H×W float RGB in [0, 1]
(frames oldest first) → N×3×(s·H)×(s·W); models with ``flow_channels`` also take the window's DIS flows
(:mod:`vsr.flow`), recurrent ones (``state_channels``) a state and return ``(image, next state)``.
"""

from __future__ import annotations

from typing import Any

import torch
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
from vsr.models.window import WindowSR

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
    "window": WindowSR,
}
SCALES = (2, 3, 4)


def build(arch: str, **hparams: Any) -> nn.Module:
    """Instantiate an architecture by name with keyword hyperparameters (which the module keeps)."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}") from None
    if hparams.get("scale") not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, not {hparams.get('scale')}")
    model = cls(**hparams)
    model.arch = arch  # type: ignore[assignment]
    model.hparams = dict(hparams)  # type: ignore[assignment]
    return model


def run_window(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eager use of any model on one N×(3·frames)×H×W window, as a clip's first frame: the window's flows computed
    here for models that take them, the state zero for recurrent ones."""
    args: list[torch.Tensor] = [x]
    if getattr(model, "flow_channels", 0):
        from vsr.flow import Dis, window_flows

        window = x if model.frames == 3 else x.repeat(1, 3, 1, 1)
        args.append(window_flows(window, Dis.of(model)).to(device=x.device, dtype=x.dtype))
    if getattr(model, "state_channels", 0):
        args.append(x.new_zeros((x.shape[0], model.state_channels, *x.shape[-2:])))
        return model(*args)[0]
    return model(*args)
