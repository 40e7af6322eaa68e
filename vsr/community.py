"""Community weight files (ESRGAN, Real-ESRGAN, SRVGGNetCompact, SwinIR, SPAN, …) through vsr's pipeline.

spandrel (chaiNNer's library, the optional extra ``vsr[community]``) recognises the architecture of a state dict
and builds the torch module; its descriptor says the scale, the channels and what input sizes the model needs.
vsr runs such a model as a single-image model on every backend (its engines keyed by the file's hash). Loading
never executes code from the file: ``torch.load(weights_only=True)`` or safetensors, then spandrel on the tensors.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engines.cache import file_sha256
from vsr.errors import VsrError
from vsr.weightfile import WeightInfo

COMMUNITY_EXTS = {".pth", ".pt", ".ckpt", ".bin", ".safetensors"}
MAX_SCALE = 8


class CommunityError(VsrError):
    pass


def _spandrel():
    """spandrel, importable where torchvision is not: only its inpainting (LaMa) and face-restoration (RestoreFormer)
    architectures use torchvision, at import time, and vsr runs neither; where torchvision is missing or broken
    (beside PyTorch's CPU wheel it fails to import), those names are stand-ins that raise if ever called."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    stand_ins = {}
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or present and broken ("operator torchvision::nms does not exist")
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

        def unavailable(*_a, **_k):
            raise CommunityError("this architecture needs torchvision, which is not installed")

        functional = types.ModuleType("torchvision.transforms.functional")
        functional.InterpolationMode, functional.rotate, functional.normalize = object, unavailable, unavailable
        transforms = types.ModuleType("torchvision.transforms")
        transforms.functional = functional
        tv = types.ModuleType("torchvision")
        tv.transforms = transforms
        stand_ins = {"torchvision": tv, "torchvision.transforms": transforms,
                     "torchvision.transforms.functional": functional}
        sys.modules.update(stand_ins)
    try:
        import spandrel
    except ImportError:
        raise CommunityError("community weight files need spandrel: pip install 'vsr[community]'") from None
    finally:  # spandrel holds the names it took; nothing else should find a torchvision that is not there
        for name in stand_ins:
            sys.modules.pop(name, None)
    return spandrel


def read_state_dict(path: Path) -> dict:
    """The file's tensors, without running anything it contains."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CommunityError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - torch/safetensors raise many kinds for a damaged or foreign file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CommunityError(f"{path}: not a readable weight file ({first})") from None
    if not isinstance(state, dict):
        raise CommunityError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    return state


@dataclass
class Found:
    """What spandrel made of a file."""

    architecture: str
    purpose: str
    scale: int
    channels: tuple[int, int]
    size: object  # spandrel's SizeRequirements
    tags: list[str]
    parameters: int


def _freeze_reparameterised(model: nn.Module) -> None:
    """SPAN's 3×3 blocks (Conv3XC) rebuild their one inference conv from the training branches on every call: the
    exporter cannot trace that (weights made in forward). Build it once, here, and run only it: the same output."""
    import types

    import torch.nn.functional as F

    def forward(self, x):
        out = self.eval_conv(x)
        return F.leaky_relu(out, negative_slope=0.05) if self.has_relu else out

    for m in model.modules():
        if type(m).__name__ == "Conv3XC" and hasattr(m, "eval_conv") and hasattr(m, "update_params"):
            with torch.no_grad():
                m.update_params()
            m.forward = types.MethodType(forward, m)


class CommunityModel(nn.Module):
    """A spandrel-built single-image model as vsr runs it: RGB in [0, 1] → RGB, with what its descriptor says."""

    frames = 1

    def __init__(self, model: nn.Module, found: Found, weights: str):
        super().__init__()
        self.model = model.float().eval()
        _freeze_reparameterised(self.model)
        self.scale = found.scale
        self.size_multiple = found.size.multiple_of
        self.min_size = found.size.minimum
        self.square = found.size.square
        self.arch = f"spandrel:{found.architecture}"
        self.hparams = {"sha256": weights}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def inspect(path: str | Path) -> tuple[nn.Module, Found]:
    """Build the model a community file holds; refuse anything but an RGB → RGB super-resolution model."""
    path = Path(path)
    spandrel = _spandrel()
    state = read_state_dict(path)
    try:
        d = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        keys = ", ".join(list(state)[:4])
        raise CommunityError(f"{path}: spandrel does not recognise this model (first keys: {keys})") from None
    except Exception as e:  # noqa: BLE001 - a recognised architecture with inconsistent tensors
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CommunityError(f"{path}: looks like a model spandrel knows, but does not load ({first})") from None
    found = Found(architecture=d.architecture.name, purpose=d.purpose, scale=int(d.scale),
                  channels=(int(d.input_channels), int(d.output_channels)), size=d.size_requirements,
                  tags=list(d.tags), parameters=sum(p.numel() for p in d.model.parameters()))
    what = f"{found.architecture} ({found.purpose}, ×{found.scale}, {found.channels[0]}→{found.channels[1]} channels)"
    if found.purpose != "SR":
        raise CommunityError(f"{path}: {what} is not a super-resolution model; vsr runs image-to-image upscalers")
    if found.channels != (3, 3):
        raise CommunityError(f"{path}: {what} does not map RGB to RGB; vsr runs 3-channel models")
    if not 1 <= found.scale <= MAX_SCALE:
        raise CommunityError(f"{path}: {what}: scale outside 1–{MAX_SCALE}")
    return d.model.eval(), found


def load_community(path: str | Path) -> tuple[nn.Module, WeightInfo]:
    """(model, info) for ``vsr upscale -m file`` and ``vsr image -m file``."""
    path = Path(path)
    model, found = inspect(path)
    digest = file_sha256(path)
    wrapped = CommunityModel(model, found, digest).eval()
    info = WeightInfo(name=path.stem, arch=wrapped.arch, hparams=dict(wrapped.hparams), scale=found.scale, frames=1,
                      path=path, training={"community": True, "tags": found.tags})
    return wrapped, info
