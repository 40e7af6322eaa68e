"""What produces a model's graph, as a hash for engine cache keys: the source files of its modules' classes.

An exported graph depends on the code as much as on the weights: a changed ``forward`` must not reuse the graph
(and the engines compiled from it) that the old code exported. The hash covers every file that defines a class
of the model's submodules (their base classes included) outside torch, whose own classes the torch version in
the key covers, plus this package's graph wrapper and exporter. A helper function a ``forward`` calls from a
file that defines none of those classes is not covered.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

_HERE = Path(__file__).resolve().parent
ALWAYS = (_HERE / "graph.py", _HERE / "onnx_export.py")  # the wrapper every backend runs, and its export


@functools.lru_cache(maxsize=512)
def _file_digest(path: str, mtime_ns: int, size: int, inode: int) -> str:
    """The file's SHA-256, computed once per version of the file (path, modification time, size, inode)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def source_files(model: nn.Module) -> set[str]:
    files = {str(p) for p in ALWAYS}
    for m in model.modules():
        for cls in type(m).__mro__:
            top = (cls.__module__ or "").split(".")[0]
            if top in ("torch", "builtins", "typing", "abc"):
                continue
            path = _file_of(cls)
            if path:
                files.add(os.path.realpath(path))
    return files


def _file_of(cls: type) -> str | None:
    try:
        return inspect.getsourcefile(cls)
    except (TypeError, OSError):  # its module is not in sys.modules (loaded by hand): its methods know their file
        for f in vars(cls).values():
            code = getattr(f, "__code__", None)
            if code is not None and os.path.exists(code.co_filename):
                return code.co_filename
    return None


def source_hash(model: nn.Module) -> str:
    """A short hash of the contents of :func:`source_files` (not their paths: a moved install hashes the same)."""
    digests = []
    for path in source_files(model):
        try:
            st = os.stat(path)
        except OSError:
            continue
        digests.append(_file_digest(path, st.st_mtime_ns, st.st_size, st.st_ino))
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:16]
