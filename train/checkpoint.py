"""What a run keeps: checkpoints written atomically, the EMA of the weights, and starting from other weights."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch

from vsr.errors import VsrError


class TrainError(VsrError):
    pass


class EMA:
    """Exponential moving average of a model's parameters and buffers.

    The decay warms up as (1 + step) / (10 + step) until it reaches ``decay``, so early in a run the average
    follows the model instead of its initialisation.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TrainError(f"cannot save checkpoint {path}: {e.strerror or e}") from None


def load_checkpoint(path: Path) -> dict:
    """A run's own checkpoint (it holds the optimiser and RNG states, so it is a full pickle: only load runs you
    made)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise TrainError(f"no checkpoint at {path}") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        raise TrainError(f"corrupt checkpoint {path} ({type(e).__name__})") from None


def init_from(model: torch.nn.Module, source: str, *, new_inputs: float = 0.0) -> int:
    """Copy every tensor whose name and shape match from weights or a run (e.g. ×4 → ×2, fidelity → GAN); a conv
    kernel with more input channels than the source's gets the source's kernel on its first inputs (a window model →
    the same model with a hidden state), or from where the model's ``widened_inputs_at(name, source)`` says (a
    single-image model → its window model: the source's inputs are the centre frame's).

    The new inputs get ``new_inputs`` times the model's own random initialisation: 0 (zeros, the default) starts
    exactly at the source's outputs; a random start lets the new inputs act from the first step (tried on
    ``mf-lite``: it did not make the network use its neighbours, docs/notes/experiments.md "A window on sr-lite's
    network")."""
    path = Path(source)
    if path.is_dir():
        path = next((p for p in (path / "best.pt", path / "checkpoint.pt") if p.exists()), path / "best.pt")
    if path.suffix == ".safetensors":
        from vsr.weightfile import load_weights

        state = load_weights(path)[0].state_dict()
    else:
        ck = load_checkpoint(path)
        state = ck.get("ema") or ck["model"]
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    inputs_at = getattr(model, "widened_inputs_at", lambda name, source: 0)
    for k, v in state.items():
        if k in own and k not in matched and _more_inputs(own[k], v):
            # a conv given extra inputs (a window model's head given a hidden state or neighbours): the source's
            # kernels for its inputs, the new ones scaled from the model's own initialisation
            widened = own[k] * new_inputs
            start = inputs_at(k, v)
            widened[:, start : start + v.shape[1]] = v
            matched[k] = widened
    if not matched:
        raise TrainError(f"{source}: no tensor matches the model")
    model.load_state_dict(matched, strict=False)
    return len(matched)


def _more_inputs(own: torch.Tensor, source: torch.Tensor) -> bool:
    return (own.dim() == 4 and source.dim() == 4 and own.shape[0] == source.shape[0]
            and own.shape[1] > source.shape[1] and own.shape[2:] == source.shape[2:])
