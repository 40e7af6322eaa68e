"""The runner interface: integer frames in, integer frame out, on every backend.

``runner.submit(frames, flows, reset)`` starts one output frame from a window of H×W×3 uint8 (or uint16) frames,
oldest first, plus the window's flows (flow_channels×H×W float32) for models that take them; ``collect`` returns
the sH×sW×3 frame in the input's dtype. Any size works: frames are padded to what the model needs and the output
cropped. Normalising and quantising happen in :mod:`engines.graph`, in the compiled graph or on the host, with
one rounding rule. A recurrent model's state stays inside the runner from one call to the next (``reset`` starts
it from zero: a clip's first frame, a scene cut, a still image); up to ``depth`` frames may be in flight, and
recurrent models have a depth of 1.

Backends: ``torch`` (reference; CPU or CUDA), ``openvino`` (CPU), ``tensorrt`` (NVIDIA). ``auto`` tries
TensorRT, then torch-CUDA, then OpenVINO, then torch-CPU, and says which it chose; a backend that fails to start
falls back to the next one with a warning.

Precision, one rule on every backend: ``auto`` picks what the backend runs best here; an explicit precision runs
as asked or is a :class:`PrecisionError` that names what can run, never a silent fp32 (an emulated bf16 or fp16
is slower than fp32, and OpenVINO falls back to fp32 without saying so). With ``--backend auto`` an explicit
precision picks the first backend that runs it natively, and is the error when none does. int8 runs on OpenVINO
only, quantised with NNCF on calibration frames the caller gives (:mod:`engines.quantise`).
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from engines.code import source_hash
from engines.descriptor import Descriptor
from engines.errors import BackendError, PrecisionError
from engines.graph import PEAK, normalise, quantise

BACKENDS = ("auto", "torch", "openvino", "tensorrt")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
INT8_ELSEWHERE = "int8 runs on the OpenVINO backend only (--backend openvino)"


@dataclass
class Identity:
    """What names the model in engine cache keys: the weights' hash, how the module was built and a hash of the
    code that makes its graph (:mod:`engines.code`, taken when the identity is: close to when the code was
    imported); ``name`` (a shipped model's name, a weight file's stem) is what ``vsr engines`` shows, not part
    of the key."""

    weights: str = ""
    arch: str = ""
    hparams: dict = field(default_factory=dict)
    name: str = ""
    code: str = ""

    @classmethod
    def of(cls, model: torch.nn.Module, weights: str = "", name: str = "") -> Identity:
        return cls(weights, getattr(model, "arch", type(model).__name__), dict(getattr(model, "hparams", {})), name,
                   source_hash(model))

    def with_code(self, model: torch.nn.Module) -> Identity:
        """This identity, with the code hash of ``model`` where it was made without one."""
        return self if self.code else replace(self, code=source_hash(model))

    @property
    def label(self) -> str:
        return self.name or self.arch or "model"


def io_of(dtype: np.dtype) -> str:
    if dtype == np.uint8:
        return "u8"
    if dtype == np.uint16:
        return "u16"
    raise BackendError(f"frames must be uint8 or uint16, not {dtype}")


def _pad(a: np.ndarray, h: int, w: int, hw_axes: tuple[int, int]) -> np.ndarray:
    ph, pw = h - a.shape[hw_axes[0]], w - a.shape[hw_axes[1]]
    if not ph and not pw:
        return a
    pads = [(0, 0)] * a.ndim
    pads[hw_axes[0]], pads[hw_axes[1]] = (0, ph), (0, pw)
    return np.pad(a, pads, mode="edge")


class Runner(ABC):
    name: str = "?"
    precision: str = "fp32"
    depth: int = 1  # frames that may be in flight at once (submit … collect)

    def __init__(self, model: torch.nn.Module, identity: Identity | None = None):
        self.model = model
        self.d = Descriptor.of(model)
        self.identity = (identity or Identity.of(model)).with_code(model)
        self.scale, self.frames = self.d.scale, self.d.frames
        self.last_build: tuple[str, bool] | None = None  # (engine cache entry, came from the cache)

    def io_for(self, io: str) -> str:
        """What crosses into the graph for frames of this io: the io itself, or "f32" where the runtime has no
        such integer tensors (the host then normalises and quantises)."""
        return io

    def submit(self, frames: Sequence[np.ndarray], flows: np.ndarray | None = None, reset: bool = False):
        if len(frames) != self.d.frames:
            raise BackendError(f"the model takes {self.d.frames} frame(s) per window, not {len(frames)}")
        if bool(self.d.flow_channels) != (flows is not None):
            raise BackendError("flows must be given exactly for models that take them")
        h, w = frames[0].shape[:2]
        io = io_of(frames[0].dtype)
        ph, pw = self.d.padded(h, w)
        frames = [_pad(f, ph, pw, (0, 1)) for f in frames]
        graph_io = self.io_for(io)
        if graph_io == "f32":
            inputs = [normalise([torch.from_numpy(f)[None] for f in frames], PEAK[io]).numpy()]
        else:
            inputs = [np.ascontiguousarray(f)[None] for f in frames]
        if flows is not None:
            inputs.append(np.ascontiguousarray(_pad(flows, ph, pw, (1, 2)), dtype=np.float32)[None])
        return self._start(graph_io, inputs, reset or not self.d.recurrent), io, graph_io, h, w

    def collect(self, handle) -> np.ndarray:
        inner, io, graph_io, h, w = handle
        out = self._finish(inner)
        if graph_io == "f32":
            out = quantise(torch.from_numpy(np.asarray(out)), PEAK[io]).numpy().astype(np.dtype(io.replace("u", "uint")))
        return np.array(out[0, : h * self.scale, : w * self.scale])  # a copy: engines reuse their buffers

    def __call__(self, frames: Sequence[np.ndarray], flows: np.ndarray | None = None, reset: bool = False):
        return self.collect(self.submit(frames, flows, reset))

    @abstractmethod
    def _start(self, io: str, inputs: list[np.ndarray], reset: bool):
        """Start the graph for ``io`` on ``inputs`` (frames…, [flows]); the state is the runner's own."""

    @abstractmethod
    def _finish(self, handle) -> np.ndarray:
        """The output: N×sH×sW×3 integers, or N×3×sH×sW floats for the "f32" io."""

    def prepare(self, h: int, w: int, io: str = "u8") -> None:
        """Build (or load) what an h×w input needs, ahead of the first frame. Backends that compile override it."""

    def check(self, io: str = "u8") -> None:
        """Fail now, not at the first frame, if the model cannot run here (compiling backends export it)."""

    def describe(self) -> str:
        return f"{self.name} ({self.precision})"


def choose_precision(requested: str, runs: Sequence[str], auto: str, lacks: dict[str, str]) -> str:
    """The precision a runner uses: ``auto`` → ``auto``; an explicit one if it is in ``runs`` (what this backend
    runs natively here), else a PrecisionError from ``lacks[requested]`` (why not) naming what runs."""
    if requested == "auto":
        return auto
    if requested in runs:
        return requested
    why = lacks.get(requested, f"{requested} is not offered here")
    offered = " or ".join(p for p in PRECISIONS if p in runs)
    raise PrecisionError(f"{why}: use --precision {offered} (or auto)")


def _nvidia_gpu() -> bool:
    return torch.cuda.is_available() and torch.version.cuda is not None


def _has(module: str) -> bool:
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
                  identity: Identity | None = None, warn: Callable[[str], None] = print,
                  shape: tuple[int, int] | None = None, io: str = "u8", calibration=None) -> Runner:
    """A runner for ``model``. ``identity`` names it in engine cache keys; ``shape`` (LR height, width) and ``io``
    let compiling backends build for the expected input ahead of time; ``calibration``
    (:class:`engines.quantise.Calibration`) lets OpenVINO build int8."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    identity = identity or Identity.of(model)
    errors, refused = [], []
    tried = candidates(backend)
    for i, name in enumerate(tried):
        try:
            runner = _make(name, model, precision, identity, calibration)
            runner.check(io)
            if shape is not None:
                runner.prepare(*shape, io=io)
        except PrecisionError as e:
            if backend != "auto":
                raise
            refused.append((name, e))  # another backend may run it natively; if none does, this is the error
            continue
        except BackendError as e:
            if backend != "auto":
                raise
            errors.append(f"{name}: {e}")
            if i + 1 < len(tried):
                warn(f"warning: {name} backend unavailable ({e}); trying {tried[i + 1]}")
            continue
        for other, _ in refused:
            warn(f"warning: {other} does not run {precision} here; using {runner.name}")
        return runner
    if refused:
        raise refused[0][1]
    raise BackendError("no backend could run the model: " + "; ".join(errors))


def _make(name: str, model, precision: str, identity: Identity, calibration=None) -> Runner:
    if name in ("torch", "torch-cuda"):
        from engines.torch_backend import TorchRunner

        device = "cuda" if name == "torch-cuda" else ("cuda" if _nvidia_gpu() else "cpu")
        return TorchRunner(model, identity, device=device, precision=precision)
    if name == "openvino":
        from engines.openvino_backend import OpenVINORunner

        return OpenVINORunner(model, identity, precision=precision, calibration=calibration)
    if name == "tensorrt":
        from engines.tensorrt_backend import TensorRTRunner

        return TensorRTRunner(model, identity, precision=precision)
    raise BackendError(f"unknown backend {name!r}")
