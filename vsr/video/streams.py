"""The streams an output copies from its input beside the upscaled video: audio, subtitles, data, attachments,
chapters and metadata, as they are where the output holds them, re-encoded where it holds them only so (text
subtitles, audio), left out with a warning otherwise. The one-pass sink and the join of a segmented job both use it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av

from vsr.formats import muxer_for

Warn = Callable[[str], None]


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
    quicktime = (muxer_for(target) or "") in ("mov", "mp4")
    return {"movflags": "use_metadata_tags"} if quicktime and any("." in k for k in container.metadata) else {}
