"""Where frames come from: video files (PyAV) and image-sequence folders.

A source yields, in decode order, ``Frame`` items (RGB pixels converted with the input's colour tags, with their
timestamp) and ``Packet`` items (streams copied untouched: audio, subtitles, data). ``vsr upscale``, ``vsr eval``
and training all decode through here, so a model is trained and scored on the pixels it meets in use.
"""

from __future__ import annotations

import bisect
import fractions
import functools
import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vsr.errors import VsrError
from vsr.formats import frame_files, list_images
from vsr.video.colour import HDR, Colour, colour_of, has_alpha, hdr_of, to_rgb, to_rgba
from vsr.video.probe import MapBuilder, PacketInfo, StreamMap

DEINTERLACE = ("auto", "all", "off", "interlaced")


@dataclass
class Frame:
    rgb: np.ndarray  # H×W×3 uint8/uint16
    pts: int
    time_base: fractions.Fraction
    duration: int = 0
    alpha: np.ndarray | None = None
    name: str = ""  # an image sequence's: the file name a folder of frames out gives it (vsr.formats.frame_files)
    carrier: av.VideoFrame | None = None  # a 16×16 copy of the decoded frame, for its closed captions (side data)


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
    hdr: HDR | None = None  # HDR10 mastering display / content light level, where the source carries them
    sar: fractions.Fraction | None = None  # pixel (sample) aspect ratio where not square: DVD, DV, HDV are anamorphic
    codec: str = ""  # the video stream's decoder ("prores", "h264", …)


class NoFrames(VsrError):
    """Nothing in the input (or in a segment's packets) decodes."""


# ---------------------------------------------------------------------------
# video files


def _open_input(path):
    if isinstance(path, io.BytesIO):  # a segment's packets, remuxed in memory (vsr.segments)
        return av.open(path, metadata_errors="ignore")
    if not path.exists():
        raise VsrError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise VsrError(f"{path}: empty file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise VsrError(f"{path}: not a video FFmpeg can read ({e.strerror or type(e).__name__})") from None


def seek_seconds(container, stream, seconds: float) -> None:
    """Put ``container`` at ``stream``'s keyframe at or before ``seconds`` from the stream's start."""
    tb = stream.time_base or fractions.Fraction(1, 1000)
    target = (stream.start_time or 0) + fractions.Fraction(seconds).limit_denominator(1_000_000) / tb
    container.seek(int(target), stream=stream, backward=True, any_frame=False)


def _is_cover_art(stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


# VP8/VP9 keep alpha in a second bitstream beside the colour (Matroska block additions, flagged AlphaMode): FFmpeg's
# own decoders ignore it, libvpx's decode it
_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def alpha_tag(stream) -> dict[str, str]:
    """The stream's WebM AlphaMode flag, for a copy of it to carry ({} where it has none; the key's case varies by
    muxer): a VP8/VP9 stream's alpha is decoded only where it is flagged."""
    on = any(k.lower() == "alpha_mode" and str(v).strip() == "1" for k, v in stream.metadata.items())
    return {"alpha_mode": "1"} if on else {}


def _sar(stream) -> fractions.Fraction | None:
    """The container's pixel aspect ratio, else the bitstream's (as FFmpeg guesses it); None for square pixels."""
    for sar in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if sar and sar > 0:
            return None if sar == 1 else fractions.Fraction(sar)
    return None


def decoder_for(stream):
    """The stream's own decoder, or libvpx's for VP8/VP9 flagged as carrying alpha."""
    name = _ALPHA_DECODERS.get(stream.codec_context.name)
    if name and alpha_tag(stream):
        try:
            return av.CodecContext.create(name, "r")
        except (av.error.FFmpegError, ValueError):  # an FFmpeg built without libvpx: colour only, as before
            pass
    return stream.codec_context


def _has_alpha(first: av.VideoFrame, stream) -> bool:
    """Whether the video carries alpha: its pixel format has an alpha plane. FFmpeg decodes every GIF to BGRA, so a
    GIF has alpha only where its first frame is not opaque (an opaque one would otherwise be kept lossless, with an
    alpha plane, in a .mkv or .mov, and be warned about in a .mp4)."""
    if not has_alpha(first.format):
        return False
    return stream.codec_context.name != "gif" or bool((first.to_ndarray(format="rgba")[..., 3] < 255).any())


class VideoSource:
    def __init__(self, path: Path | io.BytesIO, stream: int | None = None, threads: int = 0,
                 colour: Colour | None = None, hdr: HDR | None = None,
                 timestamps: tuple[fractions.Fraction, Sequence[int]] | None = None, deinterlace: str = "auto",
                 rate: fractions.Fraction | None = None, size: tuple[int, int] | None = None,
                 warn: Callable[[str], None] | None = None, scan: bool = False, alpha: bool | None = None):
        """``colour``, ``hdr``, ``rate``, ``size`` (width, height) and ``alpha`` override what the first frame and
        the stream say (a segment is read as its whole video was). Frames of another size (the size changes
        mid-stream) are rescaled to it, which ``warn`` is told once.
        ``deinterlace``: "auto" runs FFmpeg's bwdif on the frames flagged interlaced when the first one is, "all" on
        every frame (for interlaced video flagged progressive), "off" never; "interlaced" is "auto" decided (as a
        segment is, by its whole video). One frame out per frame in, timestamps kept.
        ``timestamps`` (time base, sorted pts) are the packets' exact timestamps in the file they came from: a
        segment's packets are remuxed into Matroska, whose millisecond clock rounds them (and may shift them all),
        and each decoded frame gets back the original timestamp nearest its own, once the earliest packets of both
        are lined up (frames are more than a millisecond apart).
        ``scan``: record the stream's packets, for :meth:`packet_map` (the probe's one pass over the file)."""
        self.path = path
        name = "a segment" if isinstance(path, io.BytesIO) else path
        self.warn, self._resized = warn, False
        self.timestamps = timestamps
        if timestamps:
            with av.open(io.BytesIO(path.getvalue())) as c:
                v = c.streams.video[0]
                first = min(p.pts for p in c.demux(v) if p.size and p.pts is not None)
            self._shift = first * v.time_base - timestamps[1][0] * timestamps[0]  # seconds the remux added
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
        self.decoder = decoder_for(self.stream)
        if threads:
            self.decoder.thread_count = threads
        self.decode_errors = 0
        self.truncated = False
        self.map = MapBuilder() if scan else None
        self._first: av.VideoFrame | None = None
        self._iter = self._frames()
        try:
            self._first = next(self._iter)
        except StopIteration:
            self.close()
            raise NoFrames(f"{name}: no decodable video frames") from None
        f = self._first
        if deinterlace not in DEINTERLACE:
            self.close()
            raise VsrError(f"--deinterlace {deinterlace!r}: use auto, all or off")
        auto = "interlaced" if f.interlaced_frame else "off"
        self.deinterlace = auto if deinterlace == "auto" else deinterlace
        self.colour = colour or colour_of(f)
        rate = rate or self.stream.average_rate or self.stream.guessed_rate or fractions.Fraction(25)
        tb = self.stream.time_base or fractions.Fraction(1, 1000)
        if timestamps:
            tb = timestamps[0]
        total = _frame_total(self.container, self.stream, rate, tb)
        exact = bool(self.stream.frames)
        width, height = size or (f.width, f.height)
        self.info = SourceInfo(
            width=width, height=height, bits=self.colour.bits, colour=self.colour, time_base=tb, rate=rate,
            total=total, total_exact=exact, pix_fmt=f.format.name, rotation=int(f.rotation or 0),
            description=f"{self.stream.codec_context.name} {width}×{height} {f.format.name}, {self.colour.describe()}"
            + ("" if self.deinterlace == "off" else ", interlaced: deinterlaced (bwdif)"),
            hdr=hdr or hdr_of(f), extras={"alpha": _has_alpha(f, self.stream) if alpha is None else alpha},
            sar=_sar(self.stream),
            codec=self.stream.codec_context.name,
        )

    def seek(self, seconds: float) -> None:
        """Start :meth:`items` at the keyframe at or before ``seconds`` from the stream's start (a few frames out of
        a long video, without decoding what comes before). Colour, size and deinterlacing stay as the first frame
        decided them."""
        seek_seconds(self.container, self.stream, seconds)
        self.decoder.flush_buffers()
        self._first = None
        self._iter = self._frames()

    def _frames(self) -> Iterator[av.VideoFrame]:
        """Decoded frames of the chosen stream; other streams' packets are queued for copying."""
        self.pending: list[av.Packet] = []
        demux = self._demux = self.container.demux()
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError:
                self.truncated = True  # the container ends early or is damaged past recovery
                break
            if packet.stream is self.stream:
                if self.map is not None:
                    self.map.add(packet)
                try:
                    frames = self.decoder.decode(packet)
                except av.error.FFmpegError:
                    self.decode_errors += 1
                    continue
                yield from frames
            elif packet.size or packet.dts is not None:
                self.pending.append(packet)
        try:
            yield from self.decoder.decode(None)  # flush
        except av.error.FFmpegError:
            self.decode_errors += 1

    def items(self) -> Iterator[Frame | Packet]:
        index = 0
        tb = self.info.time_base
        step = max(1, int(round(1 / (self.info.rate * tb)))) if self.info.rate else 1
        last_pts = None
        alpha = self.info.extras["alpha"]
        frames = self._same_size(self._frames_with_first())
        if self.deinterlace != "off":
            frames = self._bwdif(frames)
        for f in frames:
            for p in self.pending:
                yield Packet(p)
            self.pending.clear()
            pts = f.pts if f.pts is not None else (last_pts + step if last_pts is not None else 0)
            last_pts = pts
            duration = int(f.duration or 0)
            if self.timestamps:
                pts, duration = self._original(pts, duration)
            # EIA-608/708 captions travel inside the video stream, frame by frame: kept with a tiny copy of the frame,
            # whose side data the encoder's frame inherits (vsr.video.colour.from_rgb)
            carrier = f.reformat(width=16, height=16) if f.side_data.get("A53_CC") is not None else None
            if alpha:
                rgb, a = to_rgba(f, self.colour)
                yield Frame(rgb, pts, tb, duration, alpha=a, carrier=carrier)
            else:
                yield Frame(to_rgb(f, self.colour), pts, tb, duration, carrier=carrier)
            index += 1
        for p in self.pending:
            yield Packet(p)
        self.pending.clear()
        if self.info.total and index < 0.9 * self.info.total - 1:
            self.truncated = True  # the demuxer stopped well before the length the header promised
        self.info.decode_errors = self.decode_errors
        self.info.truncated = self.truncated

    def packet_map(self) -> StreamMap:
        """Every packet of the stream (those the first frame's decode read, then the rest, demuxed without decoding):
        the source is spent after this."""
        damaged = self.truncated
        while not damaged:
            try:
                packet = next(self._demux)
            except StopIteration:
                break
            except av.error.FFmpegError:  # the file ends early or is damaged past recovery: plan what can be read
                damaged = True
            else:
                if packet.stream is self.stream:
                    self.map.add(packet)
        return self.map.build(self.stream.time_base, damaged, self.path)

    def _original(self, pts: int, duration: int) -> tuple[int, int]:
        tb, originals = self.timestamps
        t = (pts * self.stream.time_base - self._shift) / tb  # in the original time base, rounded by the remux
        i = bisect.bisect_left(originals, t)
        best = min((j for j in (i - 1, i) if 0 <= j < len(originals)), key=lambda j: abs(originals[j] - t))
        return originals[best], round(duration * self.stream.time_base / tb)

    def _bwdif(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """Each field pair woven into a full frame from its neighbours in time (bwdif, as FFmpeg users deinterlace
        before upscaling: the model would otherwise enlarge the combing); one frame behind the decoder."""
        tb = self.stream.time_base
        graph = av.filter.Graph()
        src = graph.add_buffer(width=self.info.width, height=self.info.height, format=self.info.pix_fmt,
                               time_base=tb)
        which = "all" if self.deinterlace == "all" else "interlaced"
        bwdif = graph.add("bwdif", f"mode=send_frame:parity=auto:deint={which}")
        sink = graph.add("buffersink")
        src.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        for f in itertools.chain(frames, [None]):
            graph.push(f)
            while True:
                try:
                    out = graph.pull()
                except (BlockingIOError, av.error.EOFError):
                    break
                if out.time_base != tb:  # bwdif counts in half the input's time base (room for field rate)
                    ratio = out.time_base / tb
                    out.pts = None if out.pts is None else round(out.pts * ratio)
                    out.duration = round(out.duration * ratio)
                    out.time_base = tb
                yield out

    def _same_size(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """Frames in the first one's size and pixel format (a stream can switch: a broadcast between programmes, a
        screen recording), as FFmpeg's own tools scale them; the model and the encoder keep one size."""
        w, h, fmt = self.info.width, self.info.height, self.info.pix_fmt
        for f in frames:
            if (f.width, f.height, f.format.name) != (w, h, fmt):
                if (f.width, f.height) != (w, h) and not self._resized:
                    self._resized = True
                    if self.warn:
                        self.warn(f"the frame size changes mid-stream ({w}×{h} → {f.width}×{f.height}): such "
                                  f"frames are rescaled to {w}×{h} (bicubic) before upscaling")
                f = f.reformat(width=w, height=h, format=fmt, interpolation="BICUBIC")
            yield f

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


@functools.lru_cache(maxsize=4)
def _sequence(folder: Path, mtime_ns: int) -> tuple[list[Path], list[str]]:
    """A folder's pictures and the names they are written under, listed once for all of a job's segments (a film
    scan's 170,000 pictures take seconds); the folder's modification time changes when a picture comes or goes."""
    files = list_images(folder)
    return files, frame_files(files)


class FolderSource:
    """A folder of images (naturally sorted) as a video at ``fps``, every picture a keyframe; ``first`` .. ``end``:
    the pictures a segment reads (their timestamps are their places in the whole folder)."""

    def __init__(self, path: Path, fps: float, first: int = 0, end: int | None = None):
        from vsr.picture import read_picture

        self.files, self.names = _sequence(path, path.stat().st_mtime_ns)
        if not self.files:
            raise VsrError(f"{path}: no images in the folder")
        self.first, self.end = first, len(self.files) if end is None else end
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

    def seek(self, seconds: float) -> None:
        """Start :meth:`items` at the picture shown at ``seconds``."""
        self.first = min(max(0, int(seconds * self.rate)), self.end)

    def packet_map(self) -> StreamMap:
        """The pictures as a stream's packets (each its own keyframe), for cutting the folder into segments; of no
        size, since a segment reads them from the folder instead of carrying them (vsr.segments.Pictures)."""
        packets = [PacketInfo(i, i, True, i, 0, i) for i in range(len(self.files))]
        return StreamMap(packets, list(range(len(packets))), list(range(len(packets))), self.info.time_base)

    def items(self) -> Iterator[Frame]:
        w, h = self.info.width, self.info.height
        for i, p in enumerate(self.files[self.first:self.end], start=self.first):
            pic = self.read(p)
            if pic.size != (w, h):
                raise VsrError(f"{p}: {pic.size[0]}×{pic.size[1]} differs from the first image ({w}×{h})")
            rgb = pic.color if not pic.gray else np.repeat(pic.color, 3, axis=2)
            yield Frame(rgb, i, self.info.time_base, 1, alpha=pic.alpha, name=self.names[i])

    def close(self) -> None:
        pass


def open_source(path: Path, *, stream: int | None, fps: float, threads: int = 0, deinterlace: str = "auto",
                warn: Callable[[str], None] | None = None):
    if path.is_dir():
        return FolderSource(path, fps)
    return VideoSource(path, stream, threads, deinterlace=deinterlace, warn=warn)




def frames_of(path: Path, limit: int = 0, stride: int = 1) -> Iterator[np.ndarray]:
    """The RGB frames of a video file or a folder of frames (every ``stride``-th, at most ``limit``), as
    ``vsr upscale`` decodes them: for training and scoring."""
    src = open_source(path, stream=None, fps=25.0)
    n = 0
    try:
        for i, item in enumerate(f for f in src.items() if isinstance(f, Frame)):
            if i % stride:
                continue
            yield item.rgb
            n += 1
            if limit and n >= limit:
                return
    finally:
        src.close()


def _frame_total(container, stream, rate, tb) -> int | None:
    """The frame count the header states, else its duration × rate (None: unknown)."""
    if stream.frames:
        return stream.frames
    if stream.duration and rate:
        return int(round(float(stream.duration * tb * rate)))
    if container.duration and rate:
        return int(round(container.duration / 1e6 * float(rate)))
    return None


def pixels_to_make(path: Path) -> int:
    """Frames × pixels of a video's first video stream from its header alone (no decoding): what one file of a
    folder job weighs against the others. 0 where the header does not say or the file does not open."""
    try:
        with _open_input(path) as c:
            v = next(s for s in c.streams.video if not _is_cover_art(s))
            rate = v.average_rate or v.guessed_rate or fractions.Fraction(25)
            return (_frame_total(c, v, rate, v.time_base or fractions.Fraction(1, 1000)) or 0) * v.width * v.height
    except (VsrError, av.FFmpegError, StopIteration, OSError, ValueError):
        return 0
