"""Training configuration: a TOML file mapped onto typed dataclasses.

``load_config(path, overrides)`` reads the file, applies ``--set key=value``
overrides (``optim.lr=1e-4``, ``data.train=["a","b"]``) and checks every key:
an unknown section or key is an error that names it. A file may start with
``inherit = "other.toml"`` (relative to it): the other file's keys, overridden by
this file's, so a config says only what differs from its base.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsr.errors import VsrError


class ConfigError(VsrError):
    pass


@dataclass
class ModelConfig:
    name: str = ""  # the name exported weights carry; a shipped model's name only with export --name (train.export)
    arch: str = ""  # an architecture of vsr.models.ARCHITECTURES
    scale: int = 4
    params: dict[str, Any] = field(default_factory=dict)  # its hyperparameters (the rest: the class's defaults)
    init: str = ""  # weights (.safetensors) or a run folder to start from; matching tensors are copied
    init_new: float = 0.0  # a widened conv's new inputs: this share of the model's own random init (0: zeros)


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)  # image folders, DIV2K roots, video folders/files
    patch: int = 48  # LR patch size
    batch: int = 16
    frames: int = 0  # frames per training clip (outputs for frames 1 .. frames-2 when over 1); 0 = the model's window
    degradation: str = "bicubic"  # bicubic (BI) | realistic (train/degrade.py)
    pseudo_video: float = 0.0  # share of video samples made from still images by camera motion
    max_shift: float = 8.0  # pseudo-video camera speed: at most this many LR pixels per frame
    cache_dir: str = ""  # decoded-frame cache; default: <run>/cache
    video_stride: int = 1  # keep every n-th frame of training videos (bigger motion)
    max_video_frames: int = 0  # per video, 0 = all
    exclude: list[str] = field(default_factory=list)  # substrings of paths to leave out (validation clips)
    flow_noise: float = 0.0  # flow-input models: share of windows whose given flow is spoiled somewhere
    motion_blur: float = 0.0  # share of windows from stills shot by a panning camera with its shutter open (1-frame too)


@dataclass
class DegradeConfig:
    """data.degradation = "realistic": the share of clips each step is drawn for, and the codec's range."""

    plain: float = 0.3  # BI only before the codec (how `vsr eval --crf` makes LR)
    second_round: float = 0.5
    blur: float = 0.8
    noise: float = 0.5
    jpeg: float = 0.5
    codec: float = 0.9  # the whole LR clip through H.264/HEVC (one-frame clips: JPEG instead)
    crf: tuple[int, int] = (18, 38)
    hevc: float = 0.3  # share of the codec step that is HEVC rather than H.264


@dataclass
class ValConfig:
    folders: list[str] = field(default_factory=list)  # HR image folders or videos; the first picks the best checkpoint
    every: int = 1000  # steps between validations; 0 = only at the end
    max_frames: int = 30  # per video
    crop: int = 0  # centre-crop HR frames to this size (0 = whole frame)
    crf: int = 0  # LR clips through libx264 at this CRF, as `vsr eval --crf` (real-footage models); 0 = clean BI


@dataclass
class OptimConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    steps: int = 20000
    warmup: int = 500
    schedule: str = "cosine"  # cosine | constant (after the warm-up)
    grad_clip: float = 0.0
    ema: float = 0.999  # 0 disables
    d_lr: float = 1e-4  # discriminator


@dataclass
class LossConfig:
    pixel: str = "l1"  # l1 | charbonnier | mse
    pixel_weight: float = 1.0
    adversarial_weight: float = 0.0
    feature_match_weight: float = 0.0
    temporal_weight: float = 0.0
    grid_weight: float = 0.0  # no pattern at the upsampler's period beyond the truth's (keeps a GAN off grids)
    flow_weight: float = 0.0  # photometric loss on a learned aligner (mfsr)


@dataclass
class RunConfig:
    name: str = ""
    out: str = "runs"
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    threads: int = 0  # 0 = torch's default
    checkpoint_every: int = 500
    log_every: int = 50
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    val: ValConfig = field(default_factory=ValConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    try:
        if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if tp in (int, str, bool) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        if origin is list and isinstance(value, (list, tuple)):
            (arg,) = typing.get_args(tp)
            return [_coerce(v, arg, where) for v in value]
        if origin is tuple and isinstance(value, (list, tuple)):
            args = typing.get_args(tp)
            if len(args) != len(value):
                raise TypeError
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        if origin is dict and isinstance(value, dict):
            return dict(value)
    except ConfigError:
        raise
    except TypeError:
        pass
    raise ConfigError(f"config key {where!r}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


# Keys of earlier versions, with the value that left them off (``...``: any value did). A run's saved config or a
# weight file's record that holds one at that value still loads (so older runs resume and export); any other value
# is an error, since what it asked for is gone.
RETIRED: dict[str, Any] = {
    "data.kind": "auto",
    "loss.flow_exact": 0.0,
    "loss.flow_teacher": 0.0,
    "loss.perceptual_weight": 0.0,  # the VGG perceptual loss
    "loss.vgg_weights": "",
    "optim.milestones": [],  # the multistep schedule
    "optim.gamma": ...,
}


def _apply(section_obj: Any, values: dict[str, Any], prefix: str) -> None:
    hints = typing.get_type_hints(type(section_obj))
    for key, value in values.items():
        where = f"{prefix}{key}"
        if key not in hints:
            if where in RETIRED and RETIRED[where] in (value, ...):
                continue
            if where in RETIRED:
                raise ConfigError(f"config key {where!r} is no longer supported (only {RETIRED[where]!r} is accepted)")
            raise ConfigError(f"unknown config key {where!r}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where!r} must be a table")
            _apply(getattr(section_obj, key), value, f"{where}.")
        else:
            setattr(section_obj, key, _coerce(value, tp, where))


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string
    return key.strip().split("."), value


def config_from_dict(data: dict[str, Any], overrides: list[str] = ()) -> TrainConfig:
    cfg = TrainConfig()
    _apply(cfg, data, "")
    for item in overrides:
        path, value = _parse_override(item)
        nested: dict[str, Any] = {path[-1]: value}
        for part in reversed(path[:-1]):
            nested = {part: nested}
        _apply(cfg, nested, "")
    _validate(cfg)
    return cfg


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's keys, merged over those of the file it inherits from."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: inherits from itself")
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    base = data.pop("inherit", None)
    if base is None:
        return data
    return _merge(_read(path.parent / base, (*seen, path.resolve())), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = _read(path)
    cfg = config_from_dict(data, overrides)
    if not cfg.run.name and path is not None:
        cfg.run.name = Path(path).stem
    return cfg


def _validate(cfg: TrainConfig) -> None:
    from vsr.models import ARCHITECTURES, SCALES

    choices = {
        "loss.pixel": (cfg.loss.pixel, ("l1", "charbonnier", "mse")),
        "optim.schedule": (cfg.optim.schedule, ("cosine", "constant")),
        "run.precision": (cfg.run.precision, ("auto", "fp32", "bf16", "fp16")),
        "data.degradation": (cfg.data.degradation, ("bicubic", "realistic")),
        "run.device": (cfg.run.device, ("auto", "cpu", "cuda")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"config key {key!r}: {value!r} is not one of {', '.join(allowed)}")
    if cfg.model.arch not in ARCHITECTURES:
        raise ConfigError(f"config key 'model.arch': {cfg.model.arch!r} is not one of {', '.join(ARCHITECTURES)}")
    if cfg.model.scale not in SCALES:
        raise ConfigError(f"config key 'model.scale': {cfg.model.scale} is not one of {', '.join(map(str, SCALES))}")
    if cfg.data.patch < 4 or cfg.data.batch < 1 or cfg.optim.steps < 1:
        raise ConfigError("data.patch, data.batch and optim.steps must be positive")


def dumps(cfg: TrainConfig) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True)
