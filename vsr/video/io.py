"""Where frames come from and go to: video files (PyAV) and image-sequence folders.

A source yields, in decode order, ``Frame`` items (RGB pixels with their
timestamp) and ``Packet`` items (streams copied untouched: audio, subtitles,
data). A sink takes upscaled frames and the copied packets and writes them to
a temporary file or folder that ``finish`` renames into place; ``abort``
removes it, so no half-written output is ever left at the target path.
"""

from __future__ import annotations

import fractions
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vsr.errors import VsrError
from vsr.files import IMAGE_EXTS, natural_key
from vsr.video.colour import Colour, colour_of, from_rgb, tag_encoder, to_rgb

Warn = Callable[[str], None]


@dataclass
class Frame:
    rgb: np.ndarray  # H×W×3 uint8/uint16
    pts: int
    time_base: fractions.Fraction
    duration: int = 0
    alpha: np.ndarray | None = None
    name: str = ""  # for image sequences


@dataclass
class Packet:
    packet: av.Packet


@dataclass
class SourceInfo:
    width: int
    height: int
    bits: int
    colour: Colour | None
    time_base: fractions.Fraction
    rate: fractions.Fraction
    total: int | None  # frame count if known
    total_exact: bool
    pix_fmt: str = "rgb24"
    rotation: int = 0
    description: str = ""
    decode_errors: int = 0
    truncated: bool = False
    extras: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# video files


def _open_input(path: Path):
    if not path.exists():
        raise VsrError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise VsrError(f"{path}: empty file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise VsrError(f"{path}: not a video FFmpeg can read ({e.strerror or type(e).__name__})") from None


def _is_cover_art(stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


class VideoSource:
    def __init__(self, path: Path, stream: int | None = None, threads: int = 0):
        self.path = path
        self.container = _open_input(path)
        streams = self.container.streams
        if stream is not None:
            if stream < 0 or stream >= len(streams) or streams[stream].type != "video":
                videos = ", ".join(str(s.index) for s in streams.video) or "none"
                self.close()  # (nothing from `streams` is touched after this: the container is gone)
                raise VsrError(f"{path}: stream {stream} is not a video stream (video streams: {videos})")
            self.stream = streams[stream]
        else:
            candidates = [s for s in streams.video if not _is_cover_art(s)]
            if not candidates:
                kinds = {s.type for s in streams}
                has_video = bool(streams.video)
                self.close()
                if has_video:
                    raise VsrError(f"{path}: its only video stream is cover art (an attached picture)")
                if "audio" in kinds:
                    raise VsrError(f"{path}: no video stream (audio only)")
                raise VsrError(f"{path}: no video stream")
            self.stream = candidates[0]
        self.stream.thread_type = "AUTO"
        if threads:
            self.stream.codec_context.thread_count = threads
        self.decode_errors = 0
        self.truncated = False
        self._first: av.VideoFrame | None = None
        self._iter = self._frames()
        try:
            self._first = next(self._iter)
        except StopIteration:
            self.close()
            raise VsrError(f"{path}: no decodable video frames") from None
        f = self._first
        self.colour = colour_of(f)
        rate = self.stream.average_rate or self.stream.guessed_rate or fractions.Fraction(25)
        tb = self.stream.time_base or fractions.Fraction(1, 1000)
        total = self.stream.frames or None
        exact = bool(total)
        if not total and self.stream.duration and rate:
            total = int(round(float(self.stream.duration * tb * rate)))
        elif not total and self.container.duration and rate:
            total = int(round(self.container.duration / 1e6 * float(rate)))
        self.info = SourceInfo(
            width=f.width, height=f.height, bits=self.colour.bits, colour=self.colour, time_base=tb, rate=rate,
            total=total, total_exact=exact, pix_fmt=f.format.name, rotation=int(f.rotation or 0),
            description=f"{self.stream.codec_context.name} {f.width}×{f.height} {f.format.name}, {self.colour.describe()}",
        )

    def _frames(self) -> Iterator[av.VideoFrame]:
        """Decoded frames of the chosen stream; other streams' packets are queued for copying."""
        self.pending: list[av.Packet] = []
        demux = self.container.demux()
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError:
                self.truncated = True  # the container ends early or is damaged past recovery
                break
            if packet.stream is self.stream:
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    self.decode_errors += 1
                    continue
                yield from frames
            elif packet.size or packet.dts is not None:
                self.pending.append(packet)
        try:
            yield from self.stream.codec_context.decode(None)  # flush
        except av.error.FFmpegError:
            self.decode_errors += 1

    def items(self) -> Iterator[Frame | Packet]:
        index = 0
        tb = self.info.time_base
        step = max(1, int(round(1 / (self.info.rate * tb)))) if self.info.rate else 1
        last_pts = None
        frames = self._frames_with_first()
        for f in frames:
            for p in self.pending:
                yield Packet(p)
            self.pending.clear()
            if (f.width, f.height) != (self.info.width, self.info.height):
                raise VsrError(f"{self.path}: the frame size changes mid-stream ({self.info.width}×{self.info.height} → "
                               f"{f.width}×{f.height}); this is not supported")
            pts = f.pts if f.pts is not None else (last_pts + step if last_pts is not None else 0)
            last_pts = pts
            yield Frame(to_rgb(f, self.colour), pts, tb, int(f.duration or 0))
            index += 1
        for p in self.pending:
            yield Packet(p)
        self.pending.clear()
        if self.info.total and index < 0.9 * self.info.total - 1:
            self.truncated = True  # the demuxer stopped well before the length the header promised
        self.info.decode_errors = self.decode_errors
        self.info.truncated = self.truncated

    def _frames_with_first(self):
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._iter

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a damaged input must not hide the real error
            pass


# ---------------------------------------------------------------------------
# image sequences


class FolderSource:
    """A folder of images (naturally sorted) as a video at ``fps``."""

    def __init__(self, path: Path, fps: float):
        from vsr.images import read_picture

        self.files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                             and not p.name.startswith(".")), key=natural_key)
        if not self.files:
            raise VsrError(f"{path}: no images in the folder")
        self.read = read_picture
        first = read_picture(self.files[0])
        self.rate = fractions.Fraction(fps).limit_denominator(1001)
        tb = 1 / self.rate
        h, w = first.color.shape[:2]
        self.info = SourceInfo(width=w, height=h, bits=first.bits, colour=None, time_base=tb, rate=self.rate,
                               total=len(self.files), total_exact=True,
                               description=f"{len(self.files)} images {w}×{h}, {first.bits}-bit",
                               extras={"alpha": first.alpha is not None, "icc": first.icc})
        self.decode_errors = 0

    def items(self) -> Iterator[Frame]:
        w, h = self.info.width, self.info.height
        for i, p in enumerate(self.files):
            pic = self.read(p)
            if pic.size != (w, h):
                raise VsrError(f"{p}: {pic.size[0]}×{pic.size[1]} differs from the first image ({w}×{h})")
            rgb = pic.color if not pic.gray else np.repeat(pic.color, 3, axis=2)
            yield Frame(rgb, i, self.info.time_base, 1, alpha=pic.alpha, name=p.stem)

    def close(self) -> None:
        pass


def open_source(path: Path, *, stream: int | None, fps: float, threads: int = 0):
    return FolderSource(path, fps) if path.is_dir() else VideoSource(path, stream, threads)


# ---------------------------------------------------------------------------
# sinks

DEFAULT_CODECS = {".webm": "libvpx-vp9", ".mkv": "libx264", ".mp4": "libx264", ".mov": "libx264",
                  ".m4v": "libx264", ".avi": "libx264", ".ts": "libx264", ".mxf": "mpeg2video"}
DEFAULT_CRF = {"libx264": 17, "libx265": 19, "libsvtav1": 24, "libvpx-vp9": 24}
DEFAULT_PRESET = {"libx264": "veryfast", "libx265": "fast", "libsvtav1": "8"}


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


def choose_pix_fmt(codec: str, source_pix_fmt: str, bits: int) -> str:
    """Keep the source's chroma layout and bit depth where the encoder allows; else the nearest it has."""
    supported = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    chroma, _ = _chroma_and_bits(source_pix_fmt) if source_pix_fmt not in ("rgb24", "rgb48le") else ("444", bits)
    depth = "" if bits <= 8 else ("10le" if bits <= 10 else "12le")
    wanted = [f"yuv{chroma}p{depth}", f"yuv420p{depth}", f"yuv{chroma}p", "yuv420p"]
    for name in wanted:
        if name in supported:
            return name
    return supported[0] if supported else "yuv420p"


class VideoSink:
    def __init__(self, target: Path, source: VideoSource | FolderSource, opts: EncodeOptions, width: int, height: int,
                 warn: Warn):
        self.target = target
        self.tmp = target.with_name(f".{target.stem}.vsr-tmp-{os.getpid()}{target.suffix}")
        self.warn = warn
        ext = target.suffix.lower()
        codec = opts.codec or DEFAULT_CODECS.get(ext, "libx264")
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError or ValueError
            raise VsrError(f"unknown or unavailable encoder {codec!r}") from None
        info = source.info
        pix_fmt = opts.pix_fmt or choose_pix_fmt(codec, info.pix_fmt, info.bits)
        try:
            fmt = av.VideoFormat(pix_fmt, 64, 64)  # a size, so component sizes show the subsampling
        except ValueError:
            raise VsrError(f"unknown pixel format {pix_fmt!r}") from None
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
            self.out = av.open(str(self.tmp), "w", format=_format_for(target))
        except (av.error.FFmpegError, ValueError) as e:
            raise VsrError(f"cannot create {target}: {e}") from None
        try:
            self._setup(source, codec, opts, width + self.pad_w, height + self.pad_h)
        except BaseException:
            self.abort()
            raise
        self.last_pts: int | None = None
        self.frames = 0
        self.last_end = 0

    def _setup(self, source, codec: str, opts: EncodeOptions, width: int, height: int) -> None:
        out, info = self.out, source.info
        v = out.add_stream(codec, rate=info.rate)
        v.width, v.height, v.pix_fmt = width, height, self.pix_fmt
        v.time_base = info.time_base
        v.codec_context.time_base = info.time_base
        v.thread_type = "AUTO"
        if opts.threads:
            v.codec_context.thread_count = opts.threads
        if self.colour is not None and not av.VideoFormat(self.pix_fmt).is_rgb:
            tag_encoder(v.codec_context, self.colour)
        options = {}
        crf = opts.crf if opts.crf is not None else DEFAULT_CRF.get(codec)
        if crf is not None and codec not in ("ffv1",):
            options["crf"] = str(crf)
            if codec == "libvpx-vp9":
                options["b"] = "0"
        preset = opts.preset or DEFAULT_PRESET.get(codec)
        if preset is not None and codec in ("libx264", "libx265", "libsvtav1"):
            options["preset"] = preset
        v.options = options
        self.video = v
        self.map: dict[int, object] = {}
        if isinstance(source, VideoSource):
            self._copy_streams(source)
            out.metadata.update({k: v for k, v in source.container.metadata.items() if k != "encoder"})
            src_v = source.stream
            v.metadata.update({k: val for k, val in src_v.metadata.items() if k in ("language", "title", "handler_name")})
            try:
                chapters = source.container.chapters()
                if chapters:
                    out.set_chapters(chapters)
            except (AttributeError, av.error.FFmpegError):
                pass
            if info.rotation:
                v.set_display_rotation(info.rotation)

    def _copy_streams(self, source: VideoSource) -> None:
        out = self.out
        supported = out.supported_codecs
        has_chapters = bool(source.container.chapters()) if hasattr(source.container, "chapters") else False
        for s in source.container.streams:
            if s is source.stream:
                continue
            ctx = s.codec_context
            name = ctx.name if ctx is not None else None
            if s.type == "data" and name is None and has_chapters:
                continue  # MP4's chapter track: chapters are copied as chapters
            if s.type == "attachment":
                try:
                    out.add_stream_from_template(s)
                except (av.error.FFmpegError, ValueError, TypeError) as e:
                    self.warn(f"attachment stream {s.index} not copied: {self.target.suffix} cannot hold it ({e})")
                continue
            if name is None or name not in supported:
                what = f"{s.type} stream {s.index} ({name or 'unknown codec'})"
                hint = "" if self.target.suffix.lower() == ".mkv" else " (try .mkv)"
                self.warn(f"{what} left out: {self.target.suffix} files cannot hold it{hint}")
                continue
            try:
                o = out.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError) as e:
                self.warn(f"{s.type} stream {s.index} ({name}) left out: {e}")
                continue
            o.metadata.update(s.metadata)
            try:
                o.disposition = s.disposition
            except (AttributeError, TypeError):
                pass
            self.map[s.index] = o

    def write_packet(self, packet: av.Packet) -> None:
        o = self.map.get(packet.stream.index)
        if o is None or packet.dts is None and not packet.size:
            return
        packet.stream = o
        try:
            self.out.mux(packet)
        except av.error.FFmpegError as e:
            self.warn(f"a packet of stream {packet.stream.index} could not be written ({e.strerror})")

    def write_frame(self, rgb: np.ndarray, frame: Frame) -> None:
        if self.pad_w or self.pad_h:
            rgb = np.pad(rgb, ((0, self.pad_h), (0, self.pad_w), (0, 0)), mode="edge")
        vf = from_rgb(rgb, self.colour, self.pix_fmt, self.threads)
        pts = frame.pts
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # the encoder needs strictly increasing timestamps
        self.last_pts = pts
        vf.pts, vf.time_base = pts, frame.time_base
        if frame.duration:
            vf.duration = frame.duration
        self.last_end = pts + (frame.duration or 0)
        for p in self.video.encode(vf):
            self.out.mux(p)
        self.frames += 1

    def finish(self) -> None:
        try:
            for p in self.video.encode(None):
                self.out.mux(p)
            self.out.close()
        except av.error.FFmpegError as e:
            self.abort()
            raise VsrError(f"encoding failed while finishing {self.target}: {e}") from None
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - we are already failing; the temp file goes anyway
            pass
        self.tmp.unlink(missing_ok=True)


def _subsampled(fmt: av.VideoFormat, axis: str) -> bool:
    if fmt.is_rgb or len(fmt.components) < 3:
        return False
    luma, chroma = fmt.components[0], fmt.components[1]
    return (chroma.width < luma.width) if axis == "w" else (chroma.height < luma.height)


def _format_for(target: Path) -> str | None:
    return {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".avi": "avi",
            ".ts": "mpegts", ".mxf": "mxf"}.get(target.suffix.lower())


class FolderSink:
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
        self.map: dict = {}

    def write_packet(self, packet) -> None:  # image sequences carry no other streams
        pass

    def write_frame(self, rgb: np.ndarray, frame: Frame, alpha: np.ndarray | None = None) -> None:
        from vsr.images import Picture, write_picture

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
