"""vsr's weight files and the table of what ships (vsr.zoo): loading, metadata, clear errors."""

import pytest
import torch
from conftest import small

from vsr.errors import VsrError
from vsr.weightfile import WeightInfo, WeightsError, load_weights, read_info, save_weights
from vsr.zoo import ZOO, default_model, load_model, weight_files


def _saved(tmp_path, name="edsr"):
    model = small(name)
    info = WeightInfo("mine", model.arch, model.hparams, 2, 1, training={"data": ["x"]}, validation={"psnr": 30.5})
    return save_weights(tmp_path / "w.safetensors", model, info), model


def test_metadata_round_trip(tmp_path):
    path, _ = _saved(tmp_path)
    info = read_info(path)
    assert info.name == "mine" and info.arch == "edsr" and info.scale == 2
    assert info.hparams["blocks"] == 2 and info.validation == {"psnr": 30.5} and info.training == {"data": ["x"]}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


def test_a_weight_file_is_as_readable_as_any_file_the_user_makes(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path, _ = _saved(tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


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
    with pytest.raises(WeightsError, match="unknown model"):
        load_model("rrdb", 4)  # an architecture without shipped weights is for training, not a runnable model
    with pytest.raises(WeightsError, match="scale"):
        load_model("bicubic", 7)
    bic, info = load_model("bicubic", 3)
    assert info.scale == 3 and bic.scale == 3


def test_a_scale_without_weights_is_refused_with_what_exists():
    have = weight_files()
    for e in ZOO:
        missing = [s for s in (2, 3, 4) if (e.name, s) not in have]
        for s in missing:
            with pytest.raises(WeightsError) as err:
                load_model(e.name, s)
            msg = str(err.value)
            assert f"×{s}" in msg and "bicubic" in msg
            assert all(f"×{t}" in msg for n, t in have if n == e.name)  # it names the scales that do ship
    for job in ("video", "image"):
        for s in (2, 3, 4):
            if any(sc == s for _, sc in have):
                assert (default_model(job, s), s) in have
            else:
                with pytest.raises(VsrError, match=f"×{s}"):
                    default_model(job, s)


def test_the_zoo_and_the_weight_files_agree():
    """Every shipped file has a table entry, every entry has files, and the file carries its network's name; at most
    six names, and every earlier name resolves to one of them."""
    from vsr.zoo import ALIASES, load_model

    names = {e.name for e in ZOO}
    assert len(names) == len(ZOO) <= 6
    assert {n for n, _ in weight_files()} <= names
    for e in ZOO:
        assert any(n == e.name for n, _ in weight_files()), f"{e.name} is listed but ships no weights"
        assert e.job in ("video", "image")
    for (n, s), p in weight_files().items():
        info = read_info(p)
        assert info.name == next(e.files for e in ZOO if e.name == n) and info.scale == s
        assert load_model(n, s)[1].name == n  # shown under the name users type
    assert all(new in names for new, _ in ALIASES.values()) and not names & set(ALIASES)
