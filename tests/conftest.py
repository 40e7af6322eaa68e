from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vsr.jobs import Reporter

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
    from vsr._testclips import scene

    return scene(96, 128, 3, seed=1)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from vsr.cli import main

    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def cli(capsys):
    return lambda *args: run_cli(list(args), capsys)


# the architectures of the shipped models, at test size
SMALL = {
    "sr-lite": ("window", {"window": 1, "state": False, "features": 16, "blocks": 2}),
    "mf-fast": ("mfsr", {"features": 16, "blocks": 2, "flow_features": 16}),
    "mf-dis": ("window", {"window": 3, "state": False, "features": 16, "blocks": 1}),
    "rvsr": ("window", {"window": 3, "state": True, "features": 16, "blocks": 1}),
    "edsr": ("edsr", {"features": 16, "blocks": 2}),
    "bicubic": ("bicubic", {}),
}


def small(name: str, scale: int = 2, seed: int = 0, **over):
    """A test-size model with the architecture a shipped model has, random weights (seeded), in eval mode."""
    import torch

    from vsr.models import build

    arch, params = SMALL[name]
    torch.manual_seed(seed)
    return build(arch, scale=scale, **{**params, **over}).eval()


def pan(n: int, h: int = 40, w: int = 56, speed: float = 1.5, dtype=np.uint8) -> list[np.ndarray]:
    """n frames of a panning synthetic scene (uint8, or scaled to uint16)."""
    from vsr._testclips import scene

    frames = [scene(h, w, t, speed=speed) for t in range(n)]
    return frames if dtype == np.uint8 else [f.astype(np.uint16) * 257 for f in frames]


class Collect(Reporter):
    """A job's reporter that keeps what it says and warns."""

    def __init__(self):
        self.warnings, self.said = [], []

    def say(self, msg):
        self.said.append(msg)

    def warn(self, msg):
        self.warnings.append(msg)

    def error(self, msg):
        self.said.append(f"error: {msg}")


def run_job(src, dst, runner, *, info=None, scheduler=None, stop=None, ui=None, **settings):
    """``vsr upscale``'s route (vsr.jobs.Job) on one input with a runner built by the test; ``settings``: fields of
    vsr.jobs.Settings (``segment_seconds`` 0, one pass, unless given). Returns (JobResult, warnings)."""
    import threading
    from pathlib import Path

    from vsr.jobs import Job, Settings

    settings.setdefault("segment_seconds", 0)
    ui = ui or Collect()
    job = Job(Settings(backend="torch", precision="fp32", **settings), ui, stop or threading.Event()).use(runner, info)
    job.scheduler = scheduler
    try:
        return job.file(Path(src), Path(dst)), ui.warnings
    finally:
        job.close()
