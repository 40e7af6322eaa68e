"""Community models vsr has checked (``vsr/catalogue.toml``): pulled by name, kept in vsr's cache, run with ``-m NAME``.

``vsr models pull NAME`` downloads a model's file from its publisher with pooch, checks its sha256, and keeps it in
``<cache>/models/`` (``$VSR_CACHE`` overrides the cache folder, as for engines). pooch downloads to a temporary file
beside the target and moves it into place only once the hash matches, so an interrupted or wrong download leaves
nothing. ``VSR_MODEL_MIRROR`` (a URL, or a local folder) replaces the publishers: files are looked up there by their
file names — for machines without internet access, and for the tests. Nothing is ever downloaded unasked.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import tomllib

from vsr.errors import VsrError

CATALOGUE = Path(__file__).with_name("catalogue.toml")
PURPOSES = {"real": "real footage", "denoise": "noisy footage", "animation": "animation", "clean": "clean detail"}


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    purpose: str  # real | denoise | animation | clean
    description: str
    scale: int
    architecture: str  # as spandrel names its family: Compact, ESRGAN, SPAN, RealPLKSR
    licence: str  # SPDX
    author: str
    file: str
    size: int  # bytes
    sha256: str
    url: str  # the publisher's
    openmodeldb: str  # the model's id on OpenModelDB

    @property
    def non_commercial(self) -> bool:
        return "-NC" in self.licence


@functools.cache
def entries() -> tuple[Entry, ...]:
    with open(CATALOGUE, "rb") as f:
        return tuple(Entry(**m) for m in tomllib.load(f)["model"])


def find(name: str) -> Entry | None:
    return next((e for e in entries() if e.name == name), None)


def models_dir() -> Path:
    from engines.cache import cache_root

    return cache_root() / "models"


def path_of(entry: Entry) -> Path:
    return models_dir() / entry.file


def pulled(entry: Entry) -> bool:
    p = path_of(entry)
    return p.is_file() and p.stat().st_size == entry.size


def not_pulled(entry: Entry) -> VsrError:
    return VsrError(f"{entry.name} is not pulled yet: run `vsr models pull {entry.name}` "
                    f"({entry.size / 1e6:.1f} MB from {_host(entry.url)})")


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


class _FromFolder:
    """A pooch downloader that copies the file from a local folder (VSR_MODEL_MIRROR as a path)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __call__(self, url: str, output_file, pooch, check_only: bool = False):
        source = self.folder / url.rsplit("/", 1)[-1]
        if not source.is_file():
            raise FileNotFoundError(f"no {source.name} in {self.folder}")
        if check_only:
            return True
        with open(source, "rb") as src, open(output_file, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return None


def source_of(entry: Entry) -> tuple[str, object]:
    """(URL, pooch downloader or None) for an entry: its publisher's, or VSR_MODEL_MIRROR's."""
    mirror = os.environ.get("VSR_MODEL_MIRROR", "").strip()
    if not mirror:
        return entry.url, None
    if "://" in mirror and not mirror.startswith("file://"):
        return f"{mirror.rstrip('/')}/{entry.file}", None
    folder = Path(mirror.removeprefix("file://")).expanduser()
    return f"file://{folder}/{entry.file}", _FromFolder(folder)


def pull(entry: Entry, progress=None) -> Path:
    """Download ``entry`` (unless it is already here and whole), check its sha256, keep it; returns its path.
    ``progress``: an object pooch can drive (``total``, ``update(n)``, ``reset()``, ``close()``)."""
    import pooch
    import requests

    url, downloader = source_of(entry)
    if downloader is None:
        downloader = pooch.HTTPDownloader(progressbar=progress or False, timeout=30)
    pooch.get_logger().setLevel("WARNING")  # (its "Downloading data from …" lines: vsr says what it does)
    target = path_of(entry)
    by_hand = (f"nothing was kept. To get it by hand, download {entry.url} and put it at {target}, or point "
               f"VSR_MODEL_MIRROR at a folder (or URL) that holds {entry.file}")
    try:
        pooch.retrieve(url, known_hash=f"sha256:{entry.sha256}", fname=entry.file, path=models_dir(),
                       downloader=downloader)
    except ValueError as e:  # the hash did not match
        raise VsrError(f"{entry.name}: the file from {url} is not the one published (its sha256 differs: "
                       f"{str(e).splitlines()[0][:160]}); {by_hand}") from None
    except requests.exceptions.HTTPError as e:
        raise VsrError(f"cannot download {entry.name} from {url} (HTTP {e.response.status_code}); {by_hand}") from None
    except (requests.exceptions.RequestException, OSError) as e:
        ex = requests.exceptions
        reasons = [(ex.Timeout, f"{_host(url)} did not answer in time"), (ex.ConnectionError, f"cannot reach {_host(url)}"),
                   (ex.ChunkedEncodingError, "the download broke off")]
        reason = next((r for kind, r in reasons if isinstance(e, kind)), None)
        reason = reason or (e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:160])
        raise VsrError(f"cannot download {entry.name} from {url} ({reason}); {by_hand}") from None
    finally:
        if progress is not None:
            progress.close()
    return target
