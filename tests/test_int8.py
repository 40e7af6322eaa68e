"""int8 engines (OpenVINO, quantised with NNCF): close to fp32, refused elsewhere in one line, keyed by their
calibration, picked by auto only where the recorded loss allows, and a quantised recurrent state that does not
drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import pan, small

from engines.errors import PrecisionError
from engines.openvino_backend import OpenVINORunner
from engines.quantise import Calibration
from vsr.weightfile import WeightInfo, save_weights
from vsr.windows import options_for, windows

needs_nncf = pytest.mark.skipif(__import__("importlib.util").util.find_spec("nncf") is None,
                                reason="NNCF is not installed (pip install nncf)")


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 200.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _info(model, name="m") -> WeightInfo:
    return WeightInfo(name, model.arch, model.hparams, model.scale, model.frames)


def _calibration(model, samples=8):
    from vsr.int8 import calibration_for

    return calibration_for(model, _info(model), samples=samples)


@pytest.fixture
def footage(tmp_path, monkeypatch):
    """$VSR_CALIBRATION: a clip of the kind the tests upscale (a random-weight model's activations depend on what
    it sees far more than a trained one's), another part of the scene."""
    from PIL import Image

    import vsr.int8

    folder = tmp_path / "footage"
    folder.mkdir()
    for t, frame in enumerate(pan(40, 64, 96, speed=2.0)[20:]):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    monkeypatch.setenv(vsr.int8.ENV, str(folder))
    return folder


def _runner(model, precision, calibration=None):
    """An OpenVINO runner keyed by the model's own weights (the session's engine cache holds other tests' models
    of the same architecture with other weights)."""
    import hashlib

    from engines import Identity

    h = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values()))
    return OpenVINORunner(model, Identity.of(model, h.hexdigest()[:16]), precision=precision, calibration=calibration)


def _outputs(runner, model, frames):
    return [runner(w.frames, w.flows, w.reset) for w in windows(((f, None) for f in frames), **options_for(model))]


@needs_nncf
@pytest.mark.parametrize("name", ["sr-lite", "mf-dis"])
def test_int8_is_close_to_fp32_and_really_quantised(name, footage):
    """A small model's int8 engine: within 45 dB of fp32 (measured: 57-62 dB), its IR full of FakeQuantize, and
    kept in float where the module says (no quantiser feeds the pixel shuffle)."""
    import openvino as ov

    model = small(name)
    r8 = _runner(model, "int8", _calibration(model))
    r32 = _runner(model, "fp32")
    assert r8.describe() == "openvino (int8)"
    frames = pan(4)
    for a, b in zip(_outputs(r8, model, frames), _outputs(r32, model, frames)):
        assert a.dtype == np.uint8 and a.shape == b.shape and 45 <= _psnr8(a, b) < 200
    ir = ov.Core().read_model(r8.int8_ir("u8")[0])
    fq = [op for op in ir.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]
    assert len(fq) >= 2
    shuffle = next(op for op in ir.get_ordered_ops() if op.get_type_name() == "DepthToSpace")
    feeding = shuffle.input_value(0).get_node()
    assert feeding.get_type_name() != "FakeQuantize" and all(
        i.get_source_output().get_node().get_type_name() != "FakeQuantize" for i in feeding.inputs())


def test_int8_is_refused_off_openvino_in_one_line(cli, tmp_path, natural_rgb):
    from PIL import Image

    from engines.torch_backend import TorchRunner

    with pytest.raises(PrecisionError, match=r"^int8 runs on the OpenVINO backend only \(--backend openvino\): use "
                                             r"--precision fp32"):
        TorchRunner(small("sr-lite"), precision="int8")
    model = small("sr-lite")
    weights = save_weights(tmp_path / "m.safetensors", model, _info(model))
    photo = tmp_path / "p.png"
    Image.fromarray(natural_rgb).save(photo)
    rc, _, err = cli("image", photo, tmp_path / "o.png", "-m", weights, "--backend", "torch", "--precision", "int8")
    lines = err.strip().splitlines()
    assert rc != 0 and len(lines) == 1 and lines[0].startswith("error: int8 runs on the OpenVINO backend only"), err
    rc, _, err = cli("image", photo, tmp_path / "o.png", "-m", "bicubic", "-s", "2", "--precision", "int8")
    assert rc != 0 and err.strip().splitlines() == [
        "error: bicubic has no weights to quantise: --precision int8 is for learned models"]
    assert not (tmp_path / "o.png").exists()


def test_without_nncf_int8_is_refused_and_auto_does_not_pick_it(monkeypatch):
    import engines.quantise

    monkeypatch.setattr(engines.quantise, "unavailable", lambda: "int8 needs NNCF to quantise the model "
                                                                 "(pip install nncf)")
    model = small("sr-lite")
    cal = Calibration(dict, list, auto=True)
    with pytest.raises(PrecisionError, match=r"^int8 needs NNCF .*\(pip install nncf\): use --precision fp32"):
        OpenVINORunner(model, precision="int8", calibration=cal)
    assert OpenVINORunner(model, calibration=cal).precision in ("bf16", "fp32")


def test_auto_picks_int8_for_video_jobs_only(monkeypatch):
    """Quantising takes longer than most pictures take to upscale: vsr image's auto gets no calibration (so no
    int8), a video job's does (and int8 asked for is int8 in both)."""
    import vsr.runner
    from vsr.cli.app import load_runner
    from vsr.runner import calibration, choose, load

    model, info = load(choose("image", 2, "image"))
    assert calibration(model, info, "openvino", "auto", auto_int8=False) is None
    assert calibration(model, info, "openvino", "auto") is not None
    assert calibration(model, info, "openvino", "int8", auto_int8=False) is not None
    seen = []
    monkeypatch.setattr(vsr.runner, "open_runner", lambda *a, **k: seen.append(k["auto_int8"]) or (None, info))
    monkeypatch.setattr(vsr.runner, "describe", lambda *a: "")
    for job in ("image", "video"):
        load_runner("image", 2, job, "openvino", "auto", quiet=True)
    assert seen == [False, True]


def test_auto_picks_the_fastest_precision_the_recorded_loss_allows(monkeypatch):
    import engines.cpu
    import engines.openvino_backend
    import engines.quantise
    import vsr.int8
    from vsr.weightfile import weights_id

    model = small("sr-lite")
    info = _info(model, "sr-lite")
    monkeypatch.setattr(engines.cpu, "has_native_bf16", lambda: True)
    monkeypatch.setattr(engines.openvino_backend, "supported_precisions", lambda core: {"fp32", "bf16", "int8"})
    monkeypatch.setattr(engines.quantise, "unavailable", lambda: None)  # (nothing is quantised here)

    def record(**entry):
        full = {"weights": weights_id(info), "psnr_loss": 0.02, "psnr_loss_leaves": 0.04, "bf16_psnr_loss": 0.05,
                "first_convolutions": "int8", "fps": {"fp32": 1.0, "bf16": 2.0, "int8": 3.0}, **entry}
        monkeypatch.setattr(vsr.int8, "_record", lambda: {"sr-lite": {str(model.scale): full}})

    def auto():
        cal = vsr.int8.calibration_for(model, info, samples=4)
        return vsr.int8.auto_precision(info), OpenVINORunner(model, calibration=cal).precision, cal

    record()
    assert auto()[:2] == ("int8", "int8") and auto()[2].first_convolutions == "int8"
    for changed, picked in (({"psnr_loss": 0.15}, "bf16"), ({"psnr_loss_leaves": 0.11}, "bf16"),
                            ({"ssim_loss_leaves": 0.011}, "bf16"),  # texture smoothed away, PSNR even up
                            ({"fps": {"fp32": 1.0, "bf16": 3.5, "int8": 3.0}}, "bf16"),
                            ({"bf16_psnr_loss": 0.2, "psnr_loss": 0.3}, "fp32"),
                            ({"bf16_psnr_loss": 0.2, "fps": {"fp32": 1.0, "bf16": 3.5, "int8": 3.0}}, "int8")):
        record(**changed)
        assert auto()[:2] == (picked, picked), changed
    record(weights="other weights")  # retrained weights: the record is not theirs, auto is the backend's own
    assert auto()[:2] == ("", "bf16") and auto()[2].first_convolutions == "float"
    monkeypatch.setattr(vsr.int8, "_record", lambda: {"sr-lite": {str(model.scale): {  # speeds measured, no losses
        "weights": weights_id(info), "fps": {"fp32": 1.0, "bf16": 2.0, "int8": 3.0}}}})
    assert auto()[:2] == ("", "bf16") and auto()[2].first_convolutions == "float"
    record()
    monkeypatch.setattr(engines.cpu, "has_native_bf16", lambda: False)  # no bf16 here: int8 against fp32
    monkeypatch.setattr(engines.openvino_backend, "supported_precisions", lambda core: {"fp32", "int8"})
    assert auto()[:2] == ("int8", "int8")
    monkeypatch.setattr(vsr.int8, "_record", dict)
    assert auto()[:2] == ("", "fp32")


def test_the_shipped_record_names_real_weights_and_the_rule():
    """Every entry of vsr/weights/int8.json is for a weight file that exists (shipped, or the community file it
    was measured on), and auto's verdict follows its numbers."""
    from vsr.int8 import MAX_LOSS, RECORD, measured
    from vsr.weightfile import file_id, read_info
    from vsr.zoo import ALIASES, weight_files

    record = json.loads(RECORD.read_text())["models"]
    shipped = {(n, s): file_id(p) for (n, s), p in weight_files().items()}
    assert record
    for name, scales in record.items():
        for scale, entry in scales.items():
            assert name not in ALIASES, name  # keyed by today's names
            if (name, int(scale)) in shipped:
                path = weight_files()[(name, int(scale))]
                assert entry["weights"] == shipped[(name, int(scale))], (name, scale)
                info = read_info(path)  # the file's own (network) name: found by its hash
                assert measured(info) == entry and (setattr(info, "name", name) or measured(info)) == entry
            if "psnr_loss" not in entry:  # speeds only (auto keeps the backend's choice)
                assert set(entry["fps"]) == {"fp32", "bf16", "int8"}, (name, scale)
                continue
            assert {"psnr_loss", "psnr_loss_leaves", "first_convolutions"} <= set(entry)
            assert isinstance(entry["psnr_loss"], float) and entry["psnr_loss"] < 1.0
    assert MAX_LOSS == 0.1


@needs_nncf
def test_engine_keys_name_int8_its_settings_and_its_calibration(tmp_path, monkeypatch):
    """The calibration data's hash is in the key: the same set is a cache hit, a changed file rebuilds."""
    from PIL import Image

    import vsr.int8

    clip = tmp_path / "data" / "clip"
    clip.mkdir(parents=True)
    for t, frame in enumerate(pan(10, 48, 64)):
        Image.fromarray(frame).save(clip / f"{t:05d}.png")
    monkeypatch.setenv(vsr.int8.ENV, str(tmp_path / "data"))
    model = small("sr-lite")

    def build():
        r = OpenVINORunner(model, precision="int8", calibration=_calibration(model, samples=4))
        r.prepare(24, 32)
        return r

    first = build()
    key = first.key((1, 24, 32), "u8")
    assert key["precision"] == "int8" and key["int8"]["calibration"]["source"] == "files"
    assert {"nncf", "preset", "overflow_fix", "float"} <= set(key["int8"]["settings"]) and key["ir"]
    assert first.last_build[1] is False
    again = build()
    assert again.last_build == (first.last_build[0], True)
    Image.fromarray(pan(12, 48, 64)[11]).save(clip / "00005.png")  # another frame where one used was
    changed = build()
    other = changed.key((1, 24, 32), "u8")
    assert other["int8"]["calibration"]["data"] != key["int8"]["calibration"]["data"] and other["ir"] != key["ir"]
    assert changed.last_build[1] is False and changed.last_build[0] != first.last_build[0]
    fp32 = OpenVINORunner(model, precision="fp32").key((1, 24, 32), "u8")
    assert "int8" not in fp32 and fp32["precision"] == "fp32"


def test_calibration_sources_clips_pictures_and_errors(tmp_path, monkeypatch):
    """Frames of one size are a clip, pictures of several sizes are stills; a missing path is a VsrError."""
    from PIL import Image

    import vsr.int8
    from vsr.errors import VsrError

    (tmp_path / "clip").mkdir()
    (tmp_path / "pictures").mkdir()
    for t, frame in enumerate(pan(9, 48, 64)):
        Image.fromarray(frame).save(tmp_path / "clip" / f"{t:05d}.png")
    Image.fromarray(pan(1, 40, 60)[0]).save(tmp_path / "pictures" / "a.png")
    Image.fromarray(pan(1, 50, 50)[0]).save(tmp_path / "pictures" / "b.png")
    sources = vsr.int8._sources([tmp_path])
    assert [(s.path.name, s.clip, s.count) for s in sources] == [("clip", True, 9), ("a.png", False, 1),
                                                                ("b.png", False, 1)]
    runs = vsr.int8._plan(sources, 20)
    assert sum(r.length for r in runs) >= 20 and {r.length for r in runs} == {1, 8}
    assert all(r.start + r.length <= 9 for r in runs)
    monkeypatch.setenv(vsr.int8.ENV, str(tmp_path / "missing"))
    with pytest.raises(VsrError, match="VSR_CALIBRATION: no such file or folder"):
        _calibration(small("sr-lite"))
    monkeypatch.setenv(vsr.int8.ENV, str(tmp_path))
    for name in ("sr-lite", "rvsr"):  # the samples are the graph's inputs, a recurrent model's state included
        model = small(name)
        samples = _calibration(model, samples=10).samples()
        assert len(samples) == 10
        assert all(s[0].dtype == np.uint8 and s[0].shape[0] == 1 and s[0].shape[-1] == 3 for s in samples)
        assert len(samples[0]) == model.frames + (1 if model.flow_channels else 0) + (1 if model.state_channels else 0)


@needs_nncf
def test_a_quantised_recurrent_state_does_not_drift(footage):
    """A small recurrent model over 30 frames: int8 against fp32 is no worse at the end than at frame 10
    (benchmarks/int8.py --drift measures 300 frames of a real clip)."""
    model = small("rvsr", feedback=True)  # (random weights whose state stays bounded: a growing one would amplify
    # any difference, fp32's own from torch's too)
    r8 = _runner(model, "int8", _calibration(model, samples=8))
    r32 = _runner(model, "fp32")
    frames = pan(30, 32, 48, speed=0.7)
    curve = [_psnr8(a, b) for a, b in zip(_outputs(r8, model, frames), _outputs(r32, model, frames))]
    assert min(curve) >= 40
    assert np.mean(curve[-5:]) >= np.mean(curve[5:10]) - 1.0, np.round(curve, 1)


@needs_nncf
def test_build_engine_builds_int8_ahead_and_says_so(cli, tmp_path, monkeypatch):
    import vsr.int8

    monkeypatch.setattr(vsr.int8, "SAMPLES", 4)
    model = small("sr-lite")
    weights = save_weights(tmp_path / "m.safetensors", model, _info(model))
    args = ("build-engine", "-m", weights, "--height", "24", "--width", "32", "--precision", "int8")
    rc, out, err = cli(*args)
    assert rc == 0 and out.startswith("built:") and "openvino int8" in out, err
    assert "to int8 once (NNCF, calibrating on" in err  # the minute it takes is announced
    rc, out, err = cli(*args)
    assert rc == 0 and out.startswith("cache hit:") and "openvino int8" in out and "quantising" not in err


def test_what_stays_in_float(tmp_path):
    """The first convolutions are kept in float unless asked; the bicubic skip and the last convolution always; the
    subtractions that make a window's inputs always."""
    import openvino as ov

    from engines.quantise import kept_in_float

    runner = OpenVINORunner(small("mf-dis"), precision="fp32")
    m = ov.Core().read_model(runner.onnx("u8")[0])
    convs = [op for op in m.get_ordered_ops() if op.get_type_name() == "Convolution"]
    head, skip = convs[0].get_friendly_name(), next(c.get_friendly_name() for c in convs
                                                    if list(c.input(1).get_partial_shape().to_shape())[2:] == [5, 5])
    subtractions = {op.get_friendly_name() for op in m.get_ordered_ops()  # of pixels and flows, not of shapes
                    if op.get_type_name() == "Subtract" and op.get_output_element_type(0) == ov.Type.f32}
    default, first = set(kept_in_float(m)), set(kept_in_float(m, "int8"))
    assert head in default and head not in first
    assert {skip, convs[-1].get_friendly_name()} <= default & first and subtractions <= default & first
    assert len(default) > len(first) and not any(c.get_friendly_name() in first for c in convs[1:-2])
    with pytest.raises(ValueError):
        kept_in_float(m, "fp16")


@needs_nncf
@pytest.mark.parametrize("kind", ["compact", *(pytest.param(k, marks=pytest.mark.slow)
                                                for k in ("esrgan", "span", "realplksr"))])
def test_every_catalogue_architecture_runs_in_int8(kind, tmp_path, footage):
    """A small network of each architecture the catalogue lists (spandrel), quantised: close to its fp32."""
    from vsr.community import CommunityError, _spandrel, load_community

    try:
        _spandrel()
    except CommunityError:
        pytest.skip("spandrel is not installed (pip install 'vsr[community]')")
    from test_community import CATALOGUED, _file

    assert kind in CATALOGUED.values()
    path, _ = _file(tmp_path, kind)
    model, _ = load_community(path)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():  # random weights saturate most of SPAN's output, where a trained network's stays in range
        last.weight.mul_(0.05)
    r8, r32 = _runner(model, "int8", _calibration(model, samples=4)), _runner(model, "fp32")
    frame = pan(1, 20, 28)[0]
    assert 40 <= _psnr8(r8([frame]), r32([frame])) < 200
