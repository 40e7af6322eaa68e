"""Compiled inference for any super-resolution module described by a small descriptor (engines.descriptor):
PyTorch, OpenVINO and TensorRT behind one runner interface. Imports nothing from vsr.

The names below load on first use, so ``engines.cache`` (paths, keys) is cheap to import without torch."""

import importlib

_WHERE = {"BACKENDS": "engines.base", "PRECISIONS": "engines.base", "Identity": "engines.base",
          "Runner": "engines.base", "candidates": "engines.base", "create_runner": "engines.base",
          "Descriptor": "engines.descriptor", "BackendError": "engines.errors"}

__all__ = ["BACKENDS", "PRECISIONS", "BackendError", "Descriptor", "Identity", "Runner", "candidates",
           "create_runner"]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'engines' has no attribute {name!r}")
