from PIL import Image

from conftest import ROOT

from vsr.picture import read_picture


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
        (["image", src, "-s", "7", "--backend", "torch"], "×7"),
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
    from vsr.models import build
    from vsr.weightfile import WeightInfo, save_weights

    m = build("espcn", scale=3)
    w = save_weights(tmp_path / "espcn.safetensors", m, WeightInfo("espcn", m.arch, m.hparams, 3, 1))
    src = _photo(tmp_path / "photo.png", natural_rgb)
    rc, _, err = cli("image", src, tmp_path / "o.tif", "-m", w, "--backend", "torch", "-q")
    assert rc == 0, err
    assert read_picture(tmp_path / "o.tif").size == (384, 288)


def test_models_lists_what_runs_and_readme_shows_the_same_table(cli):
    """`vsr models` lists the shipped models and bicubic, never an architecture without weights; the models table of
    docs/models/README.md is `vsr models --markdown`."""
    from vsr.zoo import ZOO

    rc, out, _ = cli("models")
    assert rc == 0 and "bicubic" in out and all(e.name in out for e in ZOO)
    assert "rrdb" not in out and "no weights yet" not in out
    rc, table, _ = cli("models", "--markdown")
    index = ROOT / "docs" / "models" / "README.md"
    assert rc == 0 and table.strip() in index.read_text(), f"{index.relative_to(ROOT)}: stale, not vsr models --markdown"
    for cmd in ("image", "upscale", "eval", "models", "build-engine", "bench"):
        rc, out, _ = cli(cmd, "--help")
        assert rc == 0 and "Example: vsr" in out, cmd


def test_a_scale_without_weights_is_one_error_line(tmp_path, natural_rgb, cli):
    from vsr.zoo import weight_files

    src = _photo(tmp_path / "photo.png", natural_rgb)
    missing = next(s for s in (2, 3, 4) if not any(n == "sr-lite" and sc == s for n, sc in weight_files()))
    rc, _, err = cli("image", src, "-s", missing, "-m", "sr-lite", "-q")
    assert rc == 1 and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and f"×{missing}" in err
    assert not (tmp_path / f"photo_x{missing}.png").exists()
    rc, _, err = cli("image", src, "-s", missing, "-m", "bicubic", "-q")  # bicubic runs at any scale
    assert rc == 0, err


def test_an_output_too_large_is_refused_at_once(tmp_path, cli, monkeypatch):
    """A small file that decodes to 12000×12000 would become 24000×24000 (576 M pixels, which Pillow refuses to
    open): refused from the header, before any pixel is decoded or a model loads, and nothing is written."""
    import PIL.Image

    import vsr.cli.image

    src = tmp_path / "huge.png"
    Image.new("1", (12000, 12000)).save(src)
    assert src.stat().st_size < 1_000_000

    def never(*_a, **_k):
        raise AssertionError("decoded or loaded a model before refusing")

    monkeypatch.setattr(PIL.Image.Image, "load", never)
    monkeypatch.setattr(vsr.cli.image, "load_runner", never)
    rc, _, err = cli("image", src, "-s", "2", "-q")
    assert rc == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "--max-pixels" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.png"]
    monkeypatch.undo()
    rc, _, err = cli("image", tmp_path, tmp_path / "out", "-s", "2", "-q")  # in a folder: reported and skipped
    assert rc == 1 and "--max-pixels" in err and not list((tmp_path / "out").glob("*.png"))


def test_a_one_pixel_image_upscales(tmp_path, cli):
    src = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 40, 90)).save(src)
    rc, _, err = cli("image", src, "-s", "2", "--backend", "openvino", "-q")
    assert rc == 0, err
    assert read_picture(tmp_path / "dot_x2.png").size == (2, 2)


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


def test_an_animation_says_only_its_first_frame_is_upscaled(tmp_path, natural_rgb, cli):
    frames = [Image.fromarray(natural_rgb[:48, :64]), Image.fromarray(natural_rgb[48:96, :64])]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    rc, _, err = cli("image", tmp_path / "anim.gif", "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0 and "only the first of its 2 frames" in err, err
    assert Image.open(tmp_path / "anim_x2.png").size == (128, 96)
