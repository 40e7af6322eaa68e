"""Compiled inference for any super-resolution module described by a small descriptor (engines.descriptor):
PyTorch, OpenVINO and TensorRT behind one runner interface. Imports nothing from vsr."""

from engines.base import BACKENDS, PRECISIONS, Identity, Runner, candidates, create_runner
from engines.descriptor import Descriptor
from engines.errors import BackendError

__all__ = ["BACKENDS", "PRECISIONS", "BackendError", "Descriptor", "Identity", "Runner", "candidates",
           "create_runner"]
