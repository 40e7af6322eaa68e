"""The engine cache: one folder per engine, named by a key that says what makes it different.

An entry's key holds everything that changes the built artefact: the weights'
hash, architecture and hyperparameters, a hash of the code that makes the
graph, scale, frames, input shape or profile, precision, runtime name and
version, the device, and for a compiled engine the checksum of the ONNX file it
was built from. Entries are built in a temporary folder and renamed into place;
``meta.json`` records the key and a SHA-256 of every artefact, so a corrupt or
stale entry is detected, removed with a warning and rebuilt, never loaded. The
cache lives in the user cache directory (``$VSR_CACHE`` overrides), never
inside the package.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = 1


def cache_root() -> Path:
    env = os.environ.get("VSR_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("vsr"))


def engines_dir() -> Path:
    return cache_root() / "engines"


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _label(key: dict[str, Any]) -> str:
    parts = [str(key.get("name", key.get("arch", "model"))), f"x{key.get('scale', '')}", str(key.get("runtime", ""))]
    if key.get("precision"):
        parts.append(str(key["precision"]))
    if key.get("shape"):
        parts.append("x".join(map(str, key["shape"])))
    elif key.get("profile"):
        parts.append(str(key["profile"]))
    return "-".join(p.replace(" ", "").replace("/", "_") for p in parts if p)


def entry_path(key: dict[str, Any]) -> Path:
    return engines_dir() / f"{_label(key)}-{digest(key)}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lookup(key: dict[str, Any]) -> Path | None:
    """The entry folder if present and intact; a damaged or mismatched one is removed (with a warning)."""
    path = entry_path(key)
    if not path.is_dir():
        return None
    problem = None
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != json.loads(json.dumps(key, sort_keys=True, default=str)):
            problem = "stale (built for something else)"
        else:
            for name, checksum in meta["files"].items():
                if file_sha256(path / name) != checksum:
                    problem = f"corrupt ({name} does not match its checksum)"
                    break
    except (OSError, ValueError, KeyError, TypeError):
        problem = "corrupt (unreadable metadata)"
    if problem:
        warnings.warn(f"engine cache entry {path.name} is {problem}; rebuilding it")
        shutil.rmtree(path, ignore_errors=True)
        return None
    return path


def store(key: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """Build an entry with ``build(tmp_folder)`` (it writes the artefacts), then move it into place."""
    final = entry_path(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        t0 = time.perf_counter()
        build(tmp)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        meta = {"format": FORMAT, "key": key, "files": files, "created": time.time(),
                "build_seconds": time.perf_counter() - t0,
                "bytes": sum((tmp / n).stat().st_size for n in files)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def get_or_build(key: dict[str, Any], build: Callable[[Path], None]) -> tuple[Path, bool]:
    """(entry folder, True if it came from the cache)."""
    hit = lookup(key)
    if hit is not None:
        return hit, True
    return store(key, build), False


def checksum(path: Path) -> str:
    """The SHA-256 of an entry's file as its ``meta.json`` records it (checked when the entry was looked up)."""
    return json.loads((path.parent / "meta.json").read_text())["files"][path.name]


def entries() -> list[dict[str, Any]]:
    out = []
    root = engines_dir()
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir():
            continue
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {"key": {}, "bytes": sum(p.stat().st_size for p in d.iterdir() if p.is_file()), "broken": True}
        meta["path"] = str(d)
        out.append(meta)
    return out


def clear() -> int:
    root = engines_dir()
    n = 0
    if root.is_dir():
        for d in root.iterdir():
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
            n += 1
    return n
