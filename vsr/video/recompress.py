"""A clip through a lossy video codec and back: how real footage arrives (issue: real footage). ``vsr eval
--crf 26`` scores models on BI LR frames compressed this way; training's realistic degradation uses it too."""

from __future__ import annotations

import io

import av
import numpy as np


def recompress(frames: list[np.ndarray], *, codec: str = "libx264", crf: int = 26, preset: str = "medium"
               ) -> list[np.ndarray]:
    """``frames`` (H×W×3 uint8 RGB, one clip) encoded as one 4:2:0 stream and decoded back, same count and order.
    Odd sizes are padded by repeating the edge for the encoder and cropped back, and so are HEVC frames under
    64 px (x265 corrupts its heap on smaller ones at some presets). One encoder thread, so the result is the same
    on every run."""
    h, w = frames[0].shape[:2]
    least = 64 if codec == "libx265" else 0
    ph, pw = max(h % 2, least - h), max(w % 2, least - w)
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w + pw, h + ph, "yuv420p"
        opts = {"crf": str(crf), "preset": preset}
        if codec == "libx265":  # x265 ignores thread_count: its own pool off too (one segfault in training with it on)
            opts["x265-params"] = "log-level=none:pools=none:frame-threads=1"
        s.options = opts
        s.codec_context.thread_count = 1
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge"), format="rgb24")
            vf = vf.reformat(format="yuv420p")
            vf.pts = i
            out.mux(s.encode(vf))
        out.mux(s.encode(None))
    buf.seek(0)
    with av.open(buf) as c:
        back = [f.to_ndarray(format="rgb24")[:h, :w] for f in c.decode(video=0)]
    if len(back) != len(frames):
        raise RuntimeError(f"{codec} returned {len(back)} of {len(frames)} frames")
    return back
