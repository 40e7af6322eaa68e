import os

import pytest
from conftest import ROOT
from PIL import Image

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
        (["image", ROOT / "samples" / "clip.mp4", tmp_path / "clip.png"], "a video; vsr upscale"),
        (["image", tmp_path, tmp_path / "big.png"], "a folder of images goes to a folder, not to one .png file"),
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


@pytest.mark.parametrize("width", [80, 200])
def test_models_table_reads_in_a_usual_terminal_and_a_wide_one(cli, monkeypatch, width):
    """In 80 columns the listing keeps names, scales and descriptions readable (seven columns there folded every
    cell to a letter a line); a wide terminal gets one column per fact."""
    from vsr.zoo import ZOO

    monkeypatch.setenv("COLUMNS", str(width))
    rc, out, _ = cli("models")
    assert rc == 0 and max(len(line) for line in out.splitlines()) <= width
    for e in ZOO:
        assert e.name in out
    assert "clean video, the default" in out and ("validation" in out) == (width > 80)
    assert "vsr models pull realesr-animevideov3" in out or "pulled" in out


@pytest.mark.parametrize("width", [80, 200])
def test_bench_table_keeps_its_notes_whole(capsys, monkeypatch, width):
    """`vsr bench`'s notes (why a row could not run) go under the table in a usual terminal, each once; a wide one
    keeps them in their column."""
    from vsr.bench import Report, Row, print_report

    why = "unavailable: int8 runs on the OpenVINO backend only (--backend openvino)"
    report = Report("fast", 2, "480×270", "960×540", 10, "a CPU", [
        Row("floor", fps=66.0, note="decode → OpenCV bicubic → libx264 veryfast"),
        Row("model", "torch", "int8", note=why), Row("end-to-end", "torch", "int8", note=why),
        Row("model", "openvino", "fp32", fps=27.3), Row("end-to-end", "openvino", "fp32", fps=15.3, peak_rss_mb=480)])
    monkeypatch.setenv("COLUMNS", str(width))
    print_report(report)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= width
    assert "27.3" in out and "480 MB" in out and "0.41" in out
    if width == 80:
        assert out.count(f"[2] {why[:40]}") == 1 and out.count("[2]") == 3 and "[3]" not in out
    else:
        assert "[1]" not in out and "decode → OpenCV bicubic → libx264 veryfast" in out


def test_a_scale_without_weights_is_resized_down_and_said_or_refused_above(tmp_path, natural_rgb, cli):
    """A model asked for a scale it has no weights for runs at its next larger one and is resized down (area
    filter), and the model line says so; above its largest scale it is one error line naming its scales."""
    from PIL import Image

    from vsr.zoo import weight_files

    src = _photo(tmp_path / "photo.png", natural_rgb)
    missing = next(s for s in (2, 3, 4) if not any(n == "image" and sc == s for n, sc in weight_files()))
    rc, _, err = cli("image", src, "-s", missing, "-m", "image", "--backend", "torch")
    assert rc == 0, err
    assert f"resized to ×{missing}" in err and "image has no" in err
    h, w = natural_rgb.shape[:2]
    assert Image.open(tmp_path / f"photo_x{missing}.png").size == (w * missing, h * missing)
    rc, _, err = cli("image", src, "-s", 8, "-m", "sr-lite", "-q")  # (an earlier release's name for it)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "×4" in err
    assert not (tmp_path / "photo_x8.png").exists()
    rc, _, err = cli("image", src, "-s", missing, "-m", "bicubic", "-q", "--overwrite")  # bicubic runs at any scale
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
    rc, alone, err = cli("eval", folder / "x.png", "--scale", "2", "-m", "bicubic")  # one picture
    assert rc == 0, err
    assert alone.split("│ x ")[1].split("│")[1] == out.split("│ x ")[1].split("│")[1] and "mean" not in alone


def test_an_animation_says_only_its_first_frame_is_upscaled(tmp_path, natural_rgb, cli):
    frames = [Image.fromarray(natural_rgb[:48, :64]), Image.fromarray(natural_rgb[48:96, :64])]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    rc, _, err = cli("image", tmp_path / "anim.gif", "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0 and "only the first of its 2 frames" in err and "`vsr upscale` takes the animation" in err, err
    assert Image.open(tmp_path / "anim_x2.png").size == (128, 96)
    frames[0].save(tmp_path / "scan.tif", save_all=True, append_images=frames[1:])  # pages, not an animation
    rc, _, err = cli("image", tmp_path / "scan.tif", "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0 and "only the first of its 2 pages" in err and "vsr upscale" not in err, err


@pytest.mark.parametrize("form", ["same", "dot", "absolute", "symlink", "hard link"])
def test_image_never_overwrites_its_input(tmp_path, natural_rgb, cli, monkeypatch, form):
    """Not even with --overwrite, by whatever path the output names the input; the error says what to do."""
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "photo.png", natural_rgb)
    if form == "symlink":
        os.symlink("photo.png", "link.png")
    if form == "hard link":
        os.link("photo.png", "hard.png")
    out = {"same": "photo.png", "dot": "./photo.png", "absolute": str(tmp_path / "photo.png"), "symlink": "link.png",
           "hard link": "hard.png"}[form]
    before = sorted(tmp_path.iterdir()), (tmp_path / "photo.png").read_bytes()
    for overwrite in ([], ["--overwrite"]):
        rc, _, err = cli("image", "photo.png", out, "-s", "2", "-m", "bicubic", "--backend", "torch", "-q", *overwrite)
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1, (overwrite, err)
        assert "would overwrite the input photo.png" in lines[0] and "photo_x2.png" in lines[0], err
        assert "--overwrite" not in lines[0]
    assert (sorted(tmp_path.iterdir()), (tmp_path / "photo.png").read_bytes()) == before


def _folder(path, rgb, names):
    path.mkdir()
    for n in names:
        _photo(path / n, rgb)
    return path


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("form", ["same", "trailing slash", "symlink"])
def test_image_never_writes_a_folder_over_itself(tmp_path, natural_rgb, cli, form):
    src = _folder(tmp_path / "img", natural_rgb, ["a.png", "b.jpg"])
    out = {"same": src, "trailing slash": f"{tmp_path}/./img/", "symlink": tmp_path / "link"}[form]
    if form == "symlink":
        os.symlink(src, out)
    before = _snapshot(src)
    for overwrite in ([], ["--overwrite"]):
        rc, _, err = cli("image", src, out, "-s", "2", "-m", "bicubic", "--backend", "torch", "-q", *overwrite)
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1 and "is the input folder" in lines[0], (overwrite, err)
        assert f"default: {tmp_path / 'img_x2'}" in lines[0]
    assert _snapshot(src) == before and not (tmp_path / "img_x2").exists()


def test_image_never_writes_a_folders_output_over_one_of_its_inputs(tmp_path, natural_rgb, cli):
    """An output folder whose a.png is a link to the input a.png (or to any other input)."""
    src = _folder(tmp_path / "img", natural_rgb, ["a.png", "b.png"])
    out = tmp_path / "out"
    out.mkdir()
    os.link(src / "a.png", out / "a.png")
    os.symlink(src / "a.png", out / "b.png")
    before = _snapshot(src)
    rc, _, err = cli("image", src, out, "-s", "2", "-m", "bicubic", "--backend", "torch", "-q", "--overwrite")
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and f"would overwrite the input {src / 'a.png'}" in lines[0], err
    assert _snapshot(src) == before


def test_a_folder_leaves_out_vsrs_own_outputs_and_hidden_files(tmp_path, natural_rgb, cli):
    """`vsr image img/a.png` writes img/a_x2.png; a later `vsr image img` does not upscale it again (nor a_x2's
    own outputs, nor hidden files), and a rerun with nothing left to do says so."""
    src = _folder(tmp_path / "img", natural_rgb, ["a.png", "b.jpg", "c_x2.png", ".hidden.png"])
    (src / "._a.png").write_bytes(b"macOS metadata, not an image")
    rc, _, err = cli("image", src / "a.png", "-s", "4", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 0, err
    (src / "a_x4_x2.png").write_bytes((src / "a_x4.png").read_bytes())
    _photo(src / "b_x3.png", natural_rgb)  # the output of b.jpg, written as PNG
    rc, _, err = cli("image", src, "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "img_x2").iterdir()) == ["a.png", "b.jpg", "c_x2.png"]
    assert err.strip().splitlines() == [("skipping 3 file(s) that look like vsr's own outputs (a_x4.png, a_x4_x2.png, "
                                         "b_x3.png): rename them to upscale them")]
    rc, _, err = cli("image", src, "-s", "2", "-m", "bicubic", "--backend", "torch")
    assert rc == 0, err
    assert err.strip().splitlines()[-1] == f"nothing to do: every output exists in {tmp_path / 'img_x2'} " \
                                           "(--overwrite replaces them)"
    assert "written" not in err and "model" not in err


def test_a_folder_with_subfolders_keeps_its_tree_and_names_that_would_meet(tmp_path, natural_rgb, cli):
    """Subfolders are upscaled into the same subfolders (hidden ones left out); a.bmp beside a.png is written as
    a.bmp.png, not over a.png's output; an output folder inside the input is not read back, nor are vsr's own
    outputs in another subfolder."""
    src = _folder(tmp_path / "scans", natural_rgb, ["a.png"])
    _folder(src / "box1", natural_rgb, ["a.png", "a.bmp"])
    (src / "box2").mkdir()
    _folder(src / "box2" / "old", natural_rgb, ["b.jpg"])
    _folder(src / ".trash", natural_rgb, ["c.png"])
    rc, _, err = cli("image", src / "a.png", src / "box2/", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 0 and (src / "box2" / "a_x2.png").exists(), err
    out = src / "big"
    rc, _, err = cli("image", src, out, "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 0, err
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert made == ["a.png", "box1/a.bmp.png", "box1/a.png", "box2/old/b.jpg"]
    assert "a_x2.png" in err  # skipped as an output of a.png, though in another folder
    rc, _, err = cli("image", src, out, "-s", "2", "-m", "bicubic", "--backend", "torch")  # big/ holds images now
    assert rc == 0 and "nothing to do: every output exists" in err, err
    rc, _, err = cli("image", src / "box1", tmp_path / "box1", "-s", "2", "-m", "bicubic", "--backend", "torch")
    assert rc == 0 and "2 image(s) written in" in err and str(tmp_path / "box1") in err, err  # (not quiet: a summary)


def test_a_folder_named_dot_goes_beside_it(tmp_path, natural_rgb, cli, monkeypatch):
    src = _folder(tmp_path / "img", natural_rgb, ["a.png"])
    monkeypatch.chdir(src)
    rc, _, err = cli("image", ".", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 0, err
    assert read_picture(tmp_path / "img_x2" / "a.png").size == (256, 192)


def test_an_output_ending_in_a_slash_is_a_folder(tmp_path, natural_rgb, cli):
    src = _photo(tmp_path / "a.png", natural_rgb)
    for folder in ("new", "nested/deeper"):
        rc, _, err = cli("image", src, f"{tmp_path}/{folder}/", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
        assert rc == 0, err
        assert read_picture(tmp_path / folder / "a_x2.png").size == (256, 192)
    rc, _, err = cli("image", src, tmp_path / "plain", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and "has no image extension: add .png, or end it with / for a folder" in lines[0]
    assert not (tmp_path / "plain").exists()
    rc, _, err = cli("image", src, f"{src}/", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 1 and "exists and is not a folder" in err


def test_a_folders_errors_name_the_file_once(tmp_path, natural_rgb, cli, monkeypatch):
    import vsr.upscale_picture
    from vsr.errors import VsrError

    src = _folder(tmp_path / "archive", natural_rgb, ["a.png"])
    (src / "broken.png").write_bytes(b"nope")
    rc, _, err = cli("image", src, tmp_path / "out", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    line = next(ln for ln in err.splitlines() if "broken" in ln)
    assert rc == 1 and line.count("broken.png") == 1 and line.startswith(f"error: {src / 'broken.png'}: "), err

    def fails(*_a, **_k):
        raise VsrError("not enough memory")

    monkeypatch.setattr(vsr.upscale_picture, "upscale_picture", fails)
    rc, _, err = cli("image", src, tmp_path / "out2", "-s", "2", "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 1 and "error: a.png: not enough memory" in err.splitlines(), err


def test_about_prefixes_the_name_only_where_the_message_lacks_it():
    from vsr.errors import VsrError, about

    assert about("in/a.png", VsrError("in/a.png: not an image")) == "in/a.png: not an image"
    assert about("in/a.png", "cannot write out/a.png: disk full") == "cannot write out/a.png: disk full"
    assert about("in/a.png", "out of memory") == "a.png: out of memory"
    assert about("in/a.png", "in/data.png: not an image") == "a.png: in/data.png: not an image"  # another file
    assert about("a.mp4", "a.mp4.part: exists") == "a.mp4: a.mp4.part: exists"
