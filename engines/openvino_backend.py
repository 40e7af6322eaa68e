"""OpenVINO on the CPU: ONNX → IR, compiled per input shape, compiled blobs kept in the engine cache.

Precision: bf16 where the CPU has it natively (AVX-512 BF16 / AMX), else fp32; ``--precision`` overrides, within
what the CPU runs natively (OpenVINO offers bf16 on AVX2 CPUs too, where it quietly runs fp32). CPU pinning is off
so OpenVINO's threads share the cores with the decoder and encoder instead of fighting them.

Engines are keyed by the checksum of the ONNX file they compile from, besides the model's own key.

int8 (:mod:`engines.quantise`): the ONNX graph read as an OpenVINO model, quantised with NNCF on the calibration
frames the caller gives, and kept in the engine cache as IR (keyed by the ONNX file, NNCF's settings and the
calibration data's hash); each shape compiles from that IR, its checksum in the engine's key. ``auto`` picks int8
only where the caller's calibration says its measured loss allows it (``Calibration.auto``).

Stateless models keep ``streams`` frames in flight (each stream on its share of the cores), so one frame's
inference overlaps another's and the encoder's bursts don't leave cores idle. A recurrent model needs frame t-1's
state for frame t, so it runs one frame at a time on all cores; its state never leaves OpenVINO's memory as a
copy: two buffers take turns as the state input and the state output.
"""

from __future__ import annotations

import io as _io
import os

import numpy as np
import torch

from engines import cache, cpu
from engines.base import Identity, Runner, _pad, choose_precision
from engines.cpu import cpu_name
from engines.errors import BackendError, PrecisionError
from engines.graph import PEAK, normalise
from engines.onnx_export import cached_onnx, model_key
from engines.quantise import Calibration

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}  # int8: the rest runs in fp32


def _core():
    try:
        import openvino as ov
    except ImportError:
        raise BackendError("OpenVINO is not installed (pip install openvino)") from None
    return ov, ov.Core()


def supported_precisions(core) -> set[str]:
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return ({"fp32"} | ({"bf16"} if "BF16" in caps else set()) | ({"fp16"} if "FP16" in caps else set())
            | ({"int8"} if "INT8" in caps else set()))


class _Compiled:
    """One compiled shape: its infer requests and, for a recurrent model, the two state buffers."""

    def __init__(self, ov, compiled, requests: int, state_shape: tuple[int, ...] | None):
        self.compiled = compiled
        self.requests = [compiled.create_infer_request() for _ in range(requests)]
        self.next = 0
        self.state = None
        if state_shape is not None:
            self.buffers = [np.zeros(state_shape, np.float32) for _ in range(2)]
            self.tensors = [ov.Tensor(b, shared_memory=True) for b in self.buffers]


class OpenVINORunner(Runner):
    name = "openvino"

    def __init__(self, model: torch.nn.Module, identity: Identity | None = None, *, precision: str = "auto",
                 threads: int = 0, calibration: Calibration | None = None):
        super().__init__(model, identity)
        self.ov, self.core = _core()
        offered = supported_precisions(self.core)
        native = cpu.native_precisions()
        runs = [p for p in native if p in offered]
        version = self.ov.__version__.split("-")[0]
        lacks = {**cpu.LACKS, **{p: f"OpenVINO {version} offers no {p} on this CPU"
                                 for p in native + ["int8"] if p not in offered}}
        self.calibration = calibration
        if "int8" in offered:
            from engines import quantise

            why = quantise.unavailable() or (None if calibration is not None else
                                             "int8 needs frames to calibrate on (none were given for this model)")
            if why:
                lacks["int8"] = why
            else:
                runs.append("int8")
        measured = calibration.auto if calibration is not None else ""
        auto = measured if measured in runs else ("bf16" if "bf16" in runs else "fp32")
        self.precision = choose_precision(precision, runs, auto, lacks)
        self.threads = threads
        self.streams = 1 if self.d.recurrent else max(1, int(os.environ.get("VSR_OV_STREAMS", "2")))
        self.depth = self.streams
        self._compiled: dict[tuple, _Compiled] = {}
        self._onnx: dict[str, tuple[str, str]] = {}
        self._int8: dict[str, tuple[str, str]] = {}

    def io_for(self, io: str) -> str:
        return "u8" if io == "u8" else "f32"  # no 16-bit tensors in the exported graph: the host converts

    def onnx(self, io: str) -> tuple[str, str]:
        """(path, SHA-256) of the ONNX file the engines for ``io`` compile from (exported on first use)."""
        if io not in self._onnx:
            path = cached_onnx(self.model, self.identity, io=io)
            self._onnx[io] = (str(path), cache.checksum(path))
        return self._onnx[io]

    def int8_key(self) -> dict:
        """What names an int8 model besides the ONNX file it is made from: NNCF's settings, the calibration."""
        from engines import quantise

        return {"settings": quantise.settings(self.calibration.first_convolutions),
                "calibration": self.calibration.named()}

    def int8_ir(self, io: str) -> tuple[str, str]:
        """(path, checksum) of the quantised IR for ``io`` (quantised on first use, then from the cache)."""
        if io not in self._int8:
            from engines import quantise

            key = {**model_key(self.identity, self.d), "onnx": self.onnx(io)[1],
                   "runtime": f"openvino-{self.ov.__version__.split('-')[0]}", "precision": "int8", "io": io,
                   "int8": self.int8_key()}

            def build(folder):
                if self.calibration.say is not None:  # a minute or two, once per model and input format
                    self.calibration.say(f"quantising {self.identity.label} to int8 once (NNCF, calibrating on "
                                         f"{self.calibration.source}); later runs load it from the cache")
                m = self.core.read_model(self.onnx(io)[0])
                try:
                    q = quantise.quantise(m, self.calibration, lambda s: self._graph_inputs(s, io))
                except PrecisionError:
                    raise
                except Exception as e:  # noqa: BLE001 - NNCF raises many kinds; one line for the user
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise BackendError(f"NNCF could not quantise the model to int8: {first}") from None
                self.ov.save_model(q, str(folder / "model.xml"), compress_to_fp16=False)

            entry, _ = cache.get_or_build(key, build, name=self.identity.label, hold=True)
            self._int8[io] = (str(entry / "model.xml"),
                              cache.checksum(entry / "model.xml") + cache.checksum(entry / "model.bin"))
        return self._int8[io]

    def _graph_inputs(self, sample: list, io: str) -> list[np.ndarray]:
        """A calibration sample (8-bit frames, [flows], [state]) as this graph's inputs, padded as frames are."""
        d = self.d
        h, w = sample[0].shape[1:3]
        ph, pw = d.padded(h, w)
        frames = [_pad(np.ascontiguousarray(f[0]), ph, pw, (0, 1)) for f in sample[: d.frames]]
        rest = [np.ascontiguousarray(_pad(a[0], ph, pw, (1, 2)), dtype=np.float32)[None] for a in sample[d.frames:]]
        if io == "f32":
            return [normalise([torch.from_numpy(f)[None] for f in frames], PEAK["u8"]).numpy(), *rest]
        return [f[None] for f in frames] + rest

    def key(self, shape: tuple[int, ...], io: str) -> dict:
        k = {**model_key(self.identity, self.d), "onnx": self.onnx(io)[1],
             "runtime": f"openvino-{self.ov.__version__.split('-')[0]}", "precision": self.precision,
             "shape": list(shape), "device": cpu_name(), "io": io, "streams": self.streams}
        if self.precision == "int8":
            k.update(int8=self.int8_key(), ir=self.int8_ir(io)[1])
        return k

    def _config(self) -> dict:
        cfg = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[self.precision], "PERFORMANCE_HINT": "LATENCY",
               "ENABLE_CPU_PINNING": False}
        if self.streams > 1:
            cfg.update({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.streams})
        if self.threads:
            cfg["INFERENCE_NUM_THREADS"] = self.threads
        return cfg

    def check(self, io: str = "u8") -> None:
        self.onnx(self.io_for(io))
        if self.precision == "int8":
            self.int8_ir(self.io_for(io))

    def _input_shapes(self, io: str, n: int, h: int, w: int) -> list[list[int]]:
        d = self.d
        shapes = [[n, h, w, 3]] * d.frames if io != "f32" else [[n, 3 * d.frames, h, w]]
        if d.flow_channels:
            shapes.append([n, d.flow_channels, h, w])
        if d.recurrent:
            shapes.append([n, d.state_channels, h, w])
        return shapes

    def prepare(self, h: int, w: int, io: str = "u8") -> _Compiled:
        """Compile (or load from the cache) the engine for an h×w input (padded as the runner pads it)."""
        graph_io = self.io_for(io)
        ph, pw = self.d.padded(h, w)
        shape = (1, ph, pw)
        if (graph_io, shape) in self._compiled:
            return self._compiled[(graph_io, shape)]
        shapes = self._input_shapes(graph_io, *shape)

        def build(folder):
            source = self.int8_ir(graph_io) if self.precision == "int8" else self.onnx(graph_io)
            m = self.core.read_model(source[0])
            m.reshape({inp: self.ov.PartialShape(s) for inp, s in zip(m.inputs, shapes)})
            compiled = self.core.compile_model(m, "CPU", self._config())
            (folder / "model.blob").write_bytes(compiled.export_model().getvalue())

        try:
            entry, hit = cache.get_or_build(self.key(shape, graph_io), build, name=self.identity.label)
            compiled = self.core.import_model(_io.BytesIO((entry / "model.blob").read_bytes()), "CPU", self._config())
        except BackendError:
            raise
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "unknown error"
            raise BackendError(f"OpenVINO could not compile the model: {first}") from None
        self.last_build = (str(entry), hit)
        c = _Compiled(self.ov, compiled, self.depth, tuple(shapes[-1]) if self.d.recurrent else None)
        self._compiled[(graph_io, shape)] = c
        return c

    def _start(self, io: str, inputs: list[np.ndarray], reset: bool):
        h, w = (inputs[0].shape[1:3] if io != "f32" else inputs[0].shape[2:4])
        c = self.prepare(h, w, "u8" if io == "u8" else "u16")
        request = c.requests[c.next % len(c.requests)]
        c.next += 1
        if self.d.recurrent:  # state in from one buffer, out to the other; they swap every frame
            if reset or c.state is None:
                c.buffers[0].fill(0.0)
                c.state = 0
            request.set_input_tensor(len(inputs), c.tensors[c.state])
            request.set_output_tensor(1, c.tensors[1 - c.state])
            c.state = 1 - c.state
        request.start_async({i: a for i, a in enumerate(inputs)})  # inputs are copied in
        return request

    def _finish(self, request) -> np.ndarray:
        request.wait()
        return request.get_output_tensor(0).data
