"""The models vsr ships: one table, named by purpose, that drives ``vsr models``, the defaults and
docs/models/README.md's table.

Each entry names a model by what it is for, the job it does and the network behind it; its weights are
``vsr/weights/<network>_x<scale>.safetensors`` (what each file holds: architecture, hyperparameters, the config that
trained it and its validation numbers, is in the file, :mod:`vsr.weightfile`; ``train/configs/<network>_x<s>.toml``
trains it). A job's default at a scale is its first entry with weights for that scale. ``bicubic`` needs no weights
and runs at any scale; architectures without shipped weights are for training. Names of earlier releases still
work for this one, with a notice (``ALIASES``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vsr.errors import VsrError
from vsr.weightfile import WeightInfo, WeightsError, is_foreign, load_weights, read_info

WEIGHTS_DIR = Path(__file__).with_name("weights")


@dataclass(frozen=True)
class Entry:
    name: str
    job: str  # "video" (vsr upscale) or "image" (vsr image)
    description: str
    network: str = ""  # the weight files' stem (and its configs'); the name itself where empty

    @property
    def files(self) -> str:
        return self.network or self.name


# Each on the speed/quality frontier for its job on val_video (BENCHMARKS.md, "Speed and quality"): none is both
# slower and worse than another at the same job.
ZOO: list[Entry] = [
    Entry("fast", "video", "clean video, the default: multi-frame (t-1, t, t+1) with a small learned aligner",
          "mf-fast"),
    Entry("fast-real", "video", "compressed or noisy footage (phone clips, DVD rips, streams) at fast's speed: "
                                "removes codec blocks and noise", "mf-fast-real"),
    Entry("quality", "video", "clean video, more fidelity: recurrent, its state and the window aligned by a precise "
                              "DIS flow (about 4× fast's time)", "mf-rec"),
    Entry("quality-real", "video", "compressed footage, the most faithful: quality's network trained for real "
                                   "footage", "mf-rec-real"),
    Entry("real-gan", "video", "compressed footage, crisper texture: a GAN kept off grid patterns and off streaks "
                               "over text", "mf-dis-real-gan"),
    Entry("image", "image", "single images, the default for vsr image: 8×64 residual blocks", "sr-lite"),
]
BICUBIC = Entry("bicubic", "reference", "MATLAB bicubic interpolation (no weights, any scale)")

# Earlier releases' names: renamed, or retired in favour of the model named here (kept for one release)
ALIASES: dict[str, tuple[str, str]] = {
    "mf-fast": ("fast", "renamed"), "mf-fast-real": ("fast-real", "renamed"), "mf-rec": ("quality", "renamed"),
    "mf-rec-real": ("quality-real", "renamed"), "mf-dis-real-gan": ("real-gan", "renamed"),
    "sr-lite": ("image", "renamed"),
    "mf-dis": ("quality", "retired"), "mf-lite": ("quality", "retired"), "mf-fast-gan": ("fast", "retired"),
    "mf-dis-gan": ("quality", "retired"), "mf-dis-real": ("quality-real", "retired"),
    "mf-lite-real": ("quality-real", "retired"), "mf-fast-real-gan": ("real-gan", "retired"),
    "mf-rec-real-gan": ("real-gan", "retired"), "mf-lite-real-gan": ("real-gan", "retired"),
}


def entry(name: str) -> Entry | None:
    return next((e for e in ZOO if e.name == name), None)


def resolve(name: str) -> tuple[str, str]:
    """(today's name, a notice) for a name of this release or an earlier one (no notice for today's)."""
    if name in ALIASES:
        new, how = ALIASES[name]
        return new, (f"-m {name} is now -m {new}" if how == "renamed" else
                     f"{name} is retired (its job is {new}'s, on the frontier where it was not): {new} runs")
    return name, ""


def weight_files() -> dict[tuple[str, int], Path]:
    """(name, scale) → path of every weight file shipped in the package."""
    if not WEIGHTS_DIR.is_dir():
        return {}
    names = {e.files: e.name for e in ZOO}
    out = {}
    for p in sorted(WEIGHTS_DIR.glob("*_x[0-9].safetensors")):
        files, _, scale = p.stem.rpartition("_x")
        out[(names.get(files, files), int(scale))] = p
    return out


def scales_of(name: str) -> list[int]:
    return sorted(s for n, s in weight_files() if n == name)


def _offer(job: str | None = None) -> str:
    """What exists, for error messages: 'mf-fast ×2 ×4, sr-lite ×2 ×4'."""
    names = [e.name for e in ZOO if job is None or e.job == job]
    return ", ".join(f"{n} " + " ".join(f"×{s}" for s in scales_of(n)) for n in names if scales_of(n))


def default_model(job: str, scale: int, exact: bool = True) -> str:
    """The model ``vsr upscale`` (job "video") or ``vsr image`` ("image") runs without ``-m`` at ``scale``: the
    job's first model with weights for it; else (``exact`` False) the job's first model with weights for a larger
    scale, whose output the caller resizes (vsr.runner); else any shipped model that has them (single-image models
    run on video frame by frame, video models on stills). No weights at all is an error, never bicubic."""
    have = weight_files()
    own = [e.name for e in ZOO if e.job == job]
    for name in own:
        if (name, scale) in have:
            return name
    if not exact:
        for name in own:
            if any(s > scale for n, s in have if n == name):
                return name
    for name in (e.name for e in ZOO if e.job != job):
        if (name, scale) in have:
            return name
    raise VsrError(f"no model ships ×{scale} weights (shipped: {_offer() or 'none'}); "
                   f"-m bicubic runs at any scale, or train one with `python -m train`")


def looks_like_path(ref: str) -> bool:
    return ref.endswith(".safetensors") or os.sep in ref or "/" in ref or Path(ref).is_file()


def load_model(ref: str, scale: int | None):
    """A model by shipped name, ``bicubic``, or weight-file path: (model, info). ``scale`` None takes a weight
    file's own scale."""
    from vsr.models import build

    if looks_like_path(ref):
        model, info = _load_file(Path(ref))
        if scale is not None and info.scale != scale:
            raise WeightsError(f"{ref} is a ×{info.scale} model; drop --scale or pass --scale {info.scale}")
        return model, info
    if scale is None:
        raise WeightsError("a scale is needed (--scale)")
    ref = resolve(ref)[0]
    if ref == BICUBIC.name:
        try:
            model = build("bicubic", scale=scale).eval()
        except ValueError as e:
            raise WeightsError(str(e)) from None
        return model, WeightInfo(name=ref, arch="bicubic", hparams={"scale": scale}, scale=scale, frames=1)
    if entry(ref) is None:
        from vsr import catalogue

        community = catalogue.find(ref)
        if community is not None:
            return _load_pulled(community, scale)
        names = [e.name for e in ZOO] + [BICUBIC.name]
        raise WeightsError(f"unknown model {ref!r}; shipped: {', '.join(names)}; to pull: "
                           f"{', '.join(e.name for e in catalogue.entries())} (`vsr models`), or a weight file's path")
    path = weight_files().get((ref, scale))
    if path is None:
        have = " ".join(f"×{s}" for s in scales_of(ref))
        raise WeightsError(f"{ref} has no ×{scale} weights (it ships {have}); models with ×{scale}: "
                           f"{_offer_at(scale) or 'none'} (-m bicubic runs at any scale)")
    model, info = load_weights(path)
    info.name = ref  # (the file carries its network's name)
    return model, info


def _load_pulled(community, scale: int | None):
    """A catalogue model: its file, once ``vsr models pull`` has fetched it, named as the catalogue names it."""
    from vsr import catalogue
    from vsr.community import load_community

    if not catalogue.pulled(community):
        raise catalogue.not_pulled(community)
    if scale is not None and scale != community.scale:
        raise WeightsError(f"{community.name} is a ×{community.scale} model; drop --scale or pass --scale "
                           f"{community.scale}")
    model, info = load_community(catalogue.path_of(community))
    info.name = community.name
    return model, info


def _load_file(path: Path):
    """A vsr weight file, or a community one (spandrel) when it is not vsr's."""
    from vsr.community import COMMUNITY_EXTS, load_community

    if path.suffix.lower() == ".safetensors" and not is_foreign(path):
        return load_weights(path)
    if path.suffix.lower() in COMMUNITY_EXTS:
        return load_community(path)
    raise WeightsError(f"{path}: not a weight file vsr reads (.safetensors, or a community .pth/.pt/.ckpt/.bin)")


def file_scale(ref: str) -> int:
    """The scale of the model in a weight file (vsr's from its header; a community file's from spandrel)."""
    path = Path(ref)
    if path.suffix.lower() == ".safetensors" and not is_foreign(path):
        return read_info(path).scale
    return _load_file(path)[1].scale


def _offer_at(scale: int) -> str:
    return ", ".join(n for n, s in weight_files() if s == scale and entry(n) is not None)


def describe(name: str) -> list[tuple[int, WeightInfo]]:
    """(scale, metadata) of each weight file of a shipped model."""
    return [(s, read_info(p)) for (n, s), p in sorted(weight_files().items()) if n == name]
