"""int8 engines: the model's OpenVINO IR quantised after training with NNCF, calibrated on frames its caller gives.

NNCF as its authors intend for a CPU convnet: ``nncf.quantize`` on the OpenVINO model, the performance preset
(weights per channel, activations per tensor, both symmetric), fast bias correction, no SmoothQuant (``model_type``
left unset: it is for transformers). Overflow fix (7-bit weights in the first layer, for CPUs whose int8 dot
products saturate) only where the CPU lacks VNNI or AMX. Kept in floating point, measured on vsr's models
(benchmarks/int8.py, docs/engines.md), each worth several dB of int8-against-fp32 PSNR:

* the output stage: every operation after the last convolutions (the bicubic skip, the sum before the pixel
  shuffle, the shuffle, the conversion to integers): 8-bit steps there are the output's own rounding, doubled;
* the input stage: every operation before the first convolutions (NNCF would quantise the subtractions that make
  the flows' sub-pixel remainders and the neighbours' differences), and by default those convolutions too: they
  read frames, remainders, differences and a state, ranges one per-tensor scale serves badly. Where measurement
  allows, the caller has them quantised (``first_convolutions="int8"``): in a recurrent model the first
  convolution reads the state too and is its largest layer;
* the residual sums: the running total of the skip connections carries the picture from block to block.

The non-quantised operations run in fp32 (an int8 engine with bf16 elsewhere was no faster and lost bf16's
accuracy).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines import cpu
from engines.errors import PrecisionError


@dataclass
class Calibration:
    """Frames to calibrate a model's int8 engine on, and their name in engine keys.

    ``samples()`` gives the graph's inputs as a runner passes them for 8-bit frames: per sample, the window's
    1×H×W×3 uint8 frames (oldest first), then 1×4×H×W float32 flows and a 1×C×H×W float32 state where the model
    takes them. ``key()`` names the data and how it was made (a hash of its source and settings): it is part of
    the engine key, so other calibration data is another engine. ``first_convolutions``: "float" or "int8" (the
    module docstring). ``auto``: the precision ``--precision auto`` picks for this model where it runs (its caller
    measured what each costs), "" for the backend's own choice."""

    key: Callable[[], dict]
    samples: Callable[[], list[list[np.ndarray]]]
    auto: str = ""
    first_convolutions: str = "float"
    source: str = ""  # where the frames come from, in words
    say: Callable[[str], None] | None = field(default=None, compare=False)  # told once before quantising
    _key: dict | None = field(default=None, repr=False)

    def named(self) -> dict:
        if self._key is None:
            self._key = self.key()
        return self._key


def unavailable() -> str | None:
    """Why int8 can't be built here (None: it can)."""
    if importlib.util.find_spec("nncf") is None:
        return "int8 needs NNCF to quantise the model (pip install nncf)"
    return None


def settings(first_convolutions: str = "float") -> dict:
    """How the model is quantised: part of every int8 engine's key (this file's hash too: what it keeps in float)."""
    import nncf

    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    kept = ["input stage" if first_convolutions == "float" else "input stage but its convolutions", "output stage",
            "residual sums"]
    return {"nncf": nncf.__version__.split("+")[0], "code": code, "preset": "performance",
            "fast_bias_correction": True, "overflow_fix": "disable" if cpu.has_vnni() else "first_layer",
            "float": kept, "elsewhere": "f32"}


def _graph_ends(model) -> tuple[set[str], set[str]]:
    """(names of ops with a convolution upstream, names of ops with a convolution downstream), data edges only."""
    ops = model.get_ordered_ops()
    up: set[str] = set()
    for op in ops:
        feeds = [i.get_source_output().get_node() for i in op.inputs()]
        if any(_is_conv(f) or f.get_friendly_name() in up for f in feeds):
            up.add(op.get_friendly_name())
    down: set[str] = set()
    for op in reversed(ops):
        users = [t.get_node() for out in op.outputs() for t in out.get_target_inputs()]
        if any(_is_conv(u) or u.get_friendly_name() in down for u in users):
            down.add(op.get_friendly_name())
    return up, down


def _is_conv(op) -> bool:
    return op.get_type_name() in ("Convolution", "GroupConvolution")


def kept_in_float(model, first_convolutions: str = "float") -> list[str]:
    """The names of the ops whose inputs stay unquantised (the module docstring says which and why)."""
    if first_convolutions not in ("float", "int8"):
        raise ValueError(f"first_convolutions: float or int8, not {first_convolutions!r}")
    up, down = _graph_ends(model)
    keep = []
    for op in model.get_ordered_ops():
        name, kind = op.get_friendly_name(), op.get_type_name()
        if kind in ("Parameter", "Result", "Constant"):
            continue
        feeds = [i.get_source_output().get_node() for i in op.inputs()]
        first = name not in up and _is_conv(op)
        ends = (name not in up and (first_convolutions == "float" or not first)) or name not in down
        residual = kind == "Add" and all(f.get_type_name() != "Constant" for f in feeds)  # a sum, not a bias
        if ends or residual:
            keep.append(name)
    return keep


def quantise(model, calibration: Calibration, to_graph_inputs: Callable[[list[np.ndarray]], list[np.ndarray]]):
    """``model`` (an ``ov.Model``) quantised to int8 on ``calibration``'s samples, each made into the graph's
    inputs by ``to_graph_inputs``. NNCF's progress and log lines are kept off the user's terminal."""
    why = unavailable()
    if why:
        raise PrecisionError(why)
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    samples = [to_graph_inputs(s) for s in calibration.samples()]
    if not samples:
        raise PrecisionError("int8 needs frames to calibrate on, and none were made")
    fix = OverflowFix.DISABLE if cpu.has_vnni() else OverflowFix.FIRST_LAYER
    with _quiet():
        return nncf.quantize(model, nncf.Dataset(samples, tuple), preset=nncf.QuantizationPreset.PERFORMANCE,
                             subset_size=len(samples), fast_bias_correction=True,
                             ignored_scope=nncf.IgnoredScope(names=kept_in_float(model, calibration.first_convolutions),
                                                             validate=False),
                             advanced_parameters=AdvancedQuantizationParameters(overflow_fix=fix))


@contextlib.contextmanager
def _quiet():
    from nncf.common.logging.logger import nncf_logger

    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        nncf_logger.setLevel(level)
