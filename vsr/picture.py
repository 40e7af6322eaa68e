"""Reading and writing image files without losing what they are.

Kept: 8/16-bit depth, grayscale, alpha (separate plane), palette images
(expanded to RGB/RGBA), EXIF orientation (applied, then reset in the written
EXIF), the ICC profile. Pillow reads and writes; 16-bit colour, which Pillow
cannot hold, goes through OpenCV (PNG) and tifffile (TIFF). Writes go to a
temporary file beside the target and are renamed on success.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsr.errors import FULL, DiskFull, VsrError
from vsr.formats import IMAGE_WRITERS, VIDEO_EXTS

DEFAULT_MAX_PIXELS = 200_000_000  # decompression-bomb guard for inputs and outputs (--max-pixels)
_EIGHT_BIT_ONLY = {"WEBP", "JPEG", "AVIF"}  # (as Pillow writes them)


@dataclass
class Picture:
    color: np.ndarray  # H×W×3 (RGB) or H×W×1 (gray), uint8 or uint16
    alpha: np.ndarray | None = None  # H×W, same dtype
    icc: bytes | None = None
    exif: bytes | None = None

    @property
    def bits(self) -> int:
        return 16 if self.color.dtype == np.uint16 else 8

    @property
    def gray(self) -> bool:
        return self.color.shape[2] == 1

    @property
    def size(self) -> tuple[int, int]:  # (width, height)
        return self.color.shape[1], self.color.shape[0]


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an H×W(×C) array."""
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: x.swapaxes(0, 1)[:, ::-1],
        7: lambda x: x.swapaxes(0, 1)[::-1, ::-1],
        8: lambda x: x.swapaxes(0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](a)) if orientation in ops else a


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(25)
    return head[24] if len(head) == 25 and head[12:16] == b"IHDR" else 8


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VsrError(f"{path}: no such file")
    if path.is_dir():
        raise VsrError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise VsrError(f"{path}: empty file")


def _is_dpx(path: Path) -> bool:
    return path.suffix.lower() == ".dpx"


@contextlib.contextmanager
def _dpx(path: Path):
    """A DPX picture (a film scanner's frame, which Pillow does not read), opened through FFmpeg: its stream."""
    import av

    _check_file(path)
    try:
        with open(path, "rb") as f, av.open(f, format="dpx_pipe") as c:
            yield c.streams.video[0]
    except av.error.FFmpegError as e:
        raise VsrError(f"{path}: truncated or corrupt image ({e})") from None


def _read_dpx(path: Path, max_pixels: int) -> Picture:
    with _dpx(path) as v:
        check_size(path, v.width, v.height, max_pixels)  # (from the header, before decoding)
        f = next(v.container.decode(v), None)
    if f is None:
        raise VsrError(f"{path}: truncated or corrupt image (nothing decodes)")
    comps = f.format.components
    deep = max(c.bits for c in comps) > 8  # 10, 12 and 16-bit DPX: 16-bit here
    if len(comps) <= 2:
        if len(comps) == 2:
            warnings.warn(f"{path}: the alpha of a grey DPX is not kept")
        return Picture(color=f.to_ndarray(format="gray16le" if deep else "gray")[..., None].copy())
    a = f.to_ndarray(format=("rgba64le" if deep else "rgba") if len(comps) == 4 else ("rgb48le" if deep else "rgb24"))
    return Picture(color=np.ascontiguousarray(a[..., :3]), alpha=a[..., 3].copy() if a.shape[2] == 4 else None)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    _check_file(path)
    Image.MAX_IMAGE_PIXELS = None  # the limits are ours, with a clearer message
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        if path.suffix.lower() in VIDEO_EXTS:
            raise VsrError(f"{path}: a video; vsr upscale enlarges videos") from None
        raise VsrError(f"{path}: not an image (or a format vsr cannot read)") from None
    except OSError as e:
        raise VsrError(f"{path}: cannot open ({e})") from None


def check_size(path: Path, w: int, h: int, max_pixels: int, scale: int = 1) -> None:
    """Refuse an input, or the output it would make at ``scale``, over ``max_pixels`` (before any work)."""
    if max_pixels and w * h > max_pixels:
        raise VsrError(f"{path}: {w}×{h} is {w * h:,} pixels, over the limit of {max_pixels:,} (see --max-pixels)")
    ow, oh = w * scale, h * scale
    if max_pixels and ow * oh > max_pixels:
        raise VsrError(f"{path}: ×{scale} would make a {ow}×{oh} image ({ow * oh:,} pixels), over the limit of "
                       f"{max_pixels:,} (raise it with --max-pixels, or use a smaller scale)")


def picture_size(path: str | os.PathLike, oriented: bool = True) -> tuple[int, int]:
    """(width, height) from the file's header; ``oriented`` applies the EXIF rotation (which for some formats means
    reading the whole file: the pixel budget needs only the count)."""
    path = Path(path)
    if _is_dpx(path):
        with _dpx(path) as v:
            return v.width, v.height
    with _open(path) as im:
        w, h = im.size
        if not oriented:
            return w, h
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:  # noqa: BLE001 - a broken EXIF block is not worth failing for
            orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def read_picture(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    path = Path(path)
    if _is_dpx(path):
        return _read_dpx(path, max_pixels)
    im = _open(path)
    with im:
        w, h = im.size
        check_size(path, w, h, max_pixels)
        if getattr(im, "n_frames", 1) > 1:  # an animated GIF/WebP/PNG, or a multi-page TIFF
            kind = "pages" if im.format == "TIFF" else "frames"
            # FFmpeg decodes animated GIF and PNG, not animated WebP
            whole = "; `vsr upscale` takes the animation whole" if im.format in ("GIF", "PNG") else ""
            warnings.warn(f"{path}: only the first of its {im.n_frames} {kind} is upscaled{whole}")
        icc = im.info.get("icc_profile") or None
        try:
            exif = im.getexif()
        except Exception:  # noqa: BLE001 - a broken EXIF block is not worth failing for
            exif = None
        orientation = int(exif.get(0x0112, 1)) if exif else 1
        color, alpha = _pixels(im, path)
    if exif is not None and 0x0112 in exif:
        exif[0x0112] = 1
    exif_bytes = exif.tobytes() if exif else None
    if im.mode == "CMYK" and icc is not None:
        warnings.warn(f"{path}: CMYK image converted to RGB; its CMYK ICC profile is not carried over")
        icc = None
    color = _orient(color, orientation)
    alpha = _orient(alpha, orientation) if alpha is not None else None
    return Picture(color=color, alpha=alpha, icc=icc, exif=exif_bytes)


def _pixels(im, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode to (H×W×C colour, alpha or None) keeping bit depth."""
    fmt = im.format
    mode = im.mode
    sixteen = False
    if fmt == "PNG" and mode in ("RGB", "RGBA"):
        sixteen = _png_bit_depth(path) == 16
    elif fmt == "TIFF" and mode in ("RGB", "RGBA"):
        bps = im.tag_v2.get(258, (8,))
        sixteen = max(bps if isinstance(bps, tuple) else (bps,)) == 16
    try:
        if sixteen:
            import cv2

            a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if a is None or a.dtype != np.uint16:
                raise OSError("16-bit decode failed")
            if a.ndim == 2:
                a = a[..., None]
            a = a[..., [2, 1, 0, 3][: a.shape[2]]] if a.shape[2] >= 3 else a
            return (np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])) if a.shape[2] == 4 else (a, None)
        im.load()
    except OSError as e:
        raise VsrError(f"{path}: truncated or corrupt image ({e})") from None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[..., None].copy(), None
    if mode == "I":
        a = np.asarray(im)
        if a.min() < 0 or a.max() > 65535:
            raise VsrError(f"{path}: 32-bit integer images are not supported")
        return a.astype(np.uint16)[..., None], None
    if mode == "F":
        raise VsrError(f"{path}: floating-point images are not supported")
    if mode == "1":
        im = im.convert("L")
        mode = "L"
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
        mode = im.mode
    if mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
        mode = "RGB"
    a = np.asarray(im)
    if mode == "L":
        return a[..., None].copy(), None
    if mode == "LA":
        return a[..., :1].copy(), a[..., 1].copy()
    if mode == "RGBA":
        return a[..., :3].copy(), a[..., 3].copy()
    return a.copy(), None


def read_rgb8(path: str | os.PathLike) -> np.ndarray:
    """Any image as H×W×3 uint8 RGB (16-bit scaled down, gray repeated, alpha dropped): what training and
    scoring read, decoded as ``vsr image`` decodes it."""
    pic = read_picture(path)
    color = _to8(pic.color) if pic.bits == 16 else pic.color
    return np.ascontiguousarray(np.repeat(color, 3, axis=2) if pic.gray else color)


def output_format(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in IMAGE_WRITERS:
        raise VsrError(f"{path}: unsupported output format {ext or '(none)'}; use .png, .tif, .webp, .avif, .jpg "
                       "or .dpx")
    return IMAGE_WRITERS[ext]


def write_picture(path: str | os.PathLike, pic: Picture, *, quality: int = 95) -> Path:
    """Write atomically; warns (never silently) about what the format can't hold."""
    path = Path(path)
    fmt = output_format(path)
    color, alpha = pic.color, pic.alpha
    if fmt == "JPEG" and alpha is not None:
        warnings.warn(f"{path.name}: JPEG has no alpha channel; alpha dropped (use .png, .tif or .webp to keep it)")
        alpha = None
    if fmt in _EIGHT_BIT_ONLY and color.dtype == np.uint16:
        warnings.warn(f"{path.name}: {fmt} is written with 8 bits per channel; 16-bit image written as 8-bit (use .png "
                      "or .tif)")
        color = _to8(color)
        alpha = _to8(alpha) if alpha is not None else None
    if fmt == "DPX" and pic.icc:
        warnings.warn(f"{path.name}: DPX holds no ICC profile; the input's is not kept (use .png or .tif)")
    tmp = path.with_name(f".{path.stem}.vsr-tmp-{os.getpid()}{path.suffix}")
    try:
        if fmt == "DPX":
            _write_dpx(tmp, color, alpha)
        elif color.dtype == np.uint16 and fmt == "PNG":
            _write_png16(tmp, color, alpha, pic.icc)
        elif color.dtype == np.uint16:
            _write_tiff16(tmp, color, alpha, pic.icc)
        else:
            _write_pillow(tmp, fmt, color, alpha, pic.icc, pic.exif, quality)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in FULL:
            raise DiskFull(f"the disk is full writing {path} ({e.strerror}); free some space and run the same "
                           "command again: the pictures already written are kept") from None
        raise VsrError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _to8(a: np.ndarray) -> np.ndarray:
    from vsr.video.colour import to_8bit  # (PyAV, loaded only for 16-bit pictures)

    return to_8bit(a)


def _stack(color: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    a = color if color.shape[2] == 3 else color[..., :1]
    if alpha is not None:
        a = np.concatenate([a, alpha[..., None]], axis=2)
    return a[..., 0] if a.shape[2] == 1 else a


def _write_pillow(path: Path, fmt: str, color, alpha, icc, exif, quality: int) -> None:
    from PIL import Image

    im = Image.fromarray(_stack(color, alpha))
    kwargs: dict = {}
    if icc:
        kwargs["icc_profile"] = icc
    if exif and fmt in ("JPEG", "WEBP", "PNG", "AVIF"):
        kwargs["exif"] = exif
    if fmt in ("JPEG", "WEBP", "AVIF"):
        kwargs["quality"] = quality
    if fmt == "TIFF":
        kwargs["compression"] = "tiff_deflate"
    im.save(path, format=fmt, **kwargs)


def _write_dpx(path: Path, color, alpha) -> None:
    """8-bit or 16-bit DPX (a 10-bit scan's frames come back 16-bit: the model's output has more than 10 bits)."""
    import fractions

    import av

    a = np.ascontiguousarray(_stack(color, alpha))
    deep = a.dtype == np.uint16
    fmt = ("gray16le" if deep else "gray") if a.ndim == 2 else \
        {3: "rgb48le" if deep else "rgb24", 4: "rgba64le" if deep else "rgba"}[a.shape[2]]
    enc = av.CodecContext.create("dpx", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = a.shape[1], a.shape[0], fmt, fractions.Fraction(1, 25)
    packets = enc.encode(av.VideoFrame.from_ndarray(a, format=fmt)) + enc.encode(None)
    path.write_bytes(b"".join(bytes(p) for p in packets))


def _write_png16(path: Path, color, alpha, icc) -> None:
    import cv2

    a = _stack(color, alpha)
    if a.ndim == 3:
        a = a[..., [2, 1, 0, 3][: a.shape[2]]]  # OpenCV wants BGR(A)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a))
    if not ok:
        raise OSError("PNG encoding failed")
    data = buf.tobytes()
    if icc:
        data = _png_insert_iccp(data, icc)
    path.write_bytes(data)


def _png_insert_iccp(png: bytes, icc: bytes) -> bytes:
    """Add an iCCP chunk right after IHDR (OpenCV's PNG writer has no ICC option)."""
    body = b"icc\x00\x00" + zlib.compress(icc)  # name, NUL, compression method 0
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _write_tiff16(path: Path, color, alpha, icc) -> None:
    import tifffile

    a = _stack(color, alpha)
    extras = {"extrasamples": [2]} if alpha is not None else {}  # 2 = unassociated alpha
    tifffile.imwrite(
        path,
        a,
        photometric="minisblack" if color.shape[2] == 1 else "rgb",
        compression="zlib",
        iccprofile=icc,
        **extras,
    )
