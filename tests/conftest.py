from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Engines built by a test go to a throwaway cache, never the user's."""
    monkeypatch.setenv("VSR_CACHE", str(tmp_path_factory.getbasetemp() / "vsr-cache"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "val" / "Set5").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


@pytest.fixture
def natural_rgb() -> np.ndarray:
    """A smooth-and-textured synthetic photo, 96×128 RGB uint8."""
    from vsr.testclips import scene

    return scene(96, 128, 3, seed=1)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from vsr.cli import main

    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def cli(capsys):
    return lambda *args: run_cli(list(args), capsys)
