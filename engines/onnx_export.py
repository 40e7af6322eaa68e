"""Export a vsr model to ONNX with dynamic batch, height and width (opset 18, torch.export based)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from engines import cache
from engines.base import BackendError
from vsr.models import in_channels_of

OPSET = 18
INPUT, OUTPUT = "lr", "sr"


def model_key(model: torch.nn.Module, weights_id: str) -> dict:
    """The part of every engine key that names the model itself."""
    return {
        "weights": weights_id,
        "arch": getattr(model, "arch", type(model).__name__),
        "hparams": getattr(model, "hparams", {}),
        "scale": int(model.scale),
        "frames": int(getattr(model, "frames", 1)),
    }


def export_onnx(model: torch.nn.Module, path: str | Path, *, example_hw: tuple[int, int] = (64, 64),
                frame_io: bool = False) -> Path:
    """Write ``model`` as ONNX at ``path``: input ``lr`` N×(3·frames)×H×W float (plus the flows of a
    ``flow_input`` model: ``in_channels``), output ``sr``.

    With ``frame_io`` the graph takes one N×H×W×3 uint8 input per frame (``f0``, ``f1``, …) and
    returns N×sH×sW×3 uint8 (see :mod:`engines.frame_io`).
    """
    path = Path(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    frames, multiple = int(getattr(model, "frames", 1)), int(getattr(model, "size_multiple", 1))
    h, w = (max(example_hw[0] // multiple, 2) * multiple, max(example_hw[1] // multiple, 2) * multiple)
    batch = torch.export.Dim("batch", min=1, max=256)
    if frame_io:
        from engines.frame_io import FrameIO

        model = FrameIO(model)
        args = tuple(torch.randint(0, 256, (2, h, w, 3), dtype=torch.uint8) for _ in range(frames))
        names = [f"f{i}" for i in range(frames)]
        dynamic = {"frames": tuple({0: batch, 1: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC}
                                   for _ in range(frames))}
    else:
        args = (torch.rand(2, in_channels_of(model), h, w),)
        names = [INPUT]
        dynamic = {"x": {0: batch, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}}
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_logs():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, args, dynamo=True, opset_version=OPSET, input_names=names, output_names=[OUTPUT],
                dynamic_shapes=dynamic, verbose=False,
            )
            program.save(str(path))
    except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; one message for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BackendError(f"ONNX export of {getattr(model, 'arch', type(model).__name__)} failed: {first}") from None
    return path


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


def cached_onnx(model: torch.nn.Module, weights_id: str, frame_io: bool = False) -> Path:
    """The model's ONNX file from the engine cache, exported on first use."""
    key = {**model_key(model, weights_id), "runtime": "onnx", "opset": OPSET, "torch": torch.__version__.split("+")[0],
           "io": "u8-frames" if frame_io else "f32"}
    entry, _ = cache.get_or_build(key, lambda d: export_onnx(model, d / "model.onnx", frame_io=frame_io))
    return entry / "model.onnx"
