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


def _model(kind: str):
    """A small network of an architecture spandrel recognises, random weights, and its state dict as files hold it."""
    torch.manual_seed(0)
    if kind == "compact":  # Real-ESRGAN's video model family, saved under "params" as Real-ESRGAN saves it
        model = _arch("Compact", "Compact")(num_feat=16, num_conv=4, upscale=4, act_type="prelu")
        return model, {"params": model.state_dict()}
    model = {
        "esrgan": lambda: _arch("ESRGAN", "ESRGAN")(num_filters=16, num_blocks=1, scale=2),
        # RealESRGAN_x2plus: the ×4 network behind a pixel unshuffle (12 channels in): ×2
        "esrgan-x2plus": lambda: _arch("ESRGAN", "ESRGAN")(in_nc=12, out_nc=3, num_filters=8, num_blocks=1, scale=4,
                                                         shuffle_factor=2),
        "span": lambda: _arch("SPAN", "SPAN")(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2),
        "realplksr": lambda: _arch("PLKSR", "RealPLKSR")(dim=16, n_blocks=2, upscaling_factor=2, kernel_size=7),
        "swinir": lambda: _arch("SwinIR", "SwinIR")(img_size=16, in_chans=3, embed_dim=12, depths=[1], num_heads=[2],
                                                    window_size=4, upscale=2, upsampler="pixelshuffledirect"),
        "dncnn": lambda: _arch("DnCNN", "DnCNN")(in_nc=3, out_nc=3, nc=16, nb=17),  # a denoiser: not an upscaler
    }[kind]()
    return model, model.state_dict()


def _file(tmp_path, kind: str, fmt: str = ".pth"):
    """A community file with the real key layout of an architecture, random weights."""
    model, state = _model(kind)
    path = tmp_path / f"{kind}{fmt}"
    if fmt == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path, model.eval()


# one small instance for each architecture in the catalogue (vsr/catalogue.toml)
CATALOGUED = {"Compact": "compact", "ESRGAN": "esrgan", "SPAN": "span", "RealPLKSR": "realplksr"}


def test_every_catalogue_architecture_is_tested_here():
    from vsr.catalogue import entries

    assert {e.architecture for e in entries()} <= set(CATALOGUED)


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("kind,fmt,scale", [("compact", ".pth", 4), ("esrgan", ".safetensors", 2),
                                            ("esrgan-x2plus", ".pth", 2), ("span", ".pth", 2),
                                            ("realplksr", ".safetensors", 2)])
def test_community_models_run_on_torch_and_openvino_alike(tmp_path, kind, fmt, scale):
    """Every catalogued architecture: the file's network as spandrel builds it, and OpenVINO within 45 dB of torch."""
    from engines.openvino_backend import OpenVINORunner
    from engines.torch_backend import TorchRunner

    path, original = _file(tmp_path, kind, fmt)
    model, info = load_community(path)
    assert info.scale == model.scale == scale and info.frames == 1 and info.arch.startswith("spandrel:")
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():  # the same network, the file's weights (SPAN: its blocks folded once, not every call)
        assert torch.allclose(model(x), original(x), atol=1e-5)
    frame = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    ref = TorchRunner(model)([frame])
    out = OpenVINORunner(model, precision="fp32")([frame])
    assert out.shape == ref.shape == (20 * scale, 28 * scale, 3)
    assert _psnr8(out, ref) >= 45


def test_a_model_that_does_not_export_runs_on_torch_with_one_warning(tmp_path):
    """SwinIR (spandrel's) cannot be exported with dynamic sizes: auto falls back to torch, with one warning."""
    from engines import BackendError, create_runner
    from engines.openvino_backend import OpenVINORunner

    path, original = _file(tmp_path, "swinir", ".safetensors")
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

    from vsr._testclips import make_clip

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
    deep = make_clip(tmp_path / "ten.mkv", width=64, height=48, frames=4, codec="libx265", pix_fmt="yuv420p10le",
                     audio=False)  # 10-bit stays 10-bit, through the model and the temporal stage
    rc, _, err = cli("upscale", deep, tmp_path / "ten_x4.mkv", "-m", path, "--backend", "openvino", "--temporal", "on")
    assert rc == 0 and "temporal stage on" in err, err
    with av.open(str(tmp_path / "ten_x4.mkv")) as c:
        f = next(c.decode(video=0))
        assert f.format.name.endswith("10le") and (f.width, f.height) == (256, 192)


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
