"""The models vsr ships: one table that drives ``vsr models``, the defaults and docs/models/README.md's table.

Each entry names a model, the job it is for and what it is; its weights are ``vsr/weights/<name>_x<scale>.safetensors``
(what each file holds: architecture, hyperparameters, the config that trained it and its validation numbers, is in
the file, :mod:`vsr.weightfile`). A job's default at a scale is its first entry with weights for that scale.
``bicubic`` needs no weights and runs at any scale; architectures without shipped weights are for training.
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


ZOO: list[Entry] = [
    Entry("mf-fast", "video", "multi-frame (t-1, t, t+1) with a small learned aligner: the default for vsr upscale"),
    Entry("mf-dis", "video", "multi-frame aligned by DIS optical flow, confidence-aware fusion: the quality option"),
    Entry("mf-rec", "video", "mf-dis with a hidden state carried from frame to frame (its features and its last "
                             "output, moved by a precise DIS flow): recurrent, causal, one frame of latency; above "
                             "mf-dis on every clip"),
    Entry("mf-lite", "video", "sr-lite's network on the DIS-aligned window, fine-tuned on video: the best fidelity, "
                              "at sr-lite's speed (slow on a CPU)"),
    Entry("mf-fast-gan", "video", "mf-fast fine-tuned with a GAN (spatio-temporal discriminator)"),
    Entry("mf-dis-gan", "video", "mf-dis fine-tuned with a GAN (spatio-temporal discriminator)"),
    Entry("mf-fast-real", "video", "mf-fast trained for real footage (compressed, noisy, soft: phone clips, DVD "
                                   "rips, streams): removes codec blocks and noise; for clean sources use mf-fast"),
    Entry("mf-fast-real-gan", "video", "mf-fast-real fine-tuned with a GAN: crisper textures on real footage"),
    Entry("mf-dis-real", "video", "mf-dis trained for real footage: between mf-fast-real and mf-lite-real in quality "
                                  "and speed; for clean sources use mf-dis"),
    Entry("mf-dis-real-gan", "video", "mf-dis-real fine-tuned with a GAN: crisper textures on real footage"),
    Entry("mf-rec-real", "video", "mf-rec trained for real footage: the most faithful on compressed input (level "
                                  "with mf-lite-real) at a third of its time; for clean sources use mf-rec"),
    Entry("mf-rec-real-gan", "video", "mf-rec-real fine-tuned with a GAN kept off grid patterns: crisper textures on "
                                      "real footage"),
    Entry("mf-lite-real", "video", "mf-lite trained for real footage: the best fidelity on compressed input at "
                                   "×4, at sr-lite's speed (slow on a CPU); for clean sources use mf-lite"),
    Entry("mf-lite-real-gan", "video", "mf-lite-real fine-tuned with a GAN: crisper textures on real footage"),
    Entry("sr-lite", "image", "single image, 8×64 residual blocks: the default for vsr image"),
]
BICUBIC = Entry("bicubic", "reference", "MATLAB bicubic interpolation (no weights, any scale)")


def entry(name: str) -> Entry | None:
    return next((e for e in ZOO if e.name == name), None)


def weight_files() -> dict[tuple[str, int], Path]:
    """(name, scale) → path of every weight file shipped in the package."""
    if not WEIGHTS_DIR.is_dir():
        return {}
    out = {}
    for p in sorted(WEIGHTS_DIR.glob("*_x[0-9].safetensors")):
        name, _, scale = p.stem.rpartition("_x")
        out[(name, int(scale))] = p
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
    return load_weights(path)


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
