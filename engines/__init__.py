"""Compiled inference for vsr models: torch, OpenVINO and TensorRT behind one interface."""

from engines.base import BACKENDS, PRECISIONS, BackendError, Runner, candidates, create_runner

__all__ = ["BACKENDS", "PRECISIONS", "BackendError", "Runner", "candidates", "create_runner"]
