import pytest
import torch

from vsr.models import MODELS
from vsr.weights import WeightInfo, WeightsError, load_model, load_weights, read_info, save_weights


def _saved(tmp_path, name="edsr"):
    model = MODELS[name].build(2)
    info = WeightInfo("mine", model.arch, model.hparams, 2, 1, training={"data": ["x"]}, validation={"psnr": 30.5})
    return save_weights(tmp_path / "w.safetensors", model, info), model


def test_metadata_round_trip(tmp_path):
    path, _ = _saved(tmp_path)
    info = read_info(path)
    assert info.name == "mine" and info.arch == "edsr" and info.scale == 2
    assert info.hparams["blocks"] == 16 and info.validation == {"psnr": 30.5} and info.training == {"data": ["x"]}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty", "header"])
def test_bad_weight_files_give_clear_errors(tmp_path, damage):
    path, _ = _saved(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "header":
        path.write_bytes(data[:8] + b"{not json" + data[17:])
    else:
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(path))  # valid safetensors, not ours
    with pytest.raises(WeightsError) as e:
        load_weights(path)
    assert str(path) in str(e.value)


def test_mismatched_tensors(tmp_path):
    path, model = _saved(tmp_path)
    from safetensors.torch import save_file

    state = {k: v for k, v in model.state_dict().items() if "tail" not in k}
    save_file(state, str(path), metadata=read_info(path).to_metadata())
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(path)


def test_load_model_resolution(tmp_path):
    path, _ = _saved(tmp_path)
    model, info = load_model(str(path), None)
    assert info.path == path
    with pytest.raises(WeightsError, match="×2 model"):
        load_model(str(path), 4)
    with pytest.raises(WeightsError, match="unknown model"):
        load_model("no-such-model", 2)
    with pytest.raises(WeightsError, match="supports scales"):
        load_model("bicubic", 7)
    bic, info = load_model("bicubic", 3)
    assert info.scale == 3 and bic.scale == 3


def test_model_without_weights_says_so(monkeypatch, tmp_path):
    import vsr.weights as w

    monkeypatch.setattr(w, "BUNDLED_DIR", tmp_path)  # as if nothing were bundled
    with pytest.raises(WeightsError, match="no trained weights"):
        load_model("rrdb", 4)
    assert w.default_model("image", 4) == "bicubic"
