import json
import time

import numpy as np
import pytest
import torch

from engines import BackendError, cache, candidates, create_runner
from engines.onnx_export import export_onnx
from engines.openvino_backend import OpenVINORunner
from engines.tensorrt_backend import BUCKETS, Profile, TensorRTRunner, bucket_for, engine_key, profile_for
from vsr.models import MODELS

# big presets are exported with fewer blocks: the architecture, not the depth, is what export exercises
LIGHT = {"edsr-large": {"blocks": 2}, "rrdb": {"blocks": 2}, "edsr": {"blocks": 4}, "vdsr": {"depth": 6},
         "srresnet": {"blocks": 4}, "mf-quality": {"blocks": 2}}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 200.0 if mse == 0 else 10 * np.log10(1 / mse)


def _inputs(model, natural_rgb):
    """A random window, a still one and (multi-frame) a moving one; with their flows for flow-input models."""
    from vsr.flow import with_flows

    h, w = 24, 40  # not the export's shape; multiples of 8 for the multi-frame models
    frames = int(getattr(model, "frames", 1))
    rnd = torch.rand(1, 3 * frames, h, w)
    crop = lambda dy, dx: torch.from_numpy(natural_rgb[4 + dy : 4 + dy + h, 4 + dx : 4 + dx + w].copy())  # noqa: E731
    nat = crop(0, 0).permute(2, 0, 1)[None].float().div(255).repeat(1, frames, 1, 1)
    xs = [rnd, nat]
    if frames == 3:
        xs.append(torch.cat([crop(-1, 2), crop(0, 0), crop(1, -2)], 2).permute(2, 0, 1)[None].float().div(255))
    return [with_flows(x) for x in xs] if getattr(model, "flow_input", False) else xs


EXPORT_CASES = [(name, {}) for name in MODELS] + [("mf-fast", {"phase": True}), ("mf-fast", {"phase": True, "refine": True})]


@pytest.mark.parametrize("name,extra", EXPORT_CASES, ids=["-".join([n, *e]) for n, e in EXPORT_CASES])
def test_onnx_and_openvino_parity(name, extra, tmp_path, natural_rgb):
    """Every model exports to ONNX with dynamic H×W and runs the same through OpenVINO (fp32)."""
    import openvino as ov

    torch.manual_seed(0)
    spec = MODELS[name]
    model = spec.build(2, **{**LIGHT.get(name, {}), **extra}).eval()
    for head in (getattr(model, h, None) for h in ("flow_coarse", "flow_fine", "flow_refine")):
        if head is not None:  # give the zero-initialised flow heads an output, so the warps move pixels
            for p in head[-1].parameters():
                torch.nn.init.normal_(p, std=0.1)
    path = export_onnx(model, tmp_path / "m.onnx", example_hw=(32, 32))
    import onnx

    graph = onnx.load(str(path)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[2], str) and isinstance(dims[3], str)  # dynamic height and width
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for x in _inputs(model, natural_rgb):  # a shape other than the export's
        with torch.no_grad():
            ref = model(x).numpy()
        out = compiled(x.numpy())[0]
        assert out.shape == ref.shape
        assert _psnr(out, ref) >= 50


def _runner(tmp_path, **kw):
    model = MODELS["espcn"].build(2).eval()
    return OpenVINORunner(model, weights_id="test-weights", **kw)


def test_openvino_cache_hit_miss_and_corruption(tmp_path, monkeypatch):
    r1 = _runner(tmp_path, precision="fp32", shape=(20, 28))
    entry, hit = r1.last_build
    assert not hit
    t = time.perf_counter()
    r2 = _runner(tmp_path, precision="fp32", shape=(20, 28))
    assert r2.last_build == (entry, True) and time.perf_counter() - t < 5
    x = torch.rand(1, 3, 20, 28)
    assert torch.allclose(r1(x), r2(x))
    # another shape or precision is another engine
    r3 = _runner(tmp_path, precision="fp32", shape=(24, 28))
    assert r3.last_build[0] != entry
    # a corrupt blob is rebuilt with a warning, never loaded
    blob = next(p for p in __import__("pathlib").Path(entry).iterdir() if p.name == "model.blob")
    blob.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt"):
        r4 = _runner(tmp_path, precision="fp32", shape=(20, 28))
    assert r4.last_build[1] is False and torch.allclose(r4(x), r1(x))
    # stale metadata (a key that does not match) is rebuilt too
    meta_path = __import__("pathlib").Path(entry) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["key"]["precision"] = "something else"
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="stale"):
        _runner(tmp_path, precision="fp32", shape=(20, 28))


def test_cache_lives_where_vsr_cache_says(tmp_path, monkeypatch):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "c"))
    _runner(tmp_path, precision="fp32", shape=(16, 16))
    listed = cache.entries()
    assert listed and all(e["path"].startswith(str(tmp_path / "c")) for e in listed)
    assert cache.clear() == len(listed) and cache.entries() == []


def test_openvino_bf16_when_the_cpu_has_it():
    import openvino as ov

    r = _runner(None)
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert r.precision == ("bf16" if "BF16" in caps else "fp32")


def test_unsupported_precision_is_a_clear_error():
    with pytest.raises(BackendError, match="fp16"):
        create_runner(MODELS["bicubic"].build(2), backend="torch", precision="fp16")  # no CUDA here
    with pytest.raises(BackendError, match="unknown precision"):
        create_runner(MODELS["bicubic"].build(2), backend="torch", precision="fp8")


def test_auto_falls_back_with_a_warning(monkeypatch):
    import engines.base as base

    monkeypatch.setattr(base, "candidates", lambda b: ["tensorrt", "openvino", "torch"])
    warnings = []
    runner = create_runner(MODELS["bicubic"].build(2), backend="auto", warn=warnings.append, weights_id="w")
    assert runner.name == "openvino"
    assert len(warnings) == 1 and "tensorrt" in warnings[0]


def test_auto_order_on_this_machine():
    order = candidates("auto")
    assert order[-1] == "torch"
    if not torch.cuda.is_available():
        assert "tensorrt" not in order and "torch-cuda" not in order


# -- TensorRT: logic without a GPU ---------------------------------------------------------


def test_tensorrt_missing_runtime_hint():
    with pytest.raises(BackendError) as e:
        TensorRTRunner(MODELS["bicubic"].build(2))
    assert "pip install vsr[tensorrt]" in str(e.value) or "NVIDIA GPU" in str(e.value)


@pytest.mark.parametrize("hw,bucket", [((270, 480), (288, 512)), ((480, 854), (544, 960)), ((720, 1280), (736, 1280)),
                                       ((1080, 1920), (1088, 1920)), ((854, 480), (960, 544)), ((16, 16), (288, 512))])
def test_tensorrt_buckets(hw, bucket):
    assert bucket_for(*hw) == bucket


def test_tensorrt_profile_and_key():
    p = profile_for((1, 9, 270, 480), multiple=4)
    assert p.opt == (1, 9, 270, 480) and p.max == (1, 9, 288, 512) and p.min[2] % 4 == 0
    assert p.contains((1, 9, 270, 480)) and not p.contains((1, 9, 300, 480)) and not p.contains((2, 9, 270, 480))
    with pytest.raises(BackendError, match="use --tile"):
        bucket_for(5000, 5000)
    model = MODELS["mf-fast"].build(2)
    k = engine_key(model, "abc", p, "fp16", "10.9", {"device": "NVIDIA H100", "compute_capability": "9.0"})
    for field in ("weights", "arch", "hparams", "scale", "frames", "profile", "precision", "runtime", "device",
                  "compute_capability"):
        assert field in k
    k2 = engine_key(model, "abc", p, "fp16", "10.9", {"device": "NVIDIA L4", "compute_capability": "8.9"})
    assert cache.digest(k) != cache.digest(k2)
    assert isinstance(p, Profile) and BUCKETS[0] == (288, 512)


@pytest.mark.gpu
def test_tensorrt_parity_on_gpu():
    pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    torch.manual_seed(0)
    model = MODELS["mf-fast"].build(2).eval()
    runner = TensorRTRunner(model, precision="fp32", weights_id="gpu-test", shape=(64, 96))
    x = torch.rand(1, 9, 64, 96)
    with torch.no_grad():
        ref = model(x)
    assert _psnr(runner(x).numpy(), ref.numpy()) >= 50
    again = TensorRTRunner(model, precision="fp32", weights_id="gpu-test", shape=(64, 96))
    assert again.last_build[1] is True


def test_build_engine_cli_hit_and_listing(cli, tmp_path):
    rc, out, err = cli("build-engine", "-m", "bicubic", "-s", "2", "--height", "30", "--width", "40", "--precision", "fp32")
    assert rc == 0 and out.startswith("built:"), err
    rc, out, _ = cli("build-engine", "-m", "bicubic", "-s", "2", "--height", "30", "--width", "40", "--precision", "fp32")
    assert rc == 0 and out.startswith("cache hit:")
    assert float(out.split(",")[-1].split("s")[0]) < 1.0  # seconds of (no) build time
    rc, out, _ = cli("engines")
    assert rc == 0 and "1×3×30×40" in out and "fp32" in out
    rc, _, err = cli("build-engine", "-m", "bicubic", "--backend", "tensorrt", "--height", "8", "--width", "8")
    assert rc == 1 and ("pip install vsr[tensorrt]" in err or "NVIDIA" in err)
    rc, out, _ = cli("engines", "--clear")
    assert rc == 0 and "removed" in out


@pytest.mark.parametrize("name", ["espcn", "mf-fast", "mf-dis"])
def test_openvino_frame_io_matches_the_float_path(name):
    """8-bit frames through the graph (conversions inside the engine) = the host path, within a code value."""
    from engines.torch_backend import TorchRunner

    torch.manual_seed(0)
    model = MODELS[name].build(2).eval()
    ov_runner = OpenVINORunner(model, precision="fp32", weights_id=f"fio-{name}")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (30, 44, 3), dtype=np.uint8) for _ in range(model.frames if hasattr(model, "frames") else 1)]
    out = ov_runner.run_frames(frames)
    ref = TorchRunner(model).run_frames(frames)
    assert out.shape == ref.shape == (60, 88, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
