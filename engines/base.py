"""The backend interface: one ``Runner`` per (model, backend, precision).

A runner takes an N×(3·frames)×H×W float32 CPU tensor in [0, 1] (H and W
multiples of ``size_multiple``) and returns N×3×sH×sW float32 on the CPU.
For models that take their flows as input (``flow_input``: vsr.flow) the
runner computes them on the CPU and appends them; compiled graphs take
``in_channels`` channels.
Backends: ``torch`` (reference; CPU or CUDA), ``openvino`` (CPU), ``tensorrt``
(NVIDIA). ``auto`` tries TensorRT, then torch-CUDA, then OpenVINO, then
torch-CPU, and says which it chose; a backend that fails to start falls back
to the next one with a warning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from vsr.errors import VsrError
from vsr.flow import FINEST_SCALE
from vsr.models import in_channels_of

BACKENDS = ("auto", "torch", "openvino", "tensorrt")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class BackendError(VsrError):
    """A backend can't run here (missing runtime, unsupported precision, shape outside a profile)."""


class Runner(ABC):
    name: str = "?"
    precision: str = "fp32"
    depth: int = 1  # windows that may be in flight at once (submit/collect)

    def __init__(self, model: torch.nn.Module):
        self.scale = int(model.scale)
        self.frames = int(getattr(model, "frames", 1))
        self.size_multiple = int(getattr(model, "size_multiple", 1))
        self.flow_input = bool(getattr(model, "flow_input", False))
        self.dis_finest_scale = int(getattr(model, "dis_finest_scale", FINEST_SCALE))
        self.in_channels = in_channels_of(model)

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """What a compiled graph takes: the window, with its DIS flows appended for ``flow_input`` models."""
        if self.flow_input and x.shape[1] == 3 * self.frames:
            from vsr.flow import with_flows

            return with_flows(x, self.dis_finest_scale)
        return x

    @abstractmethod
    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def run_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        """8-bit window in (``frames`` H×W×3 uint8, oldest first), 8-bit frame out (sH×sW×3 uint8).

        Any size: padded to the size multiple and cropped back. Engines override this
        to do the conversions inside the compiled graph (see engines/frame_io.py).
        """
        from vsr.tiling import run_padded

        h, w = frames[0].shape[:2]
        x = torch.from_numpy(np.concatenate(frames, axis=2)).permute(2, 0, 1)[None].float().div_(255.0)
        y = run_padded(self, x, self.scale, self.size_multiple)[0]
        return y.mul_(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()

    def submit(self, frames: list[np.ndarray]):
        """Start ``run_frames`` on a window; ``collect`` returns its result. Up to ``depth`` may be in flight."""
        return self.run_frames(frames)

    def collect(self, handle) -> np.ndarray:
        return handle

    def describe(self) -> str:
        return f"{self.name} ({self.precision})"


def _nvidia_gpu() -> bool:
    return torch.cuda.is_available() and torch.version.cuda is not None


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def candidates(backend: str) -> list[str]:
    """The backends ``auto`` would try here, best first (or just the one asked for)."""
    if backend != "auto":
        return [backend]
    order = []
    if _nvidia_gpu() and _has("tensorrt"):
        order.append("tensorrt")
    if _nvidia_gpu():
        order.append("torch-cuda")
    if _has("openvino"):
        order.append("openvino")
    order.append("torch")
    return order


def create_runner(model: torch.nn.Module, *, backend: str = "auto", precision: str = "auto",
                  weights_id: str = "", warn: Callable[[str], None] = print,
                  shape: tuple[int, int] | None = None, frame_io: bool = False) -> Runner:
    """Build a runner for ``model``. ``weights_id`` names the weights in engine cache keys;
    ``shape`` (LR height, width) lets engines build for the expected input ahead of time,
    for 8-bit frames in and out (``frame_io``, the video path) or float tensors."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    errors = []
    tried = candidates(backend)
    for i, name in enumerate(tried):
        try:
            runner = _make(name, model, precision if backend != "auto" else "auto", weights_id, shape, frame_io)
        except BackendError as e:
            if backend != "auto":
                raise
            errors.append(f"{name}: {e}")
            if i + 1 < len(tried):
                warn(f"warning: {name} backend unavailable ({e}); trying {tried[i + 1]}")
            continue
        return runner
    raise BackendError("no backend could run the model: " + "; ".join(errors))


def _make(name: str, model, precision: str, weights_id: str, shape, frame_io: bool) -> Runner:
    if name in ("torch", "torch-cuda"):
        from engines.torch_backend import TorchRunner

        device = "cuda" if name == "torch-cuda" else ("cuda" if _nvidia_gpu() else "cpu")
        return TorchRunner(model, device=device, precision=precision)
    if name == "openvino":
        from engines.openvino_backend import OpenVINORunner

        return OpenVINORunner(model, precision=precision, weights_id=weights_id, shape=shape, frame_io=frame_io)
    if name == "tensorrt":
        from engines.tensorrt_backend import TensorRTRunner

        return TensorRTRunner(model, precision=precision, weights_id=weights_id, shape=shape if not frame_io else None)
    raise BackendError(f"unknown backend {name!r}")
