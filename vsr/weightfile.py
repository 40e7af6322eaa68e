"""vsr's weight format: safetensors with the architecture in the metadata.

Metadata keys (all strings, JSON where structured): ``format`` = "vsr",
``name``, ``arch``, ``hparams`` (JSON), ``scale``, ``frames``, ``training``
(JSON: data, config), ``validation`` (JSON: metric → value). Loading needs
nothing else. The weights vsr ships are listed in :mod:`vsr.zoo`.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsr.errors import VsrError
from vsr.journal import write_atomic

FORMAT = "vsr"


class WeightsError(VsrError):
    pass


class NotVsrFile(WeightsError):
    """A readable safetensors file written by something else (a community model, perhaps)."""


@dataclass
class WeightInfo:
    """What a weight file (or a weightless model like bicubic) is."""

    name: str
    arch: str
    hparams: dict[str, Any]
    scale: int
    frames: int
    path: Path | None = None
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)

    def validated_on(self) -> dict[str, Any]:
        """Where the validation numbers were measured: ``folders`` (the first gives ``psnr``), ``max_frames``, ``crf``
        and ``crop``, as a training config's ``[val]`` says; a file scored again after training
        (``python -m train validate --write``) says where in its validation's ``on``."""
        return self.validation.get("on") or (self.training.get("config") or {}).get("val", {})

    def to_metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "name": self.name,
            "arch": self.arch,
            "hparams": json.dumps(self.hparams, sort_keys=True),
            "scale": str(self.scale),
            "frames": str(self.frames),
            "training": json.dumps(self.training, sort_keys=True),
            "validation": json.dumps(self.validation, sort_keys=True),
        }


def save_weights(path: str | os.PathLike, model, info: WeightInfo) -> Path:
    """Write ``model``'s state dict and ``info`` atomically (:func:`vsr.journal.write_atomic`: a file made as any
    other the user makes, so readable by others under the usual umask; safetensors' own writer makes it 0600)."""
    from safetensors.torch import save

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_atomic(path, save(state, metadata=info.to_metadata()))
    return path


def read_info(path: str | os.PathLike) -> WeightInfo:
    """Read only the header of a weight file: cheap, no tensors loaded."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise WeightsError(f"{path}: not a weight file (too short)")
            (n,) = struct.unpack("<Q", head)
            if n > 100_000_000 or n > path.stat().st_size - 8:
                raise WeightsError(f"{path}: not a safetensors weight file (bad header)")
            header = json.loads(f.read(n))
    except OSError as e:
        raise WeightsError(f"cannot read weights {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError):
        raise WeightsError(f"{path}: not a safetensors weight file (unreadable header)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NotVsrFile(f"{path}: safetensors file without vsr metadata (not a vsr weight file)")
    try:
        return WeightInfo(
            name=meta.get("name") or path.stem,
            arch=meta["arch"],
            hparams=json.loads(meta["hparams"]),
            scale=int(meta["scale"]),
            frames=int(meta.get("frames", "1")),
            path=path,
            training=json.loads(meta.get("training", "{}")),
            validation=json.loads(meta.get("validation", "{}")),
        )
    except (KeyError, ValueError) as e:
        raise WeightsError(f"{path}: vsr metadata is incomplete or malformed ({e})") from None


def is_foreign(path: str | os.PathLike) -> bool:
    """A readable safetensors file that is not vsr's (a damaged vsr file is not foreign: loading it says so)."""
    try:
        read_info(path)
    except NotVsrFile:
        return True
    except WeightsError:
        return False
    return False


def load_weights(path: str | os.PathLike):
    """Build the model a weight file describes and load its tensors; returns (model, info)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vsr.models import build

    info = read_info(path)
    try:
        model = build(info.arch, **{**info.hparams, "scale": info.scale})
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{path}: cannot build {info.arch!r} from its metadata ({e})") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: corrupt or truncated weight file ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"{path}: tensors do not match {info.arch!r} ({first})") from None
    model.eval()
    return model, info


def file_id(path: str | os.PathLike) -> str:
    """Content hash of a weight file, short."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def weights_id(info: WeightInfo) -> str:
    """Content hash of the weight file (engine cache keys); weightless models hash their hyperparameters."""
    import hashlib

    if info.path is not None:
        return file_id(info.path)
    return hashlib.sha256(json.dumps([info.arch, info.hparams], sort_keys=True).encode()).hexdigest()[:16]
