import functools
import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import small

from engines.torch_backend import TorchRunner
from vsr.errors import VsrError
from vsr.picture import Picture, read_picture, write_picture
from vsr.tiling import run_tiled
from vsr.upscale_picture import upscale_picture
from vsr.windows import still


@functools.cache  # LittleCMS stamps each new profile with the time to the second: build it once
def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def bicubic(scale=2):
    return TorchRunner(small("bicubic", scale))


def test_rgb8_png_round_trip_keeps_icc_and_size(tmp_path, natural_rgb):
    src = tmp_path / "a.png"
    Image.fromarray(natural_rgb).save(src, icc_profile=_srgb_icc())
    pic = read_picture(src)
    assert pic.bits == 8 and not pic.gray and pic.alpha is None and pic.icc == _srgb_icc()
    out = upscale_picture(pic, bicubic())
    dst = write_picture(tmp_path / "b.png", out)
    with Image.open(dst) as im:
        assert im.size == (256, 192) and im.mode == "RGB" and im.info["icc_profile"] == _srgb_icc()


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_colour_with_alpha_stays_16bit(tmp_path, ext):
    import cv2

    rng = np.random.default_rng(0)
    rgba = (rng.random((20, 30, 4)) * 65535).astype(np.uint16)
    src = tmp_path / f"a{ext}"
    cv2.imwrite(str(src), rgba[..., [2, 1, 0, 3]])
    pic = read_picture(src)
    assert pic.bits == 16 and pic.alpha is not None and np.array_equal(pic.color, rgba[..., :3])
    out = upscale_picture(pic, bicubic())
    pic.icc = out.icc = _srgb_icc()
    dst = write_picture(tmp_path / f"b{ext}", out)
    back = read_picture(dst)
    assert back.bits == 16 and back.alpha is not None and back.color.shape == (40, 60, 3)
    assert back.icc == _srgb_icc()
    assert np.array_equal(back.color, out.color) and np.array_equal(back.alpha, out.alpha)


def _dpx(path, rgb16: np.ndarray, pix_fmt: str) -> None:
    """A DPX file as a film scanner writes it (10-bit: gbrp10), made with FFmpeg's encoder."""
    import av

    with av.open(str(path), "w", format="image2") as c:
        v = c.add_stream("dpx")
        v.width, v.height, v.pix_fmt = rgb16.shape[1], rgb16.shape[0], pix_fmt
        for p in [*v.encode(av.VideoFrame.from_ndarray(rgb16, format="rgb48le")), *v.encode()]:
            c.mux(p)


def test_dpx_film_scans_are_read_deep_and_written_back(tmp_path, natural_rgb):
    """A 10-bit DPX frame (which Pillow does not read) comes in at 16 bits within its own precision; a DPX out keeps
    16-bit colour and alpha exactly, and 8-bit stays 8-bit."""
    rgb16 = natural_rgb.astype(np.uint16) * 257
    _dpx(tmp_path / "scan.dpx", rgb16, "gbrp10le")
    pic = read_picture(tmp_path / "scan.dpx")
    assert pic.bits == 16 and pic.alpha is None and pic.size == (natural_rgb.shape[1], natural_rgb.shape[0])
    assert np.abs(pic.color.astype(int) - rgb16).max() <= 64  # one 10-bit step
    out = upscale_picture(pic, bicubic())
    out.alpha = np.full(out.color.shape[:2], 1000, np.uint16)
    back = read_picture(write_picture(tmp_path / "out.dpx", out))
    assert np.array_equal(back.color, out.color) and np.array_equal(back.alpha, out.alpha)
    eight = Picture(color=natural_rgb)
    assert np.array_equal(read_picture(write_picture(tmp_path / "out8.dpx", eight)).color, natural_rgb)
    assert read_picture(tmp_path / "out8.dpx").bits == 8
    (tmp_path / "cut.dpx").write_bytes((tmp_path / "scan.dpx").read_bytes()[:3000])
    with pytest.raises(VsrError, match="cut.dpx: truncated or corrupt"):
        read_picture(tmp_path / "cut.dpx")


def test_gray_8_and_16_stay_gray(tmp_path):
    g8 = tmp_path / "g8.png"
    Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (16, 1))).save(g8)
    g16 = tmp_path / "g16.png"
    Image.fromarray(np.tile(np.arange(32, dtype=np.uint16) * 2000, (16, 1))).save(g16)
    for path, bits in ((g8, 8), (g16, 16)):
        pic = read_picture(path)
        assert pic.gray and pic.bits == bits
        out = upscale_picture(pic, bicubic())
        dst = write_picture(tmp_path / f"out{bits}.png", out)
        back = read_picture(dst)
        assert back.gray and back.bits == bits and back.size == (64, 32)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (10, 8))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((2, 2), 1)
    im.info["transparency"] = 0
    src = tmp_path / "p.png"
    im.save(src, transparency=0)
    pic = read_picture(src)
    assert pic.alpha is not None and pic.color.shape == (8, 10, 3)
    assert pic.alpha[2, 2] == 255 and pic.alpha[0, 0] == 0


def test_exif_orientation_is_applied(tmp_path, natural_rgb):
    src = tmp_path / "o.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(natural_rgb).save(src, exif=exif.tobytes(), quality=95)
    pic = read_picture(src)
    assert pic.color.shape[:2] == (128, 96)  # width and height swapped
    dst = write_picture(tmp_path / "o2.jpg", pic)
    with Image.open(dst) as im:
        assert im.getexif().get(0x0112, 1) == 1 and im.size == (96, 128)


def test_formats_by_extension_and_warnings(tmp_path, natural_rgb):
    rgba = Picture(color=natural_rgb, alpha=np.full(natural_rgb.shape[:2], 200, np.uint8))
    for ext in (".png", ".tif", ".webp", ".avif", ".jpg"):
        if ext == ".jpg":
            with pytest.warns(UserWarning, match="alpha"):
                write_picture(tmp_path / f"x{ext}", rgba)
        else:
            write_picture(tmp_path / f"x{ext}", rgba)
            assert read_picture(tmp_path / f"x{ext}").alpha is not None
    with pytest.raises(VsrError, match="unsupported output format"):
        write_picture(tmp_path / "x.gif", rgba)
    deep = Picture(color=natural_rgb.astype(np.uint16) * 257)
    with pytest.warns(UserWarning, match="8 bits"):
        write_picture(tmp_path / "d.webp", deep)


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_bad_inputs(tmp_path, natural_rgb, content):
    path = tmp_path / "bad.png"
    if content == "truncated":
        buf = io.BytesIO()
        Image.fromarray(natural_rgb).save(buf, format="PNG")
        content = buf.getvalue()[:300]
    path.write_bytes(content)
    with pytest.raises(VsrError) as e:
        read_picture(path)
    assert "bad.png" in str(e.value)


def test_pixel_limit(tmp_path, natural_rgb):
    path = tmp_path / "big.png"
    Image.fromarray(natural_rgb).save(path)
    with pytest.raises(VsrError, match="over the limit"):
        read_picture(path, max_pixels=1000)


def test_failed_write_leaves_nothing(tmp_path, natural_rgb, monkeypatch):
    import vsr.picture as images

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images, "_write_pillow", boom)
    with pytest.raises(VsrError, match="No space left"):
        write_picture(tmp_path / "x.png", Picture(color=natural_rgb))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["edsr", "mf-fast", "mf-dis"])
def test_tiled_equals_untiled(name, natural_rgb):
    """Tiles with enough overlap for the receptive field give the untiled picture (within a code value)."""
    runner = TorchRunner(small(name))
    rng = np.random.default_rng(0)
    w = still(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8), runner.model)
    full = run_tiled(runner, w, tile=0)
    tiled = run_tiled(runner, w, tile=32, overlap=24)
    assert full.shape == tiled.shape == (140, 180, 3) and full.dtype == np.uint8
    assert np.abs(full.astype(int) - tiled.astype(int)).max() <= 1


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 5), (3, 1)])
def test_tiny_pictures_upscale_on_every_cpu_backend(size):
    """A 1×1 or 2×2 input is padded to what the model needs and cropped back (OpenVINO refused such shapes)."""
    from engines.openvino_backend import OpenVINORunner

    pic = Picture(color=np.full((*size, 3), 77, np.uint8))
    for runner in (TorchRunner(small("sr-lite")), OpenVINORunner(small("sr-lite"), precision="fp32"),
                   TorchRunner(small("mf-fast"))):
        out = upscale_picture(pic, runner)
        assert out.color.shape == (size[0] * 2, size[1] * 2, 3)
