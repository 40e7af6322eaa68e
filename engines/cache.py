"""The engine cache: one folder per engine, named by a key that says what makes it different.

An entry's key holds everything that changes the built artefact: the weights'
hash, architecture and hyperparameters, a hash of the code that makes the
graph, scale, frames, input shape or profile, precision, runtime name and
version, the device, and for a compiled engine the checksum of the ONNX file it
was built from. Entries are built in a temporary folder and renamed into place;
``meta.json`` records the key, a display name and a SHA-256 of every artefact,
so a corrupt or stale entry is detected, removed with a warning and rebuilt,
never loaded. The cache lives in the user cache directory (``$VSR_CACHE``
overrides), never inside the package.

Size: every input resolution is an engine of its own, so the cache is capped
(``$VSR_CACHE_MAX``: 2G by default, 0 for no cap). ``meta.json``'s modification
time is an entry's last use (a hit touches it); after a new entry is stored the
least recently used ones are removed until the cache fits, never the new one
nor one this process holds for later builds (its ONNX files).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = 1
DEFAULT_MAX = "2G"
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_held: set[str] = set()  # entries this process will read again (ONNX files it compiles more shapes from)


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


def parse_size(text: str) -> int:
    """Bytes in "2G", "500M", "1.5GiB", "123" (k/M/G/T decimal, Ki/Mi/Gi/Ti binary, a trailing B allowed)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]i?)?b?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 2G, 500M, 0 for no cap)")
    return int(float(m[1]) * _UNITS[(m[2] or "").lower()])


def max_bytes() -> int:
    """The cache's cap in bytes from ``$VSR_CACHE_MAX`` (0: none)."""
    env = os.environ.get("VSR_CACHE_MAX", "").strip() or DEFAULT_MAX
    try:
        return parse_size(env)
    except ValueError:
        from engines.errors import BackendError

        raise BackendError(f"VSR_CACHE_MAX={env!r} is not a size (e.g. 2G, 500M; 0 for no cap)") from None


def human(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


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
        _touch(path / "meta.json")
        if meta.get("format") != FORMAT or meta.get("key") != json.loads(json.dumps(key, sort_keys=True, default=str)):
            problem = "stale (built for something else)"
        else:
            for name, checksum in meta["files"].items():
                if file_sha256(path / name) != checksum:
                    problem = f"corrupt ({name} does not match its checksum)"
                    break
    except (OSError, ValueError, KeyError, TypeError):
        if not path.is_dir():  # removed meanwhile (another process trimming the cache): not there, not damaged
            return None
        problem = "corrupt (unreadable metadata)"
    if problem:
        warnings.warn(f"engine cache entry {path.name} is {problem}; rebuilding it")
        shutil.rmtree(path, ignore_errors=True)
        return None
    return path


def _touch(meta: Path) -> None:
    """Record a use (the size cap removes the least recently used first); no checksummed file is rewritten."""
    try:
        os.utime(meta)
    except OSError:  # a read-only cache still serves its entries
        pass


def store(key: dict[str, Any], build: Callable[[Path], None], name: str = "") -> Path:
    """Build an entry with ``build(tmp_folder)`` (it writes the artefacts), move it into place, then trim the
    cache to its cap. ``name`` is what listings show (the model's name)."""
    limit = max_bytes()  # a bad $VSR_CACHE_MAX fails before the build, not after it
    final = entry_path(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        t0 = time.perf_counter()
        build(tmp)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        meta = {"format": FORMAT, "key": key, "name": name, "files": files, "created": time.time(),
                "build_seconds": time.perf_counter() - t0,
                "bytes": sum((tmp / n).stat().st_size for n in files)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(limit, keep=final)
    return final


def get_or_build(key: dict[str, Any], build: Callable[[Path], None], name: str = "",
                 hold: bool = False) -> tuple[Path, bool]:
    """(entry folder, True if it came from the cache). ``hold``: this process reads the entry again later, so
    trimming the cache leaves it alone."""
    hit = lookup(key)
    path = hit if hit is not None else store(key, build, name)
    if hold:
        _held.add(str(path))
    return path, hit is not None


def checksum(path: Path) -> str:
    """The SHA-256 of an entry's file as its ``meta.json`` records it (checked when the entry was looked up)."""
    return json.loads((path.parent / "meta.json").read_text())["files"][path.name]


def _remove(path: Path) -> bool:
    """Remove an entry folder: renamed away first, so no other process ever reads half of it."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    try:
        os.replace(path, trash)
    except OSError:
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune(limit: int, keep: Path | None = None, spare_held: bool = True) -> list[dict[str, Any]]:
    """Remove the least recently used entries until the cache holds at most ``limit`` bytes (0: no cap); never
    ``keep`` nor (``spare_held``) an entry this process holds. Returns the removed entries."""
    if limit <= 0:
        return []
    listed = entries()
    total = sum(e["size"] for e in listed)
    removed = []
    for e in sorted(listed, key=lambda e: e["used"]):
        if total <= limit:
            break
        if (spare_held and e["path"] in _held) or (keep is not None and e["path"] == str(keep)):
            continue
        if _remove(Path(e["path"])):
            total -= e["size"]
            removed.append(e)
    return removed


def entries() -> list[dict[str, Any]]:
    """Every entry's metadata, plus ``path``, ``size`` (bytes on disk), ``used`` (last use, epoch seconds) and
    ``name`` (what to call it)."""
    out = []
    root = engines_dir()
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir():
            continue
        try:
            files = [p.stat() for p in d.iterdir() if p.is_file()]
            used = (d / "meta.json").stat().st_mtime if (d / "meta.json").exists() else d.stat().st_mtime
        except OSError:  # removed meanwhile
            continue
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {"key": {}, "bytes": sum(f.st_size for f in files), "broken": True}
        key = meta.get("key") or {}
        meta.update(path=str(d), size=sum(f.st_size for f in files), used=used,
                    name=meta.get("name") or key.get("name") or key.get("arch") or "?")
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
