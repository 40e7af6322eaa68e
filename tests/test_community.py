"""Community weight files (spandrel): recognised, run on every CPU backend, through the pipeline, and refused
clearly when they are not image-to-image super-resolution models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED

from vsr.community import CommunityError, _spandrel, load_community

try:
    _spandrel()
except CommunityError:
    pytest.skip("spandrel is not installed (pip install 'vsr[community]')", allow_module_level=True)


def _arch(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(f"spandrel.architectures.{module}"), name)


def _file(tmp_path, kind: str, fmt: str = ".pth"):
    """A community file with the real key layout of an architecture, random weights."""
    torch.manual_seed(0)
    if kind == "compact":  # Real-ESRGAN's video model family, saved under "params" as Real-ESRGAN saves it
        model = _arch("Compact", "Compact")(num_feat=16, num_conv=4, upscale=4, act_type="prelu")
        state = {"params": model.state_dict()}
    elif kind == "esrgan":
        model = _arch("ESRGAN", "ESRGAN")(num_filters=16, num_blocks=1, scale=2)
        state = model.state_dict()
    elif kind == "span":
        model = _arch("SPAN", "SPAN")(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2)
        state = model.state_dict()
    elif kind == "dncnn":  # a denoiser: not an upscaler
        model = _arch("DnCNN", "DnCNN")(in_nc=3, out_nc=3, nc=16, nb=17)
        state = model.state_dict()
    path = tmp_path / f"{kind}{fmt}"
    if fmt == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path, model.eval()


@pytest.mark.parametrize("kind,fmt,scale", [("compact", ".pth", 4), ("esrgan", ".safetensors", 2)])
def test_community_models_run_on_torch_and_openvino_alike(tmp_path, kind, fmt, scale):
    from engines.openvino_backend import OpenVINORunner
    from engines.torch_backend import TorchRunner

    path, original = _file(tmp_path, kind, fmt)
    model, info = load_community(path)
    assert info.scale == model.scale == scale and info.frames == 1 and info.arch.startswith("spandrel:")
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), original(x), atol=1e-5)  # the same network, the file's weights
    frame = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    ref = TorchRunner(model)([frame])
    out = OpenVINORunner(model, precision="fp32")([frame])
    assert out.shape == ref.shape == (20 * scale, 28 * scale, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_a_model_that_does_not_export_runs_on_torch_with_one_warning(tmp_path):
    """spandrel's SPAN cannot be traced by torch.export (weights made in its forward): auto falls back to torch."""
    from engines import BackendError, create_runner
    from engines.openvino_backend import OpenVINORunner

    path, original = _file(tmp_path, "span", ".safetensors")
    model, info = load_community(path)
    assert info.scale == 2
    with pytest.raises(BackendError, match="ONNX export"):
        create_runner(model, backend="openvino")
    warnings = []
    runner = create_runner(model, backend="auto", warn=warnings.append)
    assert runner.name == "torch-cpu" and len(warnings) == 1 and "ONNX export" in warnings[0]
    assert not isinstance(runner, OpenVINORunner)
    frame = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    assert runner([frame]).shape == (40, 56, 3)


def test_a_community_model_upscales_a_video_keeping_audio_and_timestamps(tmp_path, cli):
    import av

    from vsr.testclips import make_clip

    path, _ = _file(tmp_path, "compact")
    src = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=5, audio=True, vfr=True)
    rc, _, err = cli("upscale", src, tmp_path / "out.mkv", "-m", path, "--backend", "openvino", "-q")
    assert rc == 0, err
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mkv")) as b:
        assert b.streams.video[0].width == 256 and b.streams.audio
        pts_in = [float(f.pts * f.time_base) for f in a.decode(video=0)]
        pts_out = [float(f.pts * f.time_base) for f in b.decode(video=0)]
    assert pts_out == pytest.approx(pts_in, abs=1e-3)
    rc, out, err = cli("models", "--file", path)
    assert rc == 0 and "Compact" in out and "×4" in out and "OpenVINO" in out, err


def test_files_that_are_not_upscalers_are_refused_in_one_line(tmp_path, cli):
    path, _ = _file(tmp_path, "dncnn")
    with pytest.raises(CommunityError, match="not a super-resolution model"):
        load_community(path)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    unknown = tmp_path / "unknown.pth"
    torch.save({"a.weight": torch.zeros(3, 3)}, unknown)
    src = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (16, 16)).save(src)
    for f, needle in ((path, "not a super-resolution model"), (broken, "not a readable weight file"),
                      (unknown, "does not recognise")):
        rc, _, err = cli("image", src, tmp_path / "o.png", "-m", f)
        assert rc == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "o.png").exists()


class _Payload:  # unpickling this would create a file: loading must never run it
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_loading_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"params": _Payload(str(marker))}, path)
    with pytest.raises(CommunityError, match="not a readable weight file"):
        load_community(path)
    assert not marker.exists()


def test_the_real_community_file_when_present():
    path = SHARED / "community_weights" / "realesr-animevideov3.pth"
    if not path.exists():
        pytest.skip("../shared/data/community_weights is not present")
    from engines.torch_backend import TorchRunner

    model, info = load_community(path)
    assert info.scale == 4 and "Compact" in info.arch and sum(p.numel() for p in model.parameters()) == 621_424
    out = TorchRunner(model)([np.full((12, 16, 3), 128, np.uint8)])
    assert out.shape == (48, 64, 3) and abs(int(out.mean()) - 128) < 16
