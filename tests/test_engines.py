"""Engines: integer frames in and out on every backend, ONNX/OpenVINO parity, the state of recurrent models, the
engine cache, and the TensorRT logic that can be checked without a GPU."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import pan, small

from engines import BackendError, Descriptor, Identity, cache, candidates, create_runner
from engines.graph import quantise
from engines.openvino_backend import OpenVINORunner
from engines.tensorrt_backend import BUCKETS, Profile, TensorRTRunner, bucket_for, engine_key, profile_for
from engines.torch_backend import TorchRunner
from vsr.windows import options_for, windows


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 200.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _clip_windows(model, n=3, dtype=np.uint8):
    return list(windows(((f, None) for f in pan(n, 30, 44, dtype=dtype)), **options_for(model)))


SHIPPED_ARCHS = ["sr-lite", "mf-fast", "mf-dis", "rvsr", "bicubic"]


@pytest.mark.parametrize("name", SHIPPED_ARCHS)
def test_onnx_graph_has_dynamic_sizes_and_openvino_matches_torch(name, tmp_path):
    """The exported graph takes any H×W; OpenVINO (fp32) gives torch's frames within a code value, frame after
    frame (a recurrent model's state included)."""
    import onnx

    from engines.onnx_export import cached_onnx

    model = small(name)
    ov, ref = OpenVINORunner(model, precision="fp32"), TorchRunner(model)
    for w in _clip_windows(model, 4):
        a, b = ov(w.frames, w.flows, w.reset), ref(w.frames, w.flows, w.reset)
        assert a.shape == b.shape == (60, 88, 3) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    graph = onnx.load(str(cached_onnx(model, ov.identity, io="u8"))).graph  # the file OpenVINO compiled (cached)
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[1], str) and isinstance(dims[2], str)  # N×H×W×3 frames: dynamic height and width


def test_one_rounding_rule_in_the_graph_and_on_the_host():
    """8-bit through the graph and 16-bit (host conversions, "f32" graph) quantise the same way: half up."""
    y = torch.tensor([0.5, 1.5, 2.5, 254.5, -3.0, 300.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6) / 255.0
    assert quantise(y, 255.0)[0, 0, :, 0].tolist() == [1, 2, 3, 255, 0, 255]
    model = small("sr-lite")
    w8 = _clip_windows(model, 1)[0]
    w16 = _clip_windows(model, 1, np.uint16)[0]
    for runner in (TorchRunner(model), OpenVINORunner(model, precision="fp32")):
        out8, out16 = runner(w8.frames), runner(w16.frames)
        assert out16.dtype == np.uint16 and out8.dtype == np.uint8
        assert np.abs(np.round(out16 / 257.0) - out8).max() <= 1


def test_a_recurrent_runner_keeps_its_state_and_resets_it():
    model = small("rvsr")
    ws = _clip_windows(model, 4)
    for runner in (TorchRunner(model), OpenVINORunner(model, precision="fp32")):
        assert runner.depth == 1 and runner.d.recurrent
        outs = [runner(w.frames, w.flows, w.reset) for w in ws]
        again = runner(ws[3].frames, ws[3].flows, reset=True)  # frame 3 as if the clip started there
        assert not np.array_equal(outs[3], again)  # the state mattered
        fresh = [runner(w.frames, w.flows, w.reset) for w in ws]  # the first window resets
        assert all(np.array_equal(a, b) for a, b in zip(outs, fresh))


def test_recurrent_parity_over_a_30_frame_clip():
    """Torch and OpenVINO stay together over 30 frames of state, on the shipped mf-rec ×4 (the previous output fed
    back, warped at HR size): fp32 ≥ 45 dB between outputs on every frame (a state handed over wrongly would
    show), and where the CPU has it bf16 (against torch fp32) too, with frame 30 within 2 dB of frame 1: no drift
    (measured: 53.4 dB at frame 1, 52.8 at worst; 50.3 and 50.1 on the first 30 frames of val_video/bedroom).
    Trained weights, as random ones are no test of bf16 here: their recurrence amplifies any rounding (on mf-rec's
    architecture at test size, torch's own bf16 falls from 53 to 12 dB against its fp32 within 30 frames,
    OpenVINO's from 53 to 41), where a trained model's damps it."""
    from engines import cpu
    from vsr.zoo import load_model

    model, _ = load_model("mf-rec", 4)
    ws = list(windows(((f, None) for f in pan(30, 24, 32, speed=1.3)), **options_for(model)))
    ref = TorchRunner(model)
    want = [ref(w.frames, w.flows, w.reset) for w in ws]
    for precision in ["fp32"] + (["bf16"] if "bf16" in cpu.native_precisions() else []):
        runner = OpenVINORunner(model, precision=precision)
        psnr = [_psnr8(runner(w.frames, w.flows, w.reset), b) for w, b in zip(ws, want)]
        assert min(psnr) >= 45, (precision, [round(p, 1) for p in psnr])
        assert precision == "fp32" or psnr[-1] >= psnr[0] - 2, [round(p, 1) for p in psnr]  # fp32: exact or ~90


def test_inputs_are_checked():
    runner = TorchRunner(small("mf-dis"))
    w = _clip_windows(runner.model, 2)[0]
    with pytest.raises(BackendError, match="3 frame"):
        runner(w.frames[:1], w.flows)
    with pytest.raises(BackendError, match="flows"):
        runner(w.frames, None)
    with pytest.raises(BackendError, match="uint8 or uint16"):
        runner([f.astype(np.float32) for f in w.frames], w.flows)


def test_openvino_cache_hit_miss_and_corruption(tmp_path):
    def runner(h=20, w=28):
        r = OpenVINORunner(small("sr-lite"), Identity.of(small("sr-lite"), "test-weights"), precision="fp32")
        r.prepare(h, w)
        return r

    r1 = runner()
    entry, hit = r1.last_build
    assert not hit
    t = time.perf_counter()
    r2 = runner()
    assert r2.last_build == (entry, True) and time.perf_counter() - t < 5
    frame = [pan(1, 20, 28)[0]]
    assert np.array_equal(r1(frame), r2(frame))
    assert runner(24, 28).last_build[0] != entry  # another shape is another engine
    blob = Path(entry) / "model.blob"
    blob.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt"):
        r4 = runner()
    assert r4.last_build[1] is False and np.array_equal(r4(frame), r1(frame))
    meta_path = Path(entry) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["key"]["precision"] = "something else"
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="stale"):
        runner()


def test_cache_lives_where_vsr_cache_says(tmp_path, monkeypatch):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "c"))
    OpenVINORunner(small("sr-lite"), precision="fp32").prepare(16, 16)
    listed = cache.entries()
    assert listed and all(e["path"].startswith(str(tmp_path / "c")) for e in listed)
    assert cache.clear() == len(listed) and cache.entries() == []


def test_openvino_bf16_when_the_cpu_has_it():
    from engines.cpu import has_native_bf16

    assert OpenVINORunner(small("bicubic")).precision == ("bf16" if has_native_bf16() else "fp32")


def test_unsupported_precision_is_a_clear_error():
    with pytest.raises(BackendError, match="fp16"):
        create_runner(small("bicubic"), backend="torch", precision="fp16")  # no CUDA here
    with pytest.raises(BackendError, match="unknown precision"):
        create_runner(small("bicubic"), backend="torch", precision="fp8")


def test_auto_falls_back_with_a_warning(monkeypatch):
    from engines import base

    monkeypatch.setattr(base, "candidates", lambda b: ["tensorrt", "openvino", "torch"])
    warnings = []
    runner = create_runner(small("bicubic"), backend="auto", warn=warnings.append)
    assert runner.name == "openvino"
    assert len(warnings) == 1 and "tensorrt" in warnings[0]


def test_auto_order_on_this_machine():
    order = candidates("auto")
    assert order[-1] == "torch"
    if not torch.cuda.is_available():
        assert "tensorrt" not in order and "torch-cuda" not in order


def test_the_descriptor_says_what_a_model_takes():
    d = Descriptor.of(small("rvsr"))
    assert (d.frames, d.flow_channels, d.state_channels, d.recurrent) == (3, 4, 16, True)
    assert d.padded(1, 1) == (8, 8) and Descriptor.of(small("mf-fast")).padded(30, 44) == (32, 48)


# -- TensorRT: logic without a GPU ---------------------------------------------------------


def test_tensorrt_missing_runtime_hint():
    with pytest.raises(BackendError) as e:
        TensorRTRunner(small("bicubic"))
    assert "pip install vsr[tensorrt]" in str(e.value) or "NVIDIA GPU" in str(e.value)


@pytest.mark.parametrize("hw,bucket", [((270, 480), (288, 512)), ((480, 854), (544, 960)), ((720, 1280), (736, 1280)),
                                       ((1080, 1920), (1088, 1920)), ((854, 480), (960, 544)), ((16, 16), (288, 512))])
def test_tensorrt_buckets(hw, bucket):
    assert bucket_for(*hw) == bucket


def test_tensorrt_profile_and_key():
    p = profile_for(1, 270, 480, multiple=4)
    assert p.opt == (1, 270, 480) and p.max == (1, 288, 512) and p.min[1] % 4 == 0
    assert p.contains(1, 270, 480) and not p.contains(1, 300, 480) and not p.contains(2, 270, 480)
    with pytest.raises(BackendError, match="use --tile"):
        bucket_for(5000, 5000)
    model = small("rvsr")
    d = Descriptor.of(model)
    ident = Identity.of(model, "abc")
    h100 = {"device": "NVIDIA H100", "compute_capability": "9.0"}
    k = engine_key(ident, d, p, "fp16", "10.9", h100, "onnx-sha")
    for field in ("weights", "arch", "hparams", "code", "scale", "frames", "flow_channels", "state_channels",
                  "profile", "precision", "runtime", "device", "compute_capability", "onnx"):
        assert field in k
    k2 = engine_key(ident, d, p, "fp16", "10.9", {"device": "NVIDIA L4", "compute_capability": "8.9"}, "onnx-sha")
    assert cache.digest(k) != cache.digest(k2)
    assert cache.digest(k) != cache.digest(engine_key(ident, d, p, "fp16", "10.9", h100, "another-onnx"))
    assert isinstance(p, Profile) and BUCKETS[0] == (288, 512)


def test_build_engine_asks_tensorrt_for_the_input_size(monkeypatch, cli):
    """`vsr build-engine --backend tensorrt` passes the size on (it once passed None for video and crashed)."""
    import engines.tensorrt_backend as trt_backend

    seen = {}

    class FakeTRT(trt_backend.Runner):
        name, precision = "tensorrt", "fp16"

        def __init__(self, model, identity=None, *, precision="auto"):
            super().__init__(model, identity)

        def prepare(self, h, w, io="u8", n=1):
            seen["shape"] = (h, w, io)
            self.last_build = ("/cache/entry", False)

        def _start(self, io, inputs, reset):
            raise NotImplementedError

        def _finish(self, handle):
            raise NotImplementedError

    monkeypatch.setattr(trt_backend, "TensorRTRunner", FakeTRT)
    rc, out, err = cli("build-engine", "-m", "bicubic", "-s", "2", "--backend", "tensorrt", "--height", "270",
                       "--width", "480")
    assert rc == 0 and seen["shape"] == (270, 480, "u8") and out.startswith("built:"), err


@pytest.mark.gpu
def test_tensorrt_parity_on_gpu():
    pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    for name in ("mf-fast", "rvsr"):
        model = small(name)
        runner = TensorRTRunner(model, precision="fp32")
        runner.prepare(30, 44)
        ref = TorchRunner(model)
        for w in _clip_windows(model, 4):
            assert _psnr8(runner(w.frames, w.flows, w.reset), ref(w.frames, w.flows, w.reset)) >= 45
        again = TensorRTRunner(model, precision="fp32")
        again.prepare(30, 44)
        assert again.last_build[1] is True


def test_build_engine_cli_hit_and_listing(cli):
    rc, out, err = cli("build-engine", "-m", "bicubic", "-s", "2", "--height", "30", "--width", "40", "--precision", "fp32")
    assert rc == 0 and out.startswith("built:"), err
    rc, out, _ = cli("build-engine", "-m", "bicubic", "-s", "2", "--height", "30", "--width", "40", "--precision", "fp32")
    assert rc == 0 and out.startswith("cache hit:")
    assert float(out.split(",")[-1].split("s")[0]) < 1.0  # seconds of (no) build time
    rc, out, _ = cli("engines")
    assert rc == 0 and "1×30×40" in out and "fp32" in out
    rc, _, err = cli("build-engine", "-m", "bicubic", "--backend", "tensorrt", "--height", "8", "--width", "8")
    assert rc == 1 and ("pip install vsr[tensorrt]" in err or "NVIDIA" in err)
    rc, out, _ = cli("engines", "--clear")
    assert rc == 0 and "removed" in out


# -- cache keys cover the code; the cache keeps to its cap ---------------------------------


TINY = """
import torch
from torch import nn


class Tiny(nn.Module):
    scale = 2

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.conv(x){change}, 2)
"""


def _tiny(folder: Path, change: str = ""):
    """A model whose class lives in a file of the test's own, imported afresh (same weights every time)."""
    import importlib.util

    path = folder / "tiny_model.py"
    path.write_text(TINY.format(change=change))
    spec = importlib.util.spec_from_file_location("tiny_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.Tiny().eval()


def test_a_changed_forward_is_a_new_engine(tmp_path, monkeypatch):
    """The same weights with another forward export another graph: the engine is rebuilt, not reused; the same
    code is a cache hit. OpenVINO's key holds the checksum of the ONNX file it compiled."""
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    frame = [pan(1, 12, 12)[0]]

    def run(model):
        runner = OpenVINORunner(model, Identity.of(model, "same-weights"), precision="fp32")
        runner.prepare(12, 12)
        return runner, runner(frame)

    first, out = run(_tiny(tmp_path))
    assert first.last_build[1] is False
    onnx_path, onnx_sha = first.onnx("u8")
    assert first.key((1, 12, 12), "u8")["onnx"] == onnx_sha == cache.file_sha256(Path(onnx_path))
    again, out_again = run(_tiny(tmp_path))
    assert again.last_build == first.last_build[:1] + (True,) and np.array_equal(out, out_again)
    changed, out_changed = run(_tiny(tmp_path, " * 0.5"))
    assert changed.last_build[1] is False and changed.last_build[0] != first.last_build[0]
    assert changed.onnx("u8")[1] != onnx_sha and not np.array_equal(out, out_changed)


def _fake(i: int, size: int = 1000):
    key = {"arch": f"fake{i}", "scale": 2, "runtime": "test"}
    return key, lambda folder: (folder / "blob").write_bytes(b"x" * size)


def test_the_cache_keeps_to_its_cap_least_recently_used_first(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_held", set())
    monkeypatch.setenv("VSR_CACHE_MAX", "0")  # no cap while the cache fills
    paths = [cache.store(*_fake(i)) for i in range(4)]
    for age, p in enumerate(paths):  # built in order, long ago
        os.utime(p / "meta.json", (1000 + age, 1000 + age))
    size = cache.entries()[0]["size"]
    assert size > 1000 and cache.lookup(_fake(0)[0]) == paths[0]  # a hit: fake0 is now the most recently used

    monkeypatch.setenv("VSR_CACHE_MAX", str(3 * size + size // 2))
    cache.store(*_fake(4))
    assert sorted(e["key"]["arch"] for e in cache.entries()) == ["fake0", "fake3", "fake4"]  # fake1, 2 went

    cache.get_or_build(*_fake(3), hold=True)  # this process compiles from it again later: it stays
    monkeypatch.setenv("VSR_CACHE_MAX", "1")  # smaller than any entry: the one just built stays too
    cache.store(*_fake(5))
    assert sorted(e["key"]["arch"] for e in cache.entries()) == ["fake3", "fake5"]

    assert [cache.parse_size(t) for t in ("2G", "500M", "1.5GiB", "123", "0", "64kB")] == [
        2 * 10**9, 500 * 10**6, 3 * 2**29, 123, 0, 64000]
    monkeypatch.setenv("VSR_CACHE_MAX", "lots")
    with pytest.raises(BackendError, match="VSR_CACHE_MAX"):
        cache.store(*_fake(6))
    assert not cache.entry_path(_fake(6)[0]).exists()


@pytest.mark.parametrize("width", [80, 200])  # a usual terminal: four columns; a wide one: seven
def test_engines_lists_model_names_sizes_and_the_cap(cli, tmp_path, monkeypatch, width):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", str(width))
    rc, out, err = cli("build-engine", "-m", "image", "-s", "2", "--height", "16", "--width", "16",
                       "--precision", "fp32")
    assert rc == 0, err
    rc, out, _ = cli("engines")
    assert max(len(line) for line in out.splitlines()) <= width
    ov_row = next(line for line in out.splitlines() if "openvino" in line)
    assert "fp32" in ov_row and ("1×16×16" in ov_row) == (width > 80) and "1×16×16" in out
    rows = [line.strip("│ ").split()[0] for line in out.splitlines() if "×2" in line]
    assert rc == 0 and rows == ["image", "image"] and "window" not in out  # the model, not its architecture
    onnx_row = next(line for line in out.splitlines() if "onnx" in line)
    assert "onnx u8" in onnx_row and " 18 " not in onnx_row  # what it is, not the opset
    assert "2 entries" in out and "of 2.00 GB (VSR_CACHE_MAX)" in out
    monkeypatch.setenv("VSR_CACHE_MAX", "0")
    rc, out, _ = cli("engines", "--max-size", "1")
    assert rc == 0 and "removed 2" in out and "0 entries" in out and "no cap" in out
    rc, _, err = cli("engines", "--max-size", "lots")
    assert rc != 0 and err.startswith("error: --max-size") and len(err.strip().splitlines()) == 1


# -- one precision rule on every backend ----------------------------------------------------


def _cpu_has(monkeypatch, bf16: bool, fp16: bool = False):
    import engines.cpu

    monkeypatch.setattr(engines.cpu, "has_native_bf16", lambda: bf16)
    monkeypatch.setattr(engines.cpu, "has_native_fp16", lambda: fp16)


def test_an_explicit_precision_the_cpu_lacks_is_refused_on_every_backend(monkeypatch):
    from engines.errors import PrecisionError

    _cpu_has(monkeypatch, bf16=False)
    model = small("bicubic")
    for make in (lambda p: TorchRunner(model, precision=p), lambda p: OpenVINORunner(model, precision=p)):
        with pytest.raises(PrecisionError, match=r"no native bf16 \(AVX-512 BF16 or AMX\): use --precision fp32 "
                                                 r"\(or auto\)$"):
            make("bf16")
        with pytest.raises(PrecisionError, match="no native fp16"):
            make("fp16")
        assert make("auto").precision == make("fp32").precision == "fp32"
    warnings = []
    with pytest.raises(PrecisionError, match="no native bf16"):  # auto's backends: none runs it, no fallback
        create_runner(model, backend="auto", precision="bf16", warn=warnings.append)
    assert warnings == []

    _cpu_has(monkeypatch, bf16=True)
    assert OpenVINORunner(model).precision == "bf16" and TorchRunner(model).precision == "fp32"
    assert TorchRunner(model, precision="bf16").precision == OpenVINORunner(model, precision="bf16").precision
    assert create_runner(model, backend="auto", precision="fp32").precision == "fp32"  # asked for, not auto's


def test_an_isa_cap_hides_what_the_cpu_has_above_it_and_names_the_engines(monkeypatch):
    from engines import cpu

    monkeypatch.setattr(cpu, "_cpuinfo", lambda: "model name\t: Some EPYC\nflags\t\t: sse4_1 avx2 avx512f "
                                                "avx512_vnni avx512_bf16 amx_int8 amx_bf16\n")
    cpu._all_flags.cache_clear()
    try:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        assert (cpu.cpu_name(), cpu.has_native_bf16(), cpu.has_vnni()) == ("Some EPYC", True, True)
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # what an AVX2-only CPU runs
        assert (cpu.cpu_name(), cpu.has_native_bf16(), cpu.has_vnni()) == ("Some EPYC (ISA capped at AVX2)", False,
                                                                          False)
        assert cpu.native_precisions() == ["fp32"]
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
        assert (cpu.has_native_bf16(), cpu.has_vnni()) == (False, True)
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_amx")  # an alias
        assert cpu.has_native_bf16() and cpu.isa_cap() == "avx10_1_512_amx"
    finally:
        cpu._all_flags.cache_clear()


def test_auto_takes_the_next_backend_that_runs_an_explicit_precision(monkeypatch):
    import engines.openvino_backend as ovb
    from engines import base

    _cpu_has(monkeypatch, bf16=True, fp16=True)
    monkeypatch.setattr(ovb, "supported_precisions", lambda core: {"fp32", "bf16"})  # this OpenVINO has no fp16
    monkeypatch.setattr(base, "candidates", lambda b: ["openvino", "torch"])
    warnings = []
    runner = create_runner(small("bicubic"), backend="auto", precision="fp16", warn=warnings.append)
    assert (runner.name, runner.precision) == ("torch-cpu", "fp16")
    assert warnings == ["warning: openvino does not run fp16 here; using torch-cpu"]
    with pytest.raises(BackendError, match="OpenVINO .* offers no fp16 on this CPU: use --precision fp32 or bf16"):
        OpenVINORunner(small("bicubic"), precision="fp16")


def test_the_cli_refuses_a_precision_the_cpu_lacks(cli, tmp_path, natural_rgb, monkeypatch):
    from PIL import Image

    from vsr._testclips import make_clip

    _cpu_has(monkeypatch, bf16=False)
    src = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    photo = tmp_path / "photo.png"
    Image.fromarray(natural_rgb).save(photo)
    for args in (["upscale", src, tmp_path / "out.mp4"], ["image", photo, tmp_path / "out.png"]):
        for backend in ("auto", "openvino", "torch"):
            rc, _, err = cli(*args, "-s", "2", "-m", "bicubic", "-q", "--backend", backend, "--precision", "bf16")
            lines = err.strip().splitlines()
            assert rc != 0 and len(lines) == 1 and lines[0].startswith("error: this CPU has no native bf16"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "photo.png"]
