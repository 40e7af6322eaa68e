"""TensorRT on NVIDIA GPUs, through the TensorRT Python API (no trtexec, no pycuda).

* ONNX (from the engine cache) is parsed with ``trt.OnnxParser``; the engine is
  built with FP16 by default and one optimisation profile per input
  resolution bucket (min/opt/max shapes, :func:`profile_for`), and cached under
  a key that names the TensorRT version and the GPU (name and compute
  capability). A persistent timing cache speeds up later builds.
* Device buffers are torch CUDA tensors; host input is staged through a pinned
  buffer and copied asynchronously on the runner's CUDA stream.

NOT EXERCISED ON A GPU YET: TensorRT cannot be installed on the machines this
project is developed on. The pure logic here (buckets, profiles, cache keys,
error paths, fallback) is unit-tested without a GPU; the tests that build and
run an engine are marked ``gpu`` and skip without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engines import cache
from engines.base import BackendError, Runner
from engines.onnx_export import INPUT, OUTPUT, cached_onnx, model_key

# LR input buckets (height, width): a video's frames or an image's tiles fall in one.
BUCKETS: list[tuple[int, int]] = [(288, 512), (544, 960), (736, 1280), (1088, 1920), (2176, 3840)]
MIN_SIDE = 16


@dataclass(frozen=True)
class Profile:
    """An optimisation profile over N×C×H×W (batch fixed per profile)."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def contains(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))

    def label(self) -> str:
        return f"{self.max[2]}x{self.max[3]}b{self.max[0]}"


def bucket_for(h: int, w: int) -> tuple[int, int]:
    """The smallest bucket holding an H×W input (orientation-agnostic)."""
    for bh, bw in BUCKETS:
        if (h <= bh and w <= bw) or (h <= bw and w <= bh):
            return (bh, bw) if h <= bh and w <= bw else (bw, bh)
    raise BackendError(f"input {w}×{h} is larger than TensorRT's largest profile (3840×2176); use --tile")


def profile_for(shape: tuple[int, int, int, int], multiple: int = 1) -> Profile:
    """min/opt/max for an input: opt is the shape itself, max its bucket, min a small tile."""
    n, c, h, w = shape
    bh, bw = bucket_for(h, w)
    bh, bw = _round_up(bh, multiple), _round_up(bw, multiple)
    lo = _round_up(MIN_SIDE, multiple)
    return Profile(min=(1, c, lo, lo), opt=(n, c, h, w), max=(n, c, bh, bw))


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def gpu_identity() -> dict:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {"device": props.name, "compute_capability": f"{props.major}.{props.minor}"}


def engine_key(model, weights_id: str, profile: Profile, precision: str, trt_version: str, gpu: dict) -> dict:
    return {**model_key(model, weights_id), "name": getattr(model, "arch", "model"),
            "runtime": f"tensorrt-{trt_version}", "precision": precision,
            "profile": profile.label(), "profile_shapes": [profile.min, profile.opt, profile.max], **gpu}


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

    def __init__(self, model: torch.nn.Module, *, precision: str = "auto", weights_id: str = "",
                 shape: tuple[int, int] | None = None, batch: int = 1):
        super().__init__(model)
        self.trt = _import_trt()
        if precision == "auto":
            precision = "fp16"
        if precision == "bf16":
            raise BackendError("bf16 is not offered for TensorRT here; use fp16 or fp32")
        self.precision = precision
        self.model, self.weights_id = model, weights_id
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.stream = torch.cuda.Stream()
        self._engines: dict[str, tuple] = {}
        self._pinned: torch.Tensor | None = None
        self.last_build: tuple[str, bool] | None = None
        if shape is not None:
            self.prepare((batch, self.in_channels, *shape))

    # -- building -----------------------------------------------------------
    def _timing_cache_path(self):
        return cache.engines_dir() / f"tensorrt-{self.trt.__version__}-{gpu_identity()['device'].replace(' ', '_')}.timing"

    def _build(self, folder, profile: Profile) -> None:
        trt = self.trt
        onnx_path = cached_onnx(self.model, self.weights_id)
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT could not parse the ONNX model: {errors}")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            if not builder.platform_has_fast_fp16:
                raise BackendError("this GPU has no fast fp16; use --precision fp32")
            config.set_flag(trt.BuilderFlag.FP16)
        timing_path = self._timing_cache_path()
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        opt_profile = builder.create_optimization_profile()
        opt_profile.set_shape(INPUT, profile.min, profile.opt, profile.max)
        config.add_optimization_profile(opt_profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError("TensorRT failed to build the engine (see the messages above)")
        (folder / "engine.plan").write_bytes(bytes(plan))
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = timing_path.with_suffix(".tmp")
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
        tmp.replace(timing_path)

    def prepare(self, shape: tuple[int, ...]):
        profile = profile_for(tuple(shape), self.size_multiple)  # type: ignore[arg-type]
        label = profile.label()
        if label in self._engines:
            return self._engines[label]
        key = engine_key(self.model, self.weights_id, profile, self.precision, self.trt.__version__, gpu_identity())
        entry, hit = cache.get_or_build(key, lambda d: self._build(d, profile))
        runtime = self.trt.Runtime(self.logger)
        engine = runtime.deserialize_cuda_engine((entry / "engine.plan").read_bytes())
        if engine is None:
            raise BackendError(f"cached TensorRT engine {entry.name} could not be loaded; run `vsr engines --clear`")
        context = engine.create_execution_context()
        self.last_build = (str(entry), hit)
        self._engines[label] = (profile, engine, context)
        return self._engines[label]

    # -- running ------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_device(self.to_device(self.model_input(x))).float().cpu()

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Host → GPU through a reused pinned buffer, asynchronously on our stream."""
        if x.is_cuda:
            return x
        if self._pinned is None or self._pinned.shape != x.shape:
            self._pinned = torch.empty(x.shape, dtype=torch.float32, pin_memory=True)
        self._pinned.copy_(x)
        with torch.cuda.stream(self.stream):
            return self._pinned.to("cuda", non_blocking=True)

    def run_device(self, x: torch.Tensor) -> torch.Tensor:
        """Run on a CUDA tensor, returning a CUDA tensor (no host round trip)."""
        profile, engine, context = self.prepare(tuple(x.shape))
        if not profile.contains(tuple(x.shape)):
            raise BackendError(f"input shape {tuple(x.shape)} is outside the engine's profile {profile}")
        n, _, h, w = x.shape
        out = torch.empty((n, 3, h * self.scale, w * self.scale), dtype=torch.float32, device=x.device)
        x = x.contiguous().float()
        context.set_input_shape(INPUT, tuple(x.shape))
        context.set_tensor_address(INPUT, x.data_ptr())
        context.set_tensor_address(OUTPUT, out.data_ptr())
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise BackendError("TensorRT inference failed")
        self.stream.synchronize()
        return out
