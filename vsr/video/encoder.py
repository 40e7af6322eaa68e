"""The video encoder: which encoder and pixel format an output gets, and the options it is opened with."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import av

from vsr.errors import VsrError
from vsr.formats import (
    ALPHA_CODECS,
    DEFAULT_CRF,
    DEFAULT_PRESET,
    DEFAULT_QSCALE,
    LOSSLESS,
    PRESET_OPTION,
    QSCALE_CODECS,
    QUALITY_RANGE,
    SIDE_ALPHA_CODECS,
    muxer_for,
)
from vsr.video.colour import is_rgb_format


@dataclass
class EncodeOptions:
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    threads: int = field(default_factory=lambda: int(os.environ.get("VSR_ENCODER_THREADS", "0")))  # 0 = FFmpeg's
    convert_threads: int = field(default_factory=lambda: int(os.environ.get("VSR_CONVERT_THREADS", "1")))  # swscale


def _chroma_and_bits(pix_fmt: str) -> tuple[str, int]:
    fmt = av.VideoFormat(pix_fmt, 64, 64)
    bits = max(c.bits for c in fmt.components)
    if fmt.is_rgb or pix_fmt.startswith(("gbr", "rgb", "bgr")):
        return "444", bits
    comps = fmt.components
    if len(comps) >= 3:
        cw, ch = comps[1].width, comps[1].height
        full_w, full_h = comps[0].width, comps[0].height
        if cw == full_w and ch == full_h:
            return "444", bits
        if ch == full_h:
            return "422", bits
    return "420", bits


def choose_pix_fmt(codec: str, source_pix_fmt: str, bits: int, alpha: bool = False) -> str:
    """Keep the source's chroma layout and bit depth where the encoder allows; else the nearest it has. With
    ``alpha``, a format with an alpha plane where the encoder keeps one: the source's depth or more, its chroma
    layout, its family (RGB or YUV), in that order of importance."""
    if codec == "gif":
        return "pal8"  # a palette of its own for each frame (vsr.video.sink.Palettes)
    supported = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    chroma, _ = _chroma_and_bits(source_pix_fmt) if source_pix_fmt not in ("rgb24", "rgb48le") else ("444", bits)
    if alpha and codec in ALPHA_CODECS:
        rgb = is_rgb_format(av.VideoFormat(source_pix_fmt))
        options = [av.VideoFormat(f) for f in supported]
        options = [f for f in options if len(f.components) == 4]  # colour + alpha (not grey + alpha)
        if codec in SIDE_ALPHA_CODECS:  # libvpx lists yuva444p, but opens with alpha only beside 8-bit 4:2:0
            options = [f for f in options if f.name == "yuva420p"]
        if options:
            def cost(f):
                c, b = _chroma_and_bits(f.name)
                return b < bits, c != chroma, is_rgb_format(f) != rgb, b
            return min(options, key=cost).name
    # the source's depth, else the deepest the encoder has below it (12-bit HEVC into H.264: 10, not 8)
    depths = [d for b, d in ((12, "12le"), (10, "10le"), (8, "")) if b <= max(bits, 8)]
    wanted = [f"yuv{c}p{d}" for d in depths for c in (chroma, "420")]
    for name in wanted:
        if name in supported:
            return name
    return supported[0] if supported else "yuv420p"


# what browsers', QuickTime's and phones' decoders refuse: H.264 beyond 8-bit 4:2:0, HEVC beyond Main and Main 10
_NOT_FOR_PLAYERS = {("libx264", f) for f in ("yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le")} | {
    ("libx265", f) for f in ("yuv422p", "yuv444p", "yuv422p10le", "yuv444p10le", "yuv420p12le", "yuv422p12le",
                             "yuv444p12le")}


def players_note(target: Path, codec: str, pix_fmt: str) -> str | None:
    """What to tell someone whose .mp4 keeps a depth or chroma that players on the web and on phones refuse."""
    if target.suffix.lower() in (".mp4", ".m4v") and (codec, pix_fmt) in _NOT_FOR_PLAYERS:
        return (f"{codec} {pix_fmt} (the input's depth and chroma, kept) plays in VLC, mpv and editors; most browsers, "
                "QuickTime and phones do not: --pix-fmt yuv420p makes a file they play")
    return None


def encoder_options(codec: str, opts: EncodeOptions, hdr, warn) -> dict[str, str]:
    """What ``codec`` is opened with: its quality (CRF, or a quantiser for MPEG-1/2), speed preset, and the HDR10
    metadata of the source (``hdr``: vsr.video.colour.HDR or None) where the encoder can carry it."""
    options = {}
    crf = opts.crf if opts.crf is not None else DEFAULT_CRF.get(codec)
    if crf is not None and codec not in LOSSLESS:
        options["crf"] = str(crf)
        if codec == "libvpx-vp9":
            options["b"] = "0"
    if codec == "libx265":
        options["a53cc"] = "1"  # closed captions, where frames carry them (libx264's is on by default)
        options["x265-params"] = "log-level=error"  # not its banner and statistics on the terminal, per segment
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # the same for SVT-AV1 (read from the environment): errors only
    if codec in QSCALE_CODECS:
        q = opts.crf if opts.crf is not None else DEFAULT_QSCALE
        options.update(flags="+qscale", global_quality=str(q * 118))  # FF_QP2LAMBDA: a quantiser as lambda
    preset = opts.preset or DEFAULT_PRESET.get(codec)
    if preset is not None and codec in PRESET_OPTION:
        options[PRESET_OPTION[codec]] = preset
    if codec == "libvpx-vp9":
        options["row-mt"] = "1"  # threads across rows, not only tile columns
    if hdr is not None:  # HDR10 metadata into the bitstream, where the encoder can carry it
        params = hdr.encoder_options(codec)
        if params is None:
            warn(f"the input's HDR10 metadata (mastering display, light level) is not written: {codec} "
                 "cannot carry it (libx265 or libsvtav1 can)")
        else:
            options.update({k: ":".join(filter(None, [options.get(k), v])) for k, v in params.items()})
    return options


def check_quality(codec: str | None, crf: int | None) -> None:
    """Refuse, before any work, a --crf outside the encoder's own scale, or one for an encoder that has none."""
    if crf is None:
        return
    if codec is None:
        raise VsrError("--crf applies to a video output, not to a folder of frames")
    if codec not in QUALITY_RANGE:
        raise VsrError(f"--crf does not apply to {codec}" + (" (lossless)" if codec in LOSSLESS else "")
                       + f"; encoders with a quality scale: {', '.join(QUALITY_RANGE)}")
    lo, hi = QUALITY_RANGE[codec]
    if not lo <= crf <= hi:
        what = "quantiser" if codec in QSCALE_CODECS else "CRF"
        raise VsrError(f"--crf {crf} is outside {codec}'s {what} range {lo}–{hi} (lower is better)")


def check_encoder(target: Path, codec: str) -> None:
    """Refuse, before any work, an encoder that does not exist here or whose video the output's container cannot
    hold (FFV1 in .mov, ProRes in .mp4)."""
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError or ValueError
        raise VsrError(f"unknown or unavailable encoder {codec!r}") from None
    try:
        held = holds(muxer_for(target) or target.suffix.lstrip("."), codec)
    except (av.error.FFmpegError, ValueError):
        return  # not a container FFmpeg knows: opening the output says so
    if not held:
        raise VsrError(f"a {target.suffix} file cannot hold {codec} video: choose another --codec or container "
                       "(.mkv holds the most)")


def holds(muxer: str, codec: str) -> bool:
    """Whether FFmpeg's ``muxer`` takes the packets of encoder ``codec`` (tried on an empty in-memory file)."""
    with av.open(io.BytesIO(), "w", format=muxer) as out:
        try:
            out.add_stream(codec)
            return True
        except ValueError:  # "'mov' format does not support 'ffv1' codec"
            return False
