"""TensorRT on NVIDIA GPUs, through the TensorRT Python API (no trtexec, no pycuda).

* ONNX (from the engine cache, float32 I/O: the host normalises and quantises with :mod:`engines.graph`'s
  functions) is parsed with ``trt.OnnxParser``; the engine is built with FP16 by default and one optimisation
  profile per input resolution bucket (min/opt/max shapes, :func:`profile_for`), and cached under a key that
  names the TensorRT version, the GPU (name and compute capability) and the ONNX file's checksum. A persistent
  timing cache speeds up later builds.
* Device buffers are torch CUDA tensors; host input is staged through pinned buffers and copied asynchronously on
  the runner's CUDA stream. A recurrent model's state stays on the GPU: two buffers take turns as its input and
  output.

NOT EXERCISED ON A GPU YET: TensorRT cannot be installed on the machines this project is developed on. The pure
logic here (buckets, profiles, cache keys, error paths, fallback) is unit-tested without a GPU; the tests that
build and run an engine are marked ``gpu`` and skip without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines import cache
from engines.base import INT8_ELSEWHERE, Identity, Runner, choose_precision
from engines.errors import BackendError, PrecisionError
from engines.graph import Graph
from engines.onnx_export import cached_onnx, model_key

# LR input buckets (height, width): a video's frames or an image's tiles fall in one.
BUCKETS: list[tuple[int, int]] = [(288, 512), (544, 960), (736, 1280), (1088, 1920), (2176, 3840)]
MIN_SIDE = 16


@dataclass(frozen=True)
class Profile:
    """An optimisation profile over the inputs' N×·×H×W (batch fixed per profile)."""

    min: tuple[int, int, int]  # (N, H, W)
    opt: tuple[int, int, int]
    max: tuple[int, int, int]

    def contains(self, n: int, h: int, w: int) -> bool:
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, (n, h, w), self.max))

    def label(self) -> str:
        return f"{self.max[1]}x{self.max[2]}b{self.max[0]}"


def bucket_for(h: int, w: int) -> tuple[int, int]:
    """The smallest bucket holding an H×W input (orientation-agnostic)."""
    for bh, bw in BUCKETS:
        if (h <= bh and w <= bw) or (h <= bw and w <= bh):
            return (bh, bw) if h <= bh and w <= bw else (bw, bh)
    raise BackendError(f"input {w}×{h} is larger than TensorRT's largest profile (3840×2176); use --tile")


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def profile_for(n: int, h: int, w: int, multiple: int = 1) -> Profile:
    """min/opt/max for an input: opt is the input itself, max its bucket, min a small tile."""
    bh, bw = bucket_for(h, w)
    lo = _round_up(MIN_SIDE, multiple)
    return Profile(min=(1, lo, lo), opt=(n, h, w), max=(n, _round_up(bh, multiple), _round_up(bw, multiple)))


def gpu_identity() -> dict:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {"device": props.name, "compute_capability": f"{props.major}.{props.minor}"}


def engine_key(identity: Identity, d, profile: Profile, precision: str, trt_version: str, gpu: dict,
               onnx: str) -> dict:
    """``onnx``: the SHA-256 of the ONNX file the engine is built from."""
    return {**model_key(identity, d), "onnx": onnx, "runtime": f"tensorrt-{trt_version}", "precision": precision,
            "profile": profile.label(), "profile_shapes": [profile.min, profile.opt, profile.max], "io": "f32", **gpu}


def _import_trt():
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendError("TensorRT is not installed (pip install vsr[tensorrt])") from None
    if not torch.cuda.is_available():
        raise BackendError("TensorRT needs an NVIDIA GPU with CUDA, and none is available")
    return trt


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, model: torch.nn.Module, identity: Identity | None = None, *, precision: str = "auto"):
        super().__init__(model, identity)
        self.trt = _import_trt()
        self.precision = choose_precision(precision, ["fp32", "fp16"], "fp16",
                                          {"bf16": "the TensorRT backend builds fp16 or fp32 engines, not bf16",
                                           "int8": INT8_ELSEWHERE})
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.stream = torch.cuda.Stream()
        self.graph = Graph(model, self.d, "f32")  # its input names
        self._engines: dict[str, tuple] = {}
        self._pinned: dict[str, torch.Tensor] = {}
        self.state: list[torch.Tensor] | None = None
        self._onnx: tuple[str, str] | None = None

    def io_for(self, io: str) -> str:
        return "f32"

    def check(self, io: str = "u8") -> None:
        self.onnx()

    def onnx(self) -> tuple[str, str]:
        """(path, SHA-256) of the ONNX file the engines compile from (exported on first use)."""
        if self._onnx is None:
            path = cached_onnx(self.model, self.identity, io="f32")
            self._onnx = (str(path), cache.checksum(path))
        return self._onnx

    # -- building -----------------------------------------------------------
    def _timing_cache_path(self):
        gpu = gpu_identity()["device"].replace(" ", "_")
        return cache.engines_dir() / f"tensorrt-{self.trt.__version__}-{gpu}.timing"

    def _channels(self) -> dict[str, int]:
        d = self.d
        return {"lr": 3 * d.frames, "flows": d.flow_channels, "state": d.state_channels}

    def _build(self, folder, profile: Profile) -> None:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(Path(self.onnx()[0]).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT could not parse the ONNX model: {errors}")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            if not builder.platform_has_fast_fp16:
                raise PrecisionError("this GPU has no fast fp16: use --precision fp32 (or auto)")
            config.set_flag(trt.BuilderFlag.FP16)
        timing_path = self._timing_cache_path()
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        opt_profile = builder.create_optimization_profile()
        channels = self._channels()
        for name in self.graph.input_names():
            c = channels[name]
            opt_profile.set_shape(name, *[(n, c, h, w) for n, h, w in (profile.min, profile.opt, profile.max)])
        config.add_optimization_profile(opt_profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError("TensorRT failed to build the engine (see the messages above)")
        (folder / "engine.plan").write_bytes(bytes(plan))
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = timing_path.with_suffix(".tmp")
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
        tmp.replace(timing_path)

    def prepare(self, h: int, w: int, io: str = "u8", n: int = 1):
        ph, pw = self.d.padded(h, w)
        profile = profile_for(n, ph, pw, self.d.size_multiple)
        label = profile.label()
        if label in self._engines:
            return self._engines[label]
        key = engine_key(self.identity, self.d, profile, self.precision, self.trt.__version__, gpu_identity(),
                         self.onnx()[1])
        entry, hit = cache.get_or_build(key, lambda folder: self._build(folder, profile), name=self.identity.label)
        runtime = self.trt.Runtime(self.logger)
        engine = runtime.deserialize_cuda_engine((entry / "engine.plan").read_bytes())
        if engine is None:
            raise BackendError(f"cached TensorRT engine {entry.name} could not be loaded; run `vsr engines --clear`")
        self.last_build = (str(entry), hit)
        self._engines[label] = (profile, engine, engine.create_execution_context())
        return self._engines[label]

    # -- running ------------------------------------------------------------
    def _to_device(self, name: str, a: np.ndarray) -> torch.Tensor:
        """Host → GPU through a reused pinned buffer, asynchronously on our stream."""
        pinned = self._pinned.get(name)
        if pinned is None or tuple(pinned.shape) != a.shape:
            pinned = self._pinned[name] = torch.empty(a.shape, dtype=torch.float32, pin_memory=True)
        pinned.copy_(torch.from_numpy(a))
        with torch.cuda.stream(self.stream):
            return pinned.to("cuda", non_blocking=True)

    def _start(self, io: str, inputs: list[np.ndarray], reset: bool):
        n, _, h, w = inputs[0].shape
        profile, _, context = self.prepare(h, w, n=n)
        if not profile.contains(n, h, w):
            raise BackendError(f"input {w}×{h} (batch {n}) is outside the engine's profile {profile}")
        names = self.graph.input_names()
        tensors = {name: self._to_device(name, a) for name, a in zip(names, inputs)}
        out = torch.empty((n, 3, h * self.scale, w * self.scale), dtype=torch.float32, device="cuda")
        outputs = {"sr": out}
        if self.d.recurrent:
            shape = (n, self.d.state_channels, h, w)
            if reset or self.state is None or tuple(self.state[0].shape) != shape:
                self.state = [torch.zeros(shape, device="cuda"), torch.empty(shape, device="cuda")]
            tensors["state"], outputs["state_out"] = self.state
        for name, t in {**tensors, **outputs}.items():
            if name in tensors:
                context.set_input_shape(name, tuple(t.shape))
            context.set_tensor_address(name, t.data_ptr())
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise BackendError("TensorRT inference failed")
        if self.d.recurrent:
            self.state.reverse()  # this frame's output state is the next frame's input
        return out

    def _finish(self, out: torch.Tensor) -> np.ndarray:
        self.stream.synchronize()
        return out.cpu().numpy()
