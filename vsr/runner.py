"""From ``-m`` and ``-s`` to a runner: which model, at which of its scales, on which backend, and what is said
about it.

``-s`` says the size the user wants. A model that has weights for that scale runs at it. A single-scale model (a
community file, a ×4-only model) asked for a smaller scale runs at its own and its output is resized down, as
Real-ESRGAN's ``--outscale`` does, with an area filter (each output pixel the mean of the pixels it covers, so
nothing aliases); a scale above a model's is refused with the scales it has. The line that names the model says
when it is resized, so no output is ever silently of another size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vsr.errors import VsrError

DEFAULT_SCALE = 2


@dataclass(frozen=True)
class Choice:
    """A model reference resolved: what to load (``ref`` at ``native``) and the scale the output has."""

    ref: str  # a shipped name, "bicubic", or a weight file's path
    native: int  # the scale the model runs at
    scale: int  # the output's (≤ native; below it the output is resized)
    why: str = ""  # why it runs at another scale than asked, or under another name, for the model line


def choose(ref: str | None, scale: int | None, job: str) -> Choice:
    """Resolve ``-m`` and ``-s`` (None where not given) for a job ("video" or "image"); an earlier release's model
    name resolves to today's, with a notice on the model line. ``-m auto`` is resolved before this, from the input
    file (vsr.jobs, vsr.auto); anywhere else it is refused."""
    from vsr.auto import AUTO, CLEAN, REAL
    from vsr.zoo import default_model, looks_like_path, resolve

    if ref == AUTO:
        if job == "image":
            raise VsrError(f"-m {AUTO} chooses between video models by a video's compression and noise; vsr image "
                           f"runs {default_model('image', scale or DEFAULT_SCALE, exact=False)} without -m, or name "
                           "a model (`vsr models`)")
        raise VsrError(f"-m {AUTO} chooses the model from the input video in vsr upscale; here name one: {CLEAN} "
                       f"for clean input, {REAL} for compressed or noisy (`vsr models`)")

    notice = ""
    if ref is not None and not looks_like_path(ref):
        ref, notice = resolve(ref)
    choice = _choose(ref, scale, job)
    return dataclasses.replace(choice, why="; ".join(filter(None, [notice, choice.why])))


def _choose(ref: str | None, scale: int | None, job: str) -> Choice:
    from vsr import catalogue
    from vsr.zoo import BICUBIC, default_model, entry, file_scale, looks_like_path, scales_of

    if ref is not None and looks_like_path(ref):
        native = file_scale(ref)
        return _fit(ref, native, [native], scale if scale is not None else native)
    community = catalogue.find(ref) if ref is not None and entry(ref) is None else None
    if community is not None:
        return _fit(ref, community.scale, [community.scale], scale if scale is not None else community.scale)
    want = scale if scale is not None else DEFAULT_SCALE
    if ref == BICUBIC.name:
        return Choice(ref, want, want)
    if ref is None:
        name = default_model(job, want, exact=False)
        have = scales_of(name)
        if want in have:
            return Choice(name, want, want)
        return _fit(name, min(s for s in have if s > want), have, want)
    if entry(ref) is not None and want not in scales_of(ref):
        return _fit(ref, max(scales_of(ref)), scales_of(ref), want)
    return Choice(ref, want, want)


def _fit(ref: str, native: int, have: list[int], want: int) -> Choice:
    from pathlib import Path

    if want == native:
        return Choice(ref, native, want)
    name = Path(ref).name
    if want > native or want < 1:
        offer = ", ".join(f"×{s}" for s in sorted(set(have))) or f"×{native}"
        raise VsrError(f"{name} is a {offer} model: -s {want} is above what it makes; pass -s {native} or less "
                       f"(smaller scales are resized down from ×{native})")
    return Choice(ref, native, want, f"{name} has no ×{want} weights: its ×{native} output is resized to ×{want}")


def weights_of(choice: Choice) -> str:
    """The hash of the weight file a choice loads ("" for bicubic): what changes the output besides the settings."""
    from pathlib import Path

    from vsr import catalogue
    from vsr.weightfile import file_id
    from vsr.zoo import looks_like_path, weight_files

    community = None if looks_like_path(choice.ref) else catalogue.find(choice.ref)
    if community is not None:
        return community.sha256[:16]
    path = Path(choice.ref) if looks_like_path(choice.ref) else weight_files().get((choice.ref, choice.native))
    return file_id(path) if path is not None else ""


class Resized:
    """A runner whose frames come out at ``scale``, resized down from its inner runner's larger scale (area filter,
    in the frames' own dtype). Everything else is the inner runner's."""

    def __init__(self, inner, scale: int):
        self.inner, self.scale = inner, scale
        self.d = dataclasses.replace(inner.d, scale=scale)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def submit(self, frames, flows=None, reset: bool = False):
        return self.inner.submit(frames, flows, reset)

    def collect(self, handle) -> np.ndarray:
        import cv2

        y = self.inner.collect(handle)
        h, w = y.shape[0] // self.inner.scale * self.scale, y.shape[1] // self.inner.scale * self.scale
        return cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA)

    def __call__(self, frames, flows=None, reset: bool = False) -> np.ndarray:
        return self.collect(self.submit(frames, flows, reset))

    def describe(self) -> str:
        return self.inner.describe()


def load(choice: Choice):
    """(model, info) for a resolved choice: the model at its native scale."""
    from vsr.zoo import load_model, looks_like_path

    return load_model(choice.ref, None if looks_like_path(choice.ref) else choice.native)


def open_runner(choice: Choice, backend: str, precision: str, *, warn: Callable[[str], None],
                shape: tuple[int, int] | None = None, io: str = "u8", say: Callable[[str], None] | None = None,
                auto_int8: bool = True):
    """(runner, info): the model on its backend (compiled ahead for ``shape`` where the backend compiles), resized
    to the choice's scale where that is below the model's; ``say`` hears of a long first build (int8), which
    ``--precision auto`` may choose only where ``auto_int8`` (a video: the build pays for itself)."""
    from engines import Identity, create_runner
    from vsr.weightfile import weights_id

    model, info = load(choice)
    runner = create_runner(model, backend=backend, precision=precision,
                           identity=Identity.of(model, weights_id(info), info.name), warn=warn, shape=shape, io=io,
                           calibration=calibration(model, info, backend, precision, say, auto_int8))
    return (Resized(runner, choice.scale) if choice.scale != choice.native else runner), info


def calibration(model, info, backend: str, precision: str, say: Callable[[str], None] | None = None,
                auto_int8: bool = True):
    """The frames an int8 engine of the model would calibrate on (vsr.int8), where int8 may run: OpenVINO, asked
    for, or picked by auto where ``auto_int8``."""
    if backend not in ("auto", "openvino") or precision not in ("int8", "auto" if auto_int8 else "int8"):
        return None
    from vsr.int8 import calibration_for

    c = calibration_for(model, info)
    if c is not None:
        c = dataclasses.replace(c, say=say)
    if c is None and precision == "int8":
        raise VsrError(f"{info.name} has no weights to quantise: --precision int8 is for learned models")
    return c


def describe(runner, info, choice: Choice) -> str:
    """The one line that says what runs: 'model mf-fast ×2 (3 frames) on openvino (bf16)'."""
    from vsr.catalogue import models_dir
    from vsr.zoo import WEIGHTS_DIR

    named = info.path is None or info.path.parent in (WEIGHTS_DIR, models_dir())  # shipped, or from the catalogue
    where = "" if named or info.path.stem == info.name else f" from {info.path.name}"  # a user's own file
    frames = f"{info.frames} frame{'s' if info.frames > 1 else ''}{', recurrent' if runner.d.recurrent else ''}"
    line = f"model {info.name} ×{choice.native}{where} ({frames}) on {runner.describe()}"
    return line + (f"; {choice.why}" if choice.why else "")
