"""Colour: which matrix and range a video uses, and RGB conversions that honour them.

FFmpeg's swscale (through PyAV's ``reformat``) does the conversion, with the
input's tagged matrix and range passed explicitly on both sides, and the
output frames carry the same tags (matrix, range, primaries, transfer).
Untagged input is read as BT.709 for HD and BT.601 for SD, limited range, as
players do (:func:`untagged`); the output is then tagged with what was assumed,
so a 480p → 960p upscale does not change colour when a player re-guesses for
the larger size.

Every path that turns video into arrays goes through here: the product's
decoder (:mod:`vsr.video.source`), the codec round trip of ``vsr eval --crf``
and of training's degradation (:mod:`vsr.video.recompress`), scoring and
training's frame store (8 bits by :func:`to_8bit`), and the float tensors
training feeds its models (:func:`to_unit`, :func:`from_unit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import Interpolation

# AVColorSpace values → swscale's colourspace names
_MATRIX_NAMES = {1: "itu709", 4: "fcc", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# No scaling happens in these conversions, so the "interpolation" flags only choose swscale's path: bilinear with
# full-resolution chroma keeps its fast SIMD converters (≈25× faster to RGB than ACCURATE_RND/BICUBIC here) and
# stays within ±2 code values (tests/test_video.py); FULL_CHR_H_INP filters chroma when subsampling to 4:2:0.
_TO_RGB = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT
_FROM_RGB = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INP
MPEG, JPEG = 1, 2  # AVColorRange: limited, full
UNSPECIFIED = 2  # AVColorSpace/primaries/trc "unspecified"


@dataclass(frozen=True)
class Colour:
    matrix: int  # AVColorSpace
    range: int  # AVColorRange (1 limited, 2 full)
    primaries: int  # AVColorPrimaries
    trc: int  # AVColorTransferCharacteristic
    bits: int  # bits per component of the source
    assumed: bool = False  # some tag was missing and guessed

    @property
    def sws_matrix(self) -> str:
        return _MATRIX_NAMES.get(self.matrix, "itu709")

    @property
    def sws_range(self) -> str:
        return "JPEG" if self.range == JPEG else "MPEG"

    def describe(self) -> str:
        names = {1: "BT.709", 5: "BT.601", 6: "BT.601", 9: "BT.2020", 10: "BT.2020", 7: "SMPTE-240M", 4: "FCC"}
        return f"{names.get(self.matrix, self.matrix)} {'full' if self.range == JPEG else 'limited'} range, {self.bits}-bit" + (
            " (assumed: input untagged)" if self.assumed else "")


def _bits(fmt: av.VideoFormat) -> int:
    return max(c.bits for c in fmt.components) if fmt.components else 8


def is_rgb_format(fmt: av.VideoFormat) -> bool:
    return fmt.is_rgb or fmt.name.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "rgba", "bgra", "pal8"))


def untagged(width: int, height: int, bits: int = 8) -> Colour:
    """The colour players assume for video of this size that says nothing: BT.709 for HD (1280 wide or more, or
    over 576 lines), else BT.601; limited range; the matrix's primaries and transfer."""
    hd = width >= 1280 or height > 576
    return Colour(1 if hd else 6, MPEG, 1 if hd else 6, 1 if hd else 6, bits, assumed=True)


def colour_of(frame: av.VideoFrame) -> Colour:
    """The colour description of a decoded frame, with missing tags filled in as players do (:func:`untagged`)."""
    fmt = frame.format
    matrix, rng = int(frame.colorspace), int(frame.color_range)
    assumed = False
    if matrix not in _MATRIX_NAMES:
        matrix = untagged(frame.width, frame.height).matrix
        assumed = True
    if rng not in (MPEG, JPEG):
        rng = JPEG if fmt.name.startswith("yuvj") or is_rgb_format(fmt) else MPEG
        assumed = True
    prim, trc = int(frame.color_primaries), int(frame.color_trc)
    if prim in (0, UNSPECIFIED):
        prim = {1: 1, 9: 9, 10: 9}.get(matrix, 6)
    if trc in (0, UNSPECIFIED):
        trc = {9: 14, 10: 14}.get(matrix, 1 if matrix == 1 else 6)
    return Colour(matrix, rng, prim, trc, _bits(fmt), assumed)


def has_alpha(fmt: av.VideoFormat) -> bool:
    """Whether a pixel format carries alpha (yuva*, rgba, argb, gbrap, ya8, …): a colour or grey plane plus one."""
    return len(fmt.components) in (2, 4)


def to_rgb(frame: av.VideoFrame, colour: Colour, threads: int = 1) -> np.ndarray:
    """H×W×3 RGB: uint8 for 8-bit sources, uint16 for deeper ones."""
    return _reformat_rgb(frame, colour, "rgb48le" if colour.bits > 8 else "rgb24", threads)


def to_rgba(frame: av.VideoFrame, colour: Colour, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """RGB as ``to_rgb`` and the alpha plane (same depth), from one conversion."""
    rgba = _reformat_rgb(frame, colour, "rgba64le" if colour.bits > 8 else "rgba", threads)
    return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])


def _reformat_rgb(frame: av.VideoFrame, colour: Colour, fmt: str, threads: int) -> np.ndarray:
    if is_rgb_format(frame.format):
        return frame.reformat(format=fmt, threads=threads).to_ndarray()
    return frame.reformat(
        format=fmt, src_colorspace=colour.sws_matrix, src_color_range=colour.sws_range,
        dst_color_range="JPEG", interpolation=_TO_RGB, threads=threads,
    ).to_ndarray()


def from_rgb(rgb: np.ndarray, colour: Colour, pix_fmt: str, threads: int = 1,
             carrier: av.VideoFrame | None = None) -> av.VideoFrame:
    """An RGB (or RGBA) array, uint8 or uint16, as a frame in ``pix_fmt``, converted and tagged with ``colour``.
    ``carrier``: a frame whose side data (closed captions) the result keeps."""
    deep = rgb.dtype == np.uint16
    fmt = ("rgba64le" if deep else "rgba") if rgb.shape[2] == 4 else ("rgb48le" if deep else "rgb24")
    if carrier is None:
        frame = av.VideoFrame.from_ndarray(rgb, format=fmt)
    else:  # PyAV cannot add side data to a frame, but a reformat copies it: the pixels are then written over
        h, w = rgb.shape[:2]
        frame = carrier.reformat(width=w, height=h, format=fmt, interpolation="POINT")
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)  # (a row may be padded)
        rows[:, :rgb[0].nbytes] = rgb.astype(rgb.dtype.newbyteorder("<"), copy=False).reshape(h, -1).view(np.uint8)
    # The RGB is already in the video's primaries and transfer: say so, or swscale converts gamut and transfer from
    # what it assumes (BT.709) to the tags asked for: for BT.2020 both wrong and ~180× slower (the HDR "cliff")
    frame.color_primaries, frame.color_trc = colour.primaries, colour.trc
    target = av.VideoFormat(pix_fmt)
    if is_rgb_format(target):
        out = frame.reformat(format=pix_fmt, threads=threads)
    else:
        out = frame.reformat(
            format=pix_fmt, src_colorspace=colour.sws_matrix, dst_colorspace=colour.sws_matrix,
            src_color_range="JPEG", dst_color_range=colour.sws_range, dst_color_trc=colour.trc,
            dst_color_primaries=colour.primaries, interpolation=_FROM_RGB, threads=threads,
        )
        out.colorspace = colour.matrix
    return out


def to_8bit(rgb: np.ndarray) -> np.ndarray:
    """8-bit RGB from what :func:`to_rgb` gives (uint16 for deeper sources): the nearest of the 256 levels, x / 257
    rounded (16-bit white, 65535, is 255). 8-bit input is returned as it is."""
    if rgb.dtype == np.uint8:
        return rgb
    return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)


def to_unit(rgb: np.ndarray) -> np.ndarray:
    """Integer RGB (uint8 or uint16) as float32 in [0, 1]."""
    return rgb.astype(np.float32) / np.float32(255 if rgb.dtype == np.uint8 else 65535)


def from_unit(x: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """Float RGB in [0, 1] as integers, rounded half up and clipped, as the engines quantise their outputs."""
    peak = 255 if np.dtype(dtype) == np.uint8 else 65535
    return np.clip(x * peak + 0.5, 0, peak).astype(dtype)


def tag_encoder(ctx, colour: Colour) -> None:
    """Write the colour description into an encoder's context (so the bitstream carries it)."""
    ctx.colorspace = colour.matrix
    ctx.color_range = colour.range
    ctx.color_primaries = colour.primaries
    ctx.color_trc = colour.trc


@dataclass(frozen=True)
class HDR:
    """HDR10 static metadata of a source: the mastering display and the content light level (SMPTE ST 2086 and
    CTA-861.3), in the units the encoders take: chromaticities in 1/50000, luminance in 1/10000 cd/m²."""

    primaries: tuple[tuple[int, int], ...] | None  # (x, y) for R, G, B
    white: tuple[int, int] | None
    luminance: tuple[int, int] | None  # (max, min)
    max_cll: int | None
    max_fall: int | None

    def master_display(self) -> str | None:
        if self.primaries is None or self.white is None or self.luminance is None:
            return None
        (rx, ry), (gx, gy), (bx, by) = self.primaries
        return (f"G({gx},{gy})B({bx},{by})R({rx},{ry})WP({self.white[0]},{self.white[1]})"
                f"L({self.luminance[0]},{self.luminance[1]})")

    def encoder_options(self, codec: str) -> dict[str, str] | None:
        """What tells ``codec`` to write this metadata into the bitstream, or None where it cannot."""
        md = self.master_display()
        cll = f"{self.max_cll},{self.max_fall}" if self.max_cll is not None else None
        if codec == "libx265":
            params = [f"master-display={md}"] if md else []
            params += [f"max-cll={cll}"] if cll else []
            return {"x265-params": ":".join(["hdr10=1", *params])}
        if codec == "libsvtav1":
            params = [f"mastering-display={md}"] if md else []
            params += [f"content-light={cll}"] if cll else []
            return {"svtav1-params": ":".join(params)}
        return None


def hdr_of(frame: av.VideoFrame) -> HDR | None:
    """The frame's HDR10 side data (AVMasteringDisplayMetadata, AVContentLightMetadata), if it carries any."""
    import struct

    mastering = light = None
    for sd in frame.side_data:
        name = getattr(sd.type, "name", str(sd.type))
        if name == "MASTERING_DISPLAY_METADATA":
            mastering = bytes(sd)
        elif name == "CONTENT_LIGHT_LEVEL":
            light = bytes(sd)
    if mastering is None and light is None:
        return None
    primaries = white = luminance = None
    if mastering is not None and len(mastering) >= 88:
        r = struct.unpack("<20i", mastering[:80])  # 10 rationals: R, G, B (x, y), white (x, y), min, max
        has_primaries, has_luminance = struct.unpack("<2i", mastering[80:88])

        def q(i: int, unit: int) -> int:
            return round(r[2 * i] / r[2 * i + 1] * unit) if r[2 * i + 1] else 0

        if has_primaries:
            primaries = tuple((q(2 * c, 50000), q(2 * c + 1, 50000)) for c in range(3))
            white = (q(6, 50000), q(7, 50000))
        if has_luminance:
            luminance = (q(9, 10000), q(8, 10000))
    max_cll = max_fall = None
    if light is not None and len(light) >= 8:
        max_cll, max_fall = struct.unpack("<2I", light[:8])
    return HDR(primaries, white, luminance, max_cll, max_fall)
