"""Where upscaled frames go: a video file (PyAV) or a folder of images.

Both sinks take upscaled frames and the copied packets of the other streams and write them to a temporary file
or folder that ``finish`` renames into place; ``abort`` removes it, so no half-written output is ever left at
the target path.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from vsr.errors import VsrError
from vsr.formats import CAPTION_CODECS, QSCALE_CODECS, default_codec, frame_file, muxer_for
from vsr.video.colour import Colour, from_rgb, has_alpha, tag_encoder, to_8bit
from vsr.video.encoder import EncodeOptions, check_encoder, choose_pix_fmt, encoder_options
from vsr.video.source import FolderSource, Frame, VideoSource
from vsr.video.streams import copy_extras, flush_converted, mux_copy, muxer_options

Warn = Callable[[str], None]


class Sink(ABC):
    """A destination for upscaled frames (in display order) and copied packets. ``written``: each frame's own
    timestamp, as it came (a segment's record for the join)."""

    frames = 0
    written: list[int]

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
        self.alpha = has_alpha(fmt) or (pix_fmt == "pal8" and alpha)  # (a GIF's transparency is a palette entry)
        self.palettes = None
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
            self.out = av.open(str(self.tmp), "w", format=muxer_for(target) or target.suffix.lstrip(".") or None,
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
        options = encoder_options(codec, opts, info.hdr, self.warn)
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
        if self.pix_fmt == "pal8":
            self.palettes = self.palettes or Palettes(rgb.shape[1], rgb.shape[0], self.alpha, self.time_base)
            vf = av.VideoFrame.from_ndarray(to_8bit(rgb) if rgb.dtype == np.uint16 else rgb,
                                            format="rgba" if self.alpha else "rgb24")
        else:
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
        for f in self.palettes.frames(vf) if self.palettes else [vf]:
            for p in self.video.encode(f):
                self.out.mux(p)
        self.frames += 1

    def finish(self) -> None:
        try:
            for f in self.palettes.frames(None) if self.palettes else []:
                for p in self.video.encode(f):
                    self.out.mux(p)
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


class Palettes:
    """RGB(A) frames as GIF frames, each with the 256 colours that suit it best (FFmpeg's palettegen and
    paletteuse, as FFmpeg's own GIF recipe): one palette for a whole clip bands colours, a fixed one more so.
    Transparency becomes the palette's transparent entry."""

    def __init__(self, width: int, height: int, alpha: bool, time_base):
        g = self.graph = av.filter.Graph()
        src = g.add_buffer(width=width, height=height, format="rgba" if alpha else "rgb24", time_base=time_base)
        split, sink = g.add("split"), g.add("buffersink")
        gen = g.add("palettegen", f"stats_mode=single:reserve_transparent={int(alpha)}")
        use = g.add("paletteuse", "new=1" + (":alpha_threshold=128" if alpha else ""))
        src.link_to(split)
        split.link_to(gen, 0, 0)
        split.link_to(use, 1, 0)
        gen.link_to(use, 0, 1)
        use.link_to(sink)
        g.configure()

    def frames(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """What the graph gives back for ``frame`` (None: the end)."""
        self.graph.push(frame)
        out = []
        while True:
            try:
                out.append(self.graph.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return out


def _subsampled(fmt: av.VideoFormat, axis: str) -> bool:
    if fmt.is_rgb or len(fmt.components) < 3:
        return False
    luma, chroma = fmt.components[0], fmt.components[1]
    return (chroma.width < luma.width) if axis == "w" else (chroma.height < luma.height)


class FolderSink(Sink):
    """Upscaled frames as images in a folder: written one by one into the work folder beside it (vsr.journal), which
    is renamed to the folder at the end and kept when a run stops, so the next continues (``start``: frames it
    holds)."""

    def __init__(self, target: Path, source, warn: Warn, overwrite: bool, start: int = 0):
        from vsr.journal import work_dir

        self.target = target
        self.tmp = work_dir(target)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.overwrite = overwrite
        self.icc = source.info.extras.get("icc")
        self.names_from_source = isinstance(source, FolderSource)
        self.frames = start
        self.written = []

    def write_frame(self, rgb: np.ndarray, frame: Frame, alpha: np.ndarray | None = None) -> None:
        from vsr.picture import Picture, write_picture

        name = frame.name if self.names_from_source and frame.name else frame_file(self.frames + 1)
        write_picture(self.tmp / name, Picture(color=rgb, alpha=alpha, icc=self.icc))
        self.frames += 1
        self.written.append(frame.pts)

    def finish(self) -> None:
        if self.target.exists():
            if not self.overwrite:
                raise VsrError(f"{self.target} exists; pass --overwrite to replace it")
            shutil.rmtree(self.target)
        (self.tmp / "journal.json").unlink(missing_ok=True)
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        pass  # the frames written stay in the work folder, for the next run
