"""The community catalogue: `vsr models pull NAME` through a mirror on 127.0.0.1 (no other address is ever
contacted), hash checks, failures that leave nothing, and `-m NAME` once pulled."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading

import pytest
import torch

from vsr import catalogue
from vsr.community import CommunityError, _spandrel

try:
    _spandrel()
except CommunityError:
    pytest.skip("spandrel is not installed (pip install 'vsr[community]')", allow_module_level=True)


def _compact_bytes(tmp_path, seed: int = 0) -> bytes:
    import importlib

    torch.manual_seed(seed)
    model = importlib.import_module("spandrel.architectures.Compact").Compact(num_feat=8, num_conv=2, upscale=4)
    path = tmp_path / f"compact{seed}.pth"
    torch.save({"params": model.state_dict()}, path)
    return path.read_bytes()


class Mirror:
    """An HTTP server on 127.0.0.1 serving ``files``; ``broken`` names are cut off half way (the connection closes
    before the promised length), unknown names are 404. ``asked`` lists the paths requested."""

    def __init__(self):
        self.files, self.broken, self.asked = {}, set(), []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.asked.append(self.path)
                if name not in mirror.files:
                    self.send_error(404)
                    return
                data = mirror.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if name in mirror.broken else data)
                if name in mirror.broken:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))  # each test pulls into a cache of its own
    m = Mirror()
    monkeypatch.setenv("VSR_MODEL_MIRROR", m.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield m
    m.close()


def _entry(name: str, data: bytes, scale: int = 4) -> catalogue.Entry:
    return catalogue.Entry(name=name, title=name, purpose="real", description="a test model", scale=scale,
                           architecture="Compact", licence="CC-BY-NC-4.0", author="tests", file=f"{name}.pth",
                           size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                           url=f"http://127.0.0.1:9/{name}.pth", openmodeldb="")


@pytest.fixture
def tiny(tmp_path, monkeypatch, mirror):
    """A catalogue of one small Real-ESRGAN-layout model, served by the mirror."""
    data = _compact_bytes(tmp_path)
    entry = _entry("tiny-x4", data)
    monkeypatch.setattr(catalogue, "entries", lambda: (entry,))
    mirror.files[entry.file] = data
    return entry


def _leftovers():
    folder = catalogue.models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_the_catalogue_says_what_each_model_is_and_where_it_comes_from():
    names = [e.name for e in catalogue.entries()]
    assert len(names) == len(set(names)) >= 10
    for required in ("realesr-general-x4v3", "realesr-general-wdn-x4v3", "realesr-animevideov3",
                     "realesrgan-x4plus", "realesrgan-x2plus", "realesrgan-x4plus-anime-6b"):
        assert required in names
    for e in catalogue.entries():
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0 and e.size > 0 and e.url.startswith("https://")
        assert e.url.rsplit("/", 1)[-1] == e.file and e.purpose in catalogue.PURPOSES and e.licence and e.scale in (2, 4)


def test_pull_then_run_by_name(tmp_path, tiny, mirror, cli):
    from vsr._testclips import make_clip

    src = make_clip(tmp_path / "in.mkv", width=48, height=32, frames=4, audio=False)
    rc, _, err = cli("upscale", src, tmp_path / "early.mkv", "-m", "tiny-x4", "--backend", "torch")
    assert rc == 1 and "vsr models pull tiny-x4" in err and mirror.asked == []  # nothing downloads unasked
    rc, out, err = cli("models", "--json")
    row = next(r for r in json.loads(out) if r["name"] == "tiny-x4")
    assert row["source"] == "community" and row["pulled"] is False and row["scales"] == [4]
    assert row["licence"] == "CC-BY-NC-4.0"
    rc, _, err = cli("models", "pull", "tiny-x4")
    assert rc == 0 and "pulled tiny-x4" in err and "non-commercial" in err, err
    assert catalogue.path_of(tiny).read_bytes() == mirror.files[tiny.file] and _leftovers() == [tiny.file]
    rc, out, _ = cli("models", "--json")
    assert next(r for r in json.loads(out) if r["name"] == "tiny-x4")["pulled"] is True
    rc, _, err = cli("upscale", src, tmp_path / "out.mkv", "-m", "tiny-x4", "-s", "2", "--backend", "openvino")
    assert rc == 0, err
    assert "model tiny-x4 ×4" in err and "resized to ×2" in err
    import av

    with av.open(str(tmp_path / "out.mkv")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (96, 64)
    rc, _, err = cli("models", "pull", "tiny-x4")
    assert rc == 0 and "already pulled" in err and len(mirror.asked) == 1
    rc, out, err = cli("eval", src, "-m", "tiny-x4", "--max-frames", "3")  # scored at its own ×4, as pulled
    assert rc == 0 and "tiny-x4" in out and "temporal stage" in out, err
    rc, out, err = cli("bench", "-m", "tiny-x4", "--size", "270p", "--frames", "3", "--repeat", "1", "--no-e2e",
                       "--backend", "torch", "--precision", "fp32")
    assert rc == 0 and "tiny-x4" in out + err, err


def test_a_progress_bar_follows_the_download(tiny):
    class Bar:
        total, done, closed = 0, 0, False

        def update(self, n):
            self.done += n

        def reset(self):
            self.done = 0

        def close(self):
            self.closed = True

    bar = Bar()
    catalogue.pull(tiny, bar)
    assert bar.total == tiny.size and bar.done >= tiny.size and bar.closed


@pytest.mark.parametrize("how", ["mismatch", "interrupted", "404", "no server"])
def test_a_download_that_fails_leaves_nothing_and_says_how_to_get_the_file(tmp_path, tiny, mirror, monkeypatch, cli,
                                                                          how):
    if how == "mismatch":
        mirror.files[tiny.file] = _compact_bytes(tmp_path, seed=1)  # another file under the same name
    elif how == "interrupted":
        mirror.broken.add(tiny.file)
    elif how == "404":
        del mirror.files[tiny.file]
    else:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("VSR_MODEL_MIRROR", f"http://127.0.0.1:{port}")
    rc, _, err = cli("models", "pull", "tiny-x4")
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("error: ") and "nothing was kept" in err, err
    assert tiny.url in err and "VSR_MODEL_MIRROR" in err  # how to get it by hand
    assert {"mismatch": "sha256", "interrupted": "broke off", "404": "HTTP 404", "no server": "cannot reach"}[how] in err
    assert _leftovers() == []


def test_a_mirror_folder_serves_machines_without_internet(tmp_path, tiny, mirror, monkeypatch):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / tiny.file).write_bytes(mirror.files[tiny.file])
    monkeypatch.setenv("VSR_MODEL_MIRROR", str(folder))
    assert catalogue.pull(tiny).read_bytes() == mirror.files[tiny.file] and mirror.asked == []


def test_the_real_community_file_through_the_mirror(shared, tmp_path, mirror, monkeypatch):
    """The real realesr-animevideov3.pth in ../shared is a recompressed copy, not the publisher's file: its hash is
    not the one Real-ESRGAN published, so the catalogue's entry refuses it and keeps nothing; under its own hash it
    pulls and runs."""
    real = (shared / "community_weights" / "realesr-animevideov3.pth").read_bytes()
    mirror.files["realesr-animevideov3.pth"] = real
    published = catalogue.find("realesr-animevideov3")
    with pytest.raises(Exception, match="sha256"):
        catalogue.pull(published)
    assert _leftovers() == []
    own = _entry("realesr-animevideov3", real)
    monkeypatch.setattr(catalogue, "entries", lambda: (own,))
    path = catalogue.pull(own)
    from vsr.zoo import load_model

    model, info = load_model("realesr-animevideov3", 4)
    assert info.name == "realesr-animevideov3" and info.path == path
    assert sum(p.numel() for p in model.parameters()) == 621_424


def test_the_documents_list_every_catalogued_model():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "community.md").read_text()
    assert all(f"`{e.name}`" in text for e in catalogue.entries())
