"""OpenVINO on the CPU: ONNX → IR, compiled per input shape, compiled blobs kept in the engine cache.

Precision: bf16 where the CPU has it (AVX-512 BF16 / AMX), else fp32;
``--precision`` overrides. CPU pinning is off so OpenVINO's threads share the
cores with the decoder and encoder instead of fighting them.
"""

from __future__ import annotations

import io
import os
import platform

import numpy as np
import torch

from engines import cache
from engines.base import BackendError, Runner
from engines.onnx_export import cached_onnx, model_key

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _core():
    try:
        import openvino as ov
    except ImportError:
        raise BackendError("OpenVINO is not installed (pip install openvino)") from None
    return ov, ov.Core()


def best_precision(core) -> str:
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in caps else "fp32"


def supported_precisions(core) -> set[str]:
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    out = {"fp32"}
    if "BF16" in caps:
        out.add("bf16")
    if "FP16" in caps:
        out.add("fp16")
    return out


class OpenVINORunner(Runner):
    name = "openvino"

    def __init__(self, model: torch.nn.Module, *, precision: str = "auto", weights_id: str = "",
                 shape: tuple[int, int] | None = None, threads: int = 0, batch: int = 1, frame_io: bool = False):
        super().__init__(model)
        self.ov, self.core = _core()
        if precision == "auto":
            precision = best_precision(self.core)
        if precision not in supported_precisions(self.core):
            raise BackendError(f"{precision} is not supported by this CPU for OpenVINO; use --precision fp32")
        self.precision = precision
        self.model = model
        self.weights_id = weights_id
        self.threads = threads
        # the video path keeps `streams` frames in flight (each stream runs on its share of the cores),
        # so a frame's inference overlaps another's and the encoder's bursts don't leave cores idle
        self.streams = max(1, int(os.environ.get("VSR_OV_STREAMS", "2")))
        self.depth = self.streams
        self._next = 0
        self._compiled: dict[tuple[int, ...], object] = {}
        self.last_build: tuple[str, bool] | None = None  # (entry path, came from cache)
        if shape is not None:
            m = self.size_multiple
            h, w = -(-shape[0] // m) * m, -(-shape[1] // m) * m  # what run_frames/run_padded will feed it
            self.prepare((batch, self.in_channels, h, w), frame_io=frame_io and not self.flow_input)

    def key(self, shape: tuple[int, ...], frame_io: bool = False) -> dict:
        return {**model_key(self.model, self.weights_id), "name": getattr(self.model, "arch", "model"),
                "runtime": f"openvino-{self.ov.__version__.split('-')[0]}", "precision": self.precision,
                "shape": list(shape), "device": cpu_name(), "io": "u8-frames" if frame_io else "f32"}

    def _config(self, frame_io: bool = False) -> dict:
        cfg = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[self.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,
        }
        if frame_io and self.streams > 1:
            cfg.update({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.streams})
        if self.threads:
            cfg["INFERENCE_NUM_THREADS"] = self.threads
        return cfg

    def prepare(self, shape: tuple[int, ...], frame_io: bool = False):
        """Compile (or load from the cache) the engine for an input shape (N, C, H, W)."""
        shape = tuple(int(s) for s in shape)
        if (shape, frame_io) in self._compiled:
            return self._compiled[(shape, frame_io)]

        def build(folder):
            onnx_path = cached_onnx(self.model, self.weights_id, frame_io=frame_io)
            m = self.core.read_model(str(onnx_path))
            if frame_io:  # one N×H×W×3 input per frame
                n, _, h, w = shape
                m.reshape({i: self.ov.PartialShape([n, h, w, 3]) for i in m.inputs})
            else:
                m.reshape({m.inputs[0]: self.ov.PartialShape(list(shape))})
            compiled = self.core.compile_model(m, "CPU", self._config(frame_io))
            (folder / "model.blob").write_bytes(compiled.export_model().getvalue())

        try:
            entry, hit = cache.get_or_build(self.key(shape, frame_io), build)
            blob = io.BytesIO((entry / "model.blob").read_bytes())
            compiled = self.core.import_model(blob, "CPU", self._config(frame_io))
        except BackendError:
            raise
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "unknown error"
            raise BackendError(f"OpenVINO could not compile the model: {first}") from None
        self.last_build = (str(entry), hit)
        requests = [compiled.create_infer_request() for _ in range(self.depth if frame_io else 1)]
        self._compiled[(shape, frame_io)] = (compiled, requests)
        return self._compiled[(shape, frame_io)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model_input(x)
        _, (request,) = self.prepare(tuple(x.shape))
        request.infer({0: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    def run_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        """uint8 frames straight into the graph and a uint8 frame out (engines/frame_io.py)."""
        if self.flow_input:  # the flows are computed on the host: the float path
            return super().run_frames(frames)
        return self.collect(self.submit(frames))

    def submit(self, frames: list[np.ndarray]):
        if self.flow_input:
            return super().run_frames(frames)
        h, w = frames[0].shape[:2]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            frames = [np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge") for f in frames]
        _, requests = self.prepare((1, self.in_channels, h + ph, w + pw), frame_io=True)
        request = requests[self._next % len(requests)]
        self._next += 1
        request.start_async({i: f[None] for i, f in enumerate(frames)})  # inputs are copied in
        return request, h, w

    def collect(self, handle) -> np.ndarray:
        if self.flow_input:
            return handle
        request, h, w = handle
        request.wait()
        out = request.get_output_tensor(0).data[0]
        return np.array(out[: h * self.scale, : w * self.scale])  # a copy: the request's buffer is reused
