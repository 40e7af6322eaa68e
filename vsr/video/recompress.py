"""A clip through a lossy video codec and back: how real footage arrives. ``vsr eval --crf 26`` scores models on BI
LR frames compressed this way; training's realistic degradation uses it too.

Both conversions are :mod:`vsr.video.colour`'s: the frames are encoded with the colour a player assumes for a clip
of their size that carries no tags (BT.709 for HD, BT.601 for SD, limited range), and the stream is tagged with it,
so what comes back is what ``vsr upscale`` (or any player) decodes from that stream."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from vsr.video.colour import colour_of, from_rgb, tag_encoder, to_8bit, to_rgb, untagged


def encode(frames: list[np.ndarray], out: str | Path | BinaryIO, *, codec: str = "libx264", crf: int = 26,
           preset: str = "medium", format: str = "matroska") -> None:
    """``frames`` (H×W×3 uint8 RGB, one clip) as one 4:2:0 stream in Matroska (or FFmpeg's muxer ``format``: "mp4"
    as a phone writes it), written to ``out`` (a path or a binary file). Odd sizes are padded by repeating the edge
    (the decoder's frames are cropped back by :func:`recompress`), and so are HEVC frames under 64 px (x265
    corrupts its heap on smaller ones at some presets). One encoder thread, so the stream is the same on every
    run."""
    h, w = frames[0].shape[:2]
    least = 64 if codec == "libx265" else 0
    ph, pw = max(h % 2, least - h), max(w % 2, least - w)
    colour = untagged(w, h)
    with av.open(out, "w", format=format) as container:
        s = container.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w + pw, h + ph, "yuv420p"
        opts = {"crf": str(crf), "preset": preset}
        if codec == "libx265":  # x265 ignores thread_count: its own pool off too (one segfault in training with it on)
            opts["x265-params"] = "log-level=none:pools=none:frame-threads=1"
        s.options = opts
        s.codec_context.thread_count = 1
        tag_encoder(s.codec_context, colour)
        for i, f in enumerate(frames):
            vf = from_rgb(np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge"), colour, "yuv420p")
            vf.pts = i
            container.mux(s.encode(vf))
        container.mux(s.encode(None))


def decode(src: str | Path | BinaryIO) -> list[np.ndarray]:
    """Every frame of a stream's first video track as 8-bit RGB, converted as :mod:`vsr.video.source` converts
    them (the first frame's colour, tagged or assumed)."""
    with av.open(src) as c:
        frames = list(c.decode(video=0))
    if not frames:
        return []
    colour = colour_of(frames[0])
    return [to_8bit(to_rgb(f, colour)) for f in frames]


def recompress(frames: list[np.ndarray], *, codec: str = "libx264", crf: int = 26, preset: str = "medium"
               ) -> list[np.ndarray]:
    """``frames`` (H×W×3 uint8 RGB, one clip) encoded (:func:`encode`) and decoded back, same count, order and
    size."""
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    encode(frames, buf, codec=codec, crf=crf, preset=preset)
    buf.seek(0)
    back = [f[:h, :w] for f in decode(buf)]
    if len(back) != len(frames):
        raise RuntimeError(f"{codec} returned {len(back)} of {len(frames)} frames")
    return back
