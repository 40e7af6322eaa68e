"""Export a model's graph (:mod:`engines.graph`) to ONNX with dynamic batch, height and width (opset 18,
torch.export based); exported files live in the engine cache."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import torch

from engines import cache
from engines.base import Identity
from engines.descriptor import Descriptor
from engines.errors import BackendError
from engines.graph import Graph

OPSET = 18


def model_key(identity: Identity, d: Descriptor) -> dict:
    """The part of every engine key that names the model itself: its weights, how it was built, the code that
    makes its graph (:mod:`engines.code`)."""
    return {"weights": identity.weights, "arch": identity.arch, "hparams": identity.hparams, "code": identity.code,
            "scale": d.scale, "frames": d.frames, "flow_channels": d.flow_channels, "state_channels": d.state_channels}


def example_inputs(d: Descriptor, io: str, h: int, w: int, batch: int = 2) -> tuple[torch.Tensor, ...]:
    if io == "f32":
        xs = [torch.rand(batch, 3 * d.frames, h, w)]
    else:
        xs = [torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8) for _ in range(d.frames)]
    if d.flow_channels:
        xs.append(torch.randn(batch, d.flow_channels, h, w))
    if d.recurrent:
        xs.append(torch.rand(batch, d.state_channels, h, w))
    return tuple(xs)


def export_onnx(model: torch.nn.Module, path: str | Path, *, io: str = "u8", example_hw: tuple[int, int] = (64, 64)
                ) -> Path:
    """Write ``model`` wrapped in its :class:`engines.graph.Graph` as ONNX at ``path``."""
    if io not in ("u8", "f32"):
        raise BackendError(f"ONNX graphs take uint8 or float32 frames, not {io}")
    path = Path(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    d = Descriptor.of(model)
    graph = Graph(model, d, io)
    h, w = (max(example_hw[0] // d.size_multiple, 2) * d.size_multiple,
            max(example_hw[1] // d.size_multiple, 2) * d.size_multiple)
    args = example_inputs(d, io, h, w)
    batch, dyn = torch.export.Dim("batch", min=1, max=256), torch.export.Dim.DYNAMIC
    spatial = [{0: batch, 1: dyn, 2: dyn} if (io != "f32" and i < d.frames) else {0: batch, 2: dyn, 3: dyn}
               for i in range(len(args))]
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(_Sink()), _quiet_logs():
            warnings.simplefilter("ignore")
            # torch.export first, on its own: a model it cannot trace fails here with an exception, where the ONNX
            # exporter's own fallbacks have crashed the process outright (spandrel's SPAN)
            exported = torch.export.export(graph, args, dynamic_shapes={"inputs": tuple(spatial)})
            program = torch.onnx.export(exported, dynamo=True, opset_version=OPSET, input_names=graph.input_names(),
                                        output_names=graph.output_names(), verbose=False)
            program.save(str(path))
    except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; one message for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BackendError(f"ONNX export of {getattr(model, 'arch', type(model).__name__)} failed: {first}") from None
    return path


class _Sink:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _quiet_logs():
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def cached_onnx(model: torch.nn.Module, identity: Identity, io: str = "u8") -> Path:
    """The model's ONNX file from the engine cache, exported on first use (and kept while this process runs:
    engines for other input sizes compile from it). Its checksum is ``cache.checksum(path)``."""
    identity = identity.with_code(model)
    key = {**model_key(identity, Descriptor.of(model)), "runtime": "onnx", "opset": OPSET,
           "torch": torch.__version__.split("+")[0], "io": io}
    entry, _ = cache.get_or_build(key, lambda d: export_onnx(model, d / "model.onnx", io=io), name=identity.label,
                                  hold=True)
    return entry / "model.onnx"
