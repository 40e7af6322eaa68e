import numpy as np
from PIL import Image

from vsr.images import read_picture


def _photo(path, rgb):
    Image.fromarray(rgb).save(path)
    return path


def test_image_default_output_name(tmp_path, natural_rgb, cli):
    src = _photo(tmp_path / "photo.png", natural_rgb)
    rc, _, err = cli("image", src, "-s", "2", "--backend", "torch", "-q")
    assert rc == 0, err
    out = tmp_path / "photo_x2.png"
    assert read_picture(out).size == (256, 192)


def test_image_refuses_to_overwrite(tmp_path, natural_rgb, cli):
    src = _photo(tmp_path / "photo.png", natural_rgb)
    (tmp_path / "photo_x2.png").write_bytes(b"keep me")
    rc, _, err = cli("image", src, "--backend", "torch")
    assert rc == 1 and err.strip().splitlines() == [f"error: {tmp_path / 'photo_x2.png'} exists; pass --overwrite to replace it"]
    assert (tmp_path / "photo_x2.png").read_bytes() == b"keep me"
    rc, _, _ = cli("image", src, "--backend", "torch", "--overwrite", "-q")
    assert rc == 0 and read_picture(tmp_path / "photo_x2.png").size == (256, 192)


def test_image_errors_are_one_line(tmp_path, natural_rgb, cli):
    src = _photo(tmp_path / "photo.png", natural_rgb)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    cases = [
        (["image", tmp_path / "missing.png"], "no such file"),
        (["image", bad, "--backend", "torch"], "bad.png"),
        (["image", src, "-m", "no-such-model"], "unknown model"),
        (["image", src, "-s", "7", "--backend", "torch"], "supports scales"),
        (["image", src, tmp_path / "out.gif"], "unsupported output format"),
        (["image", src, "--backend", "warp-drive"], "unknown backend"),
    ]
    for args, needle in cases:
        rc, out, err = cli(*args)
        lines = err.strip().splitlines()
        assert rc != 0, args
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, err)
        assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "photo.png"]  # nothing half-written


def test_folder_mode_skips_bad_files(tmp_path, natural_rgb, cli):
    folder = tmp_path / "in"
    folder.mkdir()
    _photo(folder / "a.png", natural_rgb)
    _photo(folder / "b.jpg", natural_rgb)
    (folder / "c.png").write_bytes(b"nope")
    rc, _, err = cli("image", folder, tmp_path / "out", "--backend", "torch", "-q")
    assert rc == 1
    assert "c.png" in err and "1 of 3 image(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg"]


def test_image_with_a_weight_file(tmp_path, natural_rgb, cli):
    from vsr.models import MODELS
    from vsr.weights import WeightInfo, save_weights

    m = MODELS["espcn"].build(3)
    w = save_weights(tmp_path / "espcn.safetensors", m, WeightInfo("espcn", m.arch, m.hparams, 3, 1))
    src = _photo(tmp_path / "photo.png", natural_rgb)
    rc, _, err = cli("image", src, tmp_path / "o.tif", "-m", w, "--backend", "torch", "-q")
    assert rc == 0, err
    assert read_picture(tmp_path / "o.tif").size == (384, 288)


def test_models_and_help_list_examples(cli):
    rc, out, _ = cli("models")
    assert rc == 0 and "bicubic" in out and "mf-fast" in out
    for cmd in ("image", "upscale", "eval", "models"):
        rc, out, _ = cli(cmd, "--help")
        assert rc == 0 and "Example: vsr" in out, cmd


def test_eval_on_a_folder(tmp_path, natural_rgb, cli):
    folder = tmp_path / "hr"
    folder.mkdir()
    _photo(folder / "x.png", natural_rgb)
    _photo(folder / "y.png", natural_rgb[::-1].copy())
    rc, out, err = cli("eval", folder, "--scale", "2", "-m", "bicubic")
    assert rc == 0, err
    assert "│ x " in out and "│ y " in out and "mean" in out
    psnr = float(out.split("mean")[1].split("/")[0].split()[-1])
    assert psnr > 20


def test_a_bundled_variant_says_what_it_was_trained_as():
    from vsr.cli import _variant_description

    gan = {"model": {"name": "mf-fast"}, "loss": {"adversarial_weight": 2e-3}}
    assert _variant_description(gan, "mfsr").startswith("mf-fast fine-tuned with a GAN")
    plain = {"model": {"name": "sr-lite"}, "loss": {"adversarial_weight": 0.0}}
    assert _variant_description(plain, "sr") == "trained variant of sr-lite"
    assert _variant_description({}, "mfsr") == "trained variant of mfsr"
