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


def export_onnx(model: torch.nn.Module, path: str | Path, *, example_hw: tuple[int, int] = (64, 64)) -> Path:
    """Write ``model`` as ONNX at ``path``; input ``lr`` N×(3·frames)×H×W, output ``sr``."""
    path = Path(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    frames, multiple = int(getattr(model, "frames", 1)), int(getattr(model, "size_multiple", 1))
    h, w = (max(example_hw[0] // multiple, 2) * multiple, max(example_hw[1] // multiple, 2) * multiple)
    x = torch.rand(2, 3 * frames, h, w)
    dims = {
        0: torch.export.Dim("batch", min=1, max=256),
        2: torch.export.Dim.DYNAMIC,
        3: torch.export.Dim.DYNAMIC,
    }
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_logs():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (x,), dynamo=True, opset_version=OPSET, input_names=[INPUT], output_names=[OUTPUT],
                dynamic_shapes={"x": dims}, verbose=False,
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


def cached_onnx(model: torch.nn.Module, weights_id: str) -> Path:
    """The model's ONNX file from the engine cache, exported on first use."""
    key = {**model_key(model, weights_id), "runtime": "onnx", "opset": OPSET, "torch": torch.__version__.split("+")[0]}
    entry, _ = cache.get_or_build(key, lambda d: export_onnx(model, d / "model.onnx"))
    return entry / "model.onnx"
