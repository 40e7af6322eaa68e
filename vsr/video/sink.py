"""Where upscaled frames go: a video file (PyAV) or a folder of images.

Both sinks take upscaled frames and the copied packets of the other streams and write them to a temporary file
or folder that ``finish`` renames into place; ``abort`` removes it, so no half-written output is ever left at
the target path.
"""

from __future__ import annotations

import io
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vsr.errors import VsrError
from vsr.formats import (ALPHA_CODECS, CAPTION_CODECS, CONTAINERS, DEFAULT_CRF, DEFAULT_PRESET, DEFAULT_QSCALE,
                         LOSSLESS, PRESET_OPTION, QSCALE_CODECS, SIDE_ALPHA_CODECS, default_codec)
from vsr.video.colour import Colour, from_rgb, has_alpha, is_rgb_format, tag_encoder
from vsr.video.source import Frame, FolderSource, VideoSource

Warn = Callable[[str], None]


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


class Sink(ABC):
    """A destination for upscaled frames (in display order) and copied packets."""

    frames = 0

    @abstractmethod
    def write_frame(self, rgb: np.ndarray, frame: Frame, alpha: np.ndarray | None = None) -> None: ...

    def write_packet(self, packet: av.Packet) -> None:
        """A packet of a copied stream (audio, subtitles, data); sinks that hold none ignore it."""

    @abstractmethod
    def finish(self) -> None:
        """Complete the output and move it into place."""

    @abstractmethod
    def abort(self) -> None:
        """Remove everything written so far."""

    def duration(self, rate) -> float:
        """Seconds of video written."""
        return self.frames / float(rate) if rate else 0.0


class VideoSink(Sink):
    def __init__(self, target: Path, source: VideoSource | FolderSource, opts: EncodeOptions, width: int, height: int,
                 warn: Warn, copy: bool = True):
        self.target = target
        self.copy = copy  # the source's other streams, metadata and chapters (not for a segment's own file)
        self.tmp = target.with_name(f".{target.stem}.vsr-tmp-{os.getpid()}{target.suffix}")
        self.warn = warn
        ext = target.suffix.lower()
        alpha = bool(source.info.extras.get("alpha"))
        codec = opts.codec or default_codec(ext, source.info.hdr is not None, alpha, source.info.codec)
        check_encoder(target, codec)
        info = source.info
        pix_fmt = opts.pix_fmt or choose_pix_fmt(codec, info.pix_fmt, info.bits, alpha)
        try:
            fmt = av.VideoFormat(pix_fmt, 64, 64)  # a size, so component sizes show the subsampling
        except ValueError:
            raise VsrError(f"unknown pixel format {pix_fmt!r}") from None
        self.alpha = has_alpha(fmt)
        if alpha and not self.alpha:
            warn(f"the input has alpha; {codec} ({pix_fmt}) does not keep it: alpha dropped (write .mov for ProRes "
                 "4444, .mkv for FFV1, .webm for VP9, or a folder of PNGs, to keep it)")
        # chroma subsampling needs even sizes: pad by one pixel rather than fail
        self.pad_w = 1 if _subsampled(fmt, "w") and width % 2 else 0
        self.pad_h = 1 if _subsampled(fmt, "h") and height % 2 else 0
        if self.pad_w or self.pad_h:
            warn(f"{pix_fmt} needs even dimensions: output padded from {width}×{height} to "
                 f"{width + self.pad_w}×{height + self.pad_h} (repeating the last column/row)")
        self.colour = info.colour or Colour(1 if height + self.pad_h >= 720 else 6, 1, 1, 1, info.bits)
        self.pix_fmt = pix_fmt
        self.bits16 = info.bits > 8
        self.threads = opts.convert_threads
        try:
            copied = copy and isinstance(source, VideoSource)
            self.out = av.open(str(self.tmp), "w", format=_format_for(target) or target.suffix.lstrip(".") or None,
                               options=muxer_options(target, source.container) if copied else {})
        except (av.error.FFmpegError, ValueError) as e:
            raise VsrError(f"cannot create {target}: {e}") from None
        try:
            self._setup(source, codec, opts, width + self.pad_w, height + self.pad_h)
        except BaseException:
            self.abort()
            raise
        self.last_pts: int | None = None
        self.frames = 0
        self.written: list[int] = []  # each frame's own timestamp, as it came (a segment's record for the join)
        self.last_end = 0

    def _setup(self, source, codec: str, opts: EncodeOptions, width: int, height: int) -> None:
        out, info = self.out, source.info
        v = out.add_stream(codec, rate=info.rate)
        v.width, v.height, v.pix_fmt = width, height, self.pix_fmt
        v.time_base = info.time_base
        # the frames' timestamps are counted in this (the muxer may change the stream's)
        self.time_base = 1 / info.rate if codec in QSCALE_CODECS and info.rate else info.time_base
        v.codec_context.time_base = self.time_base
        v.thread_type = "AUTO"
        if info.sar:  # both axes grow alike: the pixels keep their shape (a 16:9 DVD stays 16:9)
            v.codec_context.sample_aspect_ratio = info.sar
        if opts.threads:
            v.codec_context.thread_count = opts.threads
        if self.colour is not None and not av.VideoFormat(self.pix_fmt).is_rgb:
            tag_encoder(v.codec_context, self.colour)
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
        if info.hdr is not None:  # HDR10 metadata into the bitstream, where the encoder can carry it
            hdr = info.hdr.encoder_options(codec)
            if hdr is None:
                self.warn(f"the input's HDR10 metadata (mastering display, light level) is not written: {codec} "
                          "cannot carry it (libx265 or libsvtav1 can)")
            else:
                options.update({k: ":".join(filter(None, [options.get(k), v])) for k, v in hdr.items()})
        v.options = options
        try:  # now, not at the first frame: settings the encoder refuses are an error before any work
            v.codec_context.open()
        except (av.error.FFmpegError, ValueError) as e:
            said = ", ".join(f"{k} {x}" for k, x in options.items())
            raise VsrError(f"{codec} cannot encode {width}×{height} {self.pix_fmt} at {float(info.rate):g} fps"
                           + (f" ({said})" if said else "") + f": {getattr(e, 'strerror', None) or e}") from None
        self.video = v
        self.captions = codec in CAPTION_CODECS
        self.captions_lost = False
        self.map: dict[int, object] = {}
        if isinstance(source, VideoSource) and self.copy:
            self.map = copy_extras(out, source.container, source.stream, v, self.target, self.warn, info.rotation)
        try:  # the header too (MXF takes only broadcast frame rates)
            out.start_encoding()
        except (av.error.FFmpegError, ValueError) as e:
            raise VsrError(f"cannot write {codec} at {width}×{height}, {float(info.rate):g} fps into a "
                           f"{self.target.suffix} file: {getattr(e, 'strerror', None) or e}") from None

    def write_packet(self, packet: av.Packet) -> None:
        if packet.stream.index not in self.map or packet.dts is None and not packet.size:
            return
        try:
            mux_copy(self.out, self.map, packet)
        except av.error.FFmpegError as e:
            self.warn(f"a packet of stream {packet.stream.index} could not be written ({e.strerror})")

    def write_frame(self, rgb: np.ndarray, frame: Frame, alpha: np.ndarray | None = None) -> None:
        if self.alpha:  # an opaque plane where a frame has none
            a = alpha if alpha is not None else np.full(rgb.shape[:2], np.iinfo(rgb.dtype).max, rgb.dtype)
            rgb = np.dstack([rgb, a])  # (a frame's alpha has its colour's depth: one decode gives both)
        if self.pad_w or self.pad_h:
            rgb = np.pad(rgb, ((0, self.pad_h), (0, self.pad_w), (0, 0)), mode="edge")
        if frame.carrier is not None and not self.captions and not self.captions_lost:
            self.captions_lost = True
            self.warn(f"the input's closed captions (EIA-608/708, inside its video stream) are not written: "
                      f"{self.video.codec_context.name} cannot carry them (libx264, libx265 and mpeg2video can)")
        vf = from_rgb(rgb, self.colour, self.pix_fmt, self.threads, frame.carrier if self.captions else None)
        self.written.append(frame.pts)
        tb = self.time_base
        pts, duration = round(frame.pts * frame.time_base / tb), round((frame.duration or 0) * frame.time_base / tb)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # the encoder needs strictly increasing timestamps
        self.last_pts = pts
        vf.pts, vf.time_base = pts, tb
        if duration:
            vf.duration = duration
        self.last_end = pts + duration
        for p in self.video.encode(vf):
            self.out.mux(p)
        self.frames += 1

    def finish(self) -> None:
        try:
            for p in self.video.encode(None):
                self.out.mux(p)
            flush_converted(self.out, self.map)
            self.out.close()
        except av.error.FFmpegError as e:
            self.abort()
            raise VsrError(f"encoding failed while finishing {self.target}: {e}") from None
        os.replace(self.tmp, self.target)

    def duration(self, rate) -> float:
        return float(self.last_end * self.time_base) if self.frames else 0.0

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - we are already failing; the temp file goes anyway
            pass
        self.tmp.unlink(missing_ok=True)


def copy_extras(out, container, video_in, video_out, target: Path, warn: Warn, rotation: int = 0) -> dict[int, object]:
    """Add the source's other streams (audio, subtitles, data, attachments) to ``out`` as copies, with the container's
    metadata and chapters and the video's language, title and rotation; returns source stream index → output stream.
    A stream the output container can't hold is left out with a warning."""
    supported = out.supported_codecs
    has_chapters = bool(container.chapters()) if hasattr(container, "chapters") else False
    mapping: dict[int, object] = {}
    for s in container.streams:
        if s.index == video_in.index:
            continue
        ctx = s.codec_context
        name = ctx.name if ctx is not None else None
        if s.type == "data" and name is None and has_chapters:
            continue  # MP4's chapter track: chapters are copied as chapters
        if s.type == "data" and name is None and "timecode" in s.metadata:
            continue  # QuickTime's timecode track: the muxer makes a new one from the video's timecode tag
        if s.type == "data" and name is None:  # a format FFmpeg has no codec for: GoPro telemetry (gpmd), …
            if _takes(out.format.name, s):
                mapping[s.index] = out.add_stream_from_template(s)  # (its codec tag and metadata with it)
            else:
                what = s.metadata.get("handler_name") or "unknown format"
                warn(f"data stream {s.index} ({what}) left out: {target.suffix} files cannot hold it")
            continue
        if s.type == "attachment":
            try:
                out.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError, TypeError) as e:
                warn(f"attachment stream {s.index} not copied: {target.suffix} cannot hold it ({e})")
            continue
        if s.type == "subtitle" and name not in supported and (text := TextSubtitles.make(out, s)) is not None:
            mapping[s.index] = text  # SubRip/ASS into MP4 as mov_text, into WebM as WebVTT: the same cues
            continue
        if s.type == "audio" and name is not None and name not in supported:
            try:
                audio = AudioTranscode.make(out, s)
            except (av.error.FFmpegError, ValueError) as e:
                warn(f"audio stream {s.index} ({name}) left out: {target.suffix} files cannot hold it, and re-encoding "
                     f"it failed ({e})")
                continue
            if audio is not None:
                mapping[s.index] = audio
                warn(f"audio stream {s.index} ({name}) re-encoded as {AUDIO_ENCODER[out.format.name][1]}: "
                     f"{target.suffix} files cannot hold {name} (.mkv holds it as it is)")
                continue
        if name is None or name not in supported:
            what = f"{s.type} stream {s.index} ({name or 'unknown codec'})"
            hint = "" if target.suffix.lower() == ".mkv" else " (try .mkv)"
            warn(f"{what} left out: {target.suffix} files cannot hold it{hint}")
            continue
        try:
            o = out.add_stream_from_template(s, opaque=True)
        except (av.error.FFmpegError, ValueError) as e:
            warn(f"{s.type} stream {s.index} ({name}) left out: {e}")
            continue
        o.metadata.update(s.metadata)
        try:
            o.disposition = s.disposition
        except (AttributeError, TypeError):
            pass
        mapping[s.index] = o
    out.metadata.update({k: v for k, v in container.metadata.items() if k != "encoder"})
    video_out.metadata.update({k: v for k, v in video_in.metadata.items() if k in ("language", "title", "handler_name")})
    timecode = video_in.metadata.get("timecode") or next(
        (s.metadata["timecode"] for s in container.streams if "timecode" in s.metadata), None)
    if timecode:  # the first frame's SMPTE timecode (tape and broadcast sources): MOV/MP4 write a track, MKV a tag
        video_out.metadata["timecode"] = timecode
    try:
        chapters = container.chapters()
        if chapters:
            out.set_chapters(chapters)
    except (AttributeError, av.error.FFmpegError):
        pass
    if rotation:
        video_out.set_display_rotation(rotation)
    return mapping


def _subsampled(fmt: av.VideoFormat, axis: str) -> bool:
    if fmt.is_rgb or len(fmt.components) < 3:
        return False
    luma, chroma = fmt.components[0], fmt.components[1]
    return (chroma.width < luma.width) if axis == "w" else (chroma.height < luma.height)


def check_encoder(target: Path, codec: str) -> None:
    """Refuse, before any work, an encoder that does not exist here or whose video the output's container cannot
    hold (FFV1 in .mov, ProRes in .mp4)."""
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError or ValueError
        raise VsrError(f"unknown or unavailable encoder {codec!r}") from None
    try:
        held = holds(_format_for(target) or target.suffix.lstrip("."), codec)
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


# text subtitle formats FFmpeg decodes to text (ASS events) and can encode again
TEXT_SUBTITLES = ("subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text")


class Converted:
    """A source stream the output holds only re-encoded: its packets go through ``convert``, then ``flush``."""

    stream: object

    def convert(self, packet: av.Packet) -> list[av.Packet]:
        raise NotImplementedError

    def flush(self) -> list[av.Packet]:
        return []


class TextSubtitles(Converted):
    """A text subtitle stream re-encoded into the text format the output holds (SubRip or ASS from Matroska into
    MP4's mov_text, WebM's WebVTT, …): each cue decoded and encoded again with its timestamps; styling beyond what
    the target format has is lost, the text and timing are not."""

    def __init__(self, out, source, encoder: str):
        self.decoder = source.codec_context
        self.decoder.open()  # (its ASS header, which the encoder needs, is made on opening)
        self.stream = out.add_stream(encoder)
        self.stream.codec_context.subtitle_header = self.decoder.subtitle_header
        self.stream.time_base = source.time_base
        self.stream.metadata.update(source.metadata)
        self.stream.disposition = source.disposition  # (default, forced)

    @classmethod
    def make(cls, out, source) -> TextSubtitles | None:
        name = source.codec_context.name if source.codec_context is not None else None
        if name not in TEXT_SUBTITLES:
            return None  # bitmap subtitles (DVD, Blu-ray) would need OCR
        order = ("ass", "subrip", "mov_text", "webvtt") if name in ("ass", "ssa") else ("subrip", "mov_text", "webvtt")
        encoder = next((e for e in order if e in out.supported_codecs), None)
        return cls(out, source, encoder) if encoder else None

    def convert(self, packet: av.Packet) -> list[av.Packet]:
        cue = self.decoder.decode2(packet) if packet.size else None
        if cue is None:
            return []
        q = self.stream.codec_context.encode_subtitle(cue)
        q.pts, q.dts, q.duration, q.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
        q.stream = self.stream
        return [q]


# what an output holds where it cannot hold the source's audio as it is (WebM: Opus or Vorbis only)
AUDIO_ENCODER = {"webm": ("libopus", "Opus"), "mp4": ("aac", "AAC"), "mov": ("aac", "AAC"), "mpegts": ("aac", "AAC")}


class AudioTranscode(Converted):
    """An audio stream re-encoded for an output that cannot hold it as it is (AAC into WebM as Opus), at 64 kb/s a
    channel, its timestamps kept."""

    def __init__(self, out, source, encoder: str):
        self.decoder = source.codec_context
        rates = av.codec.Codec(encoder, "w").audio_rates
        rate = source.rate if not rates or source.rate in rates else 48000
        self.stream = out.add_stream(encoder, rate=rate)
        self.stream.layout = source.layout.name
        self.stream.bit_rate = 64000 * source.layout.nb_channels
        self.stream.metadata.update(source.metadata)
        self.stream.disposition = source.disposition
        fmt = [f.name for f in self.stream.codec_context.codec.audio_formats]
        self.resampler = av.AudioResampler(format="flt" if "flt" in fmt else fmt[0], layout=source.layout.name,
                                           rate=rate)

    @classmethod
    def make(cls, out, source) -> AudioTranscode | None:
        encoder = AUDIO_ENCODER.get(out.format.name, (None,))[0]
        return cls(out, source, encoder) if encoder and encoder in out.supported_codecs else None

    def _encode(self, frames) -> list[av.Packet]:
        return [q for f in frames for r in self.resampler.resample(f) for q in self.stream.encode(r)]

    def convert(self, packet: av.Packet) -> list[av.Packet]:
        return self._encode(self.decoder.decode(packet)) if packet.size else []

    def flush(self) -> list[av.Packet]:
        return self._encode([*self.decoder.decode(None), None]) + list(self.stream.encode(None))


def mux_copy(out, mapping: dict, packet: av.Packet) -> None:
    """A copied stream's packet into ``out``: as it is, or converted (vsr.video.sink.Converted)."""
    o = mapping[packet.stream.index]
    if isinstance(o, Converted):
        for q in o.convert(packet):
            out.mux(q)
    else:
        packet.stream = o
        out.mux(packet)


def flush_converted(out, mapping: dict) -> None:
    for o in mapping.values():
        if isinstance(o, Converted):
            for q in o.flush():
                out.mux(q)


def _takes(muxer: str, stream) -> bool:
    """Whether ``muxer`` writes a copy of ``stream`` (tried on an empty in-memory file: MP4 and MOV take GoPro's
    telemetry track, Matroska refuses it only when writing its header)."""
    with av.open(io.BytesIO(), "w", format=muxer) as out:
        try:
            out.add_stream_from_template(stream)
            out.start_encoding()
            return True
        except (av.error.FFmpegError, ValueError):
            return False


def muxer_options(target: Path, container) -> dict[str, str]:
    """Phones tag their clips with reverse-DNS keys (com.apple.quicktime.make, ….location.ISO6709); MOV and MP4
    keep such keys only when told to write QuickTime metadata keys."""
    quicktime = (_format_for(target) or "") in ("mov", "mp4")
    return {"movflags": "use_metadata_tags"} if quicktime and any("." in k for k in container.metadata) else {}


def _format_for(target: Path) -> str | None:
    c = CONTAINERS.get(target.suffix.lower())
    return c.muxer if c else None


class FolderSink(Sink):
    """Upscaled frames as images in a folder (written to a temporary folder, renamed at the end)."""

    def __init__(self, target: Path, source, warn: Warn, overwrite: bool):
        self.target = target
        self.tmp = target.with_name(f".{target.name}.vsr-tmp-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.overwrite = overwrite
        self.icc = source.info.extras.get("icc")
        self.names_from_source = isinstance(source, FolderSource)
        self.frames = 0

    def write_frame(self, rgb: np.ndarray, frame: Frame, alpha: np.ndarray | None = None) -> None:
        from vsr.picture import Picture, write_picture

        name = frame.name if self.names_from_source and frame.name else f"frame_{self.frames + 1:06d}"
        write_picture(self.tmp / f"{name}.png", Picture(color=rgb, alpha=alpha, icc=self.icc))
        self.frames += 1

    def finish(self) -> None:
        if self.target.exists():
            if not self.overwrite:
                raise VsrError(f"{self.target} exists; pass --overwrite to replace it")
            shutil.rmtree(self.target)
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
