"""Internal, not an API: synthetic clips made with PyAV for the tests, ``vsr bench``'s generated input and the
bundled sample.

A clip is a procedurally textured scene that pans (so encoders and
multi-frame models see real motion), with optional audio (a tone), subtitles,
chapters, metadata, variable frame rate and any pixel format and colour tags.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np


def scene(height: int, width: int, t: int, seed: int = 0, speed: float = 1.5) -> np.ndarray:
    """Frame ``t`` of a panning scene: smooth gradients, edges and fine texture (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height + 64, width + int(abs(speed) * 4096 / 8) + 64
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ox = (t * speed) % (big_w - width)
    oy = 8 * np.sin(t / 15.0)
    x, y = xx + ox, yy + oy
    phase = rng.uniform(0, 2 * np.pi, size=6)
    r = 128 + 60 * np.sin(x / 37.0 + phase[0]) + 40 * np.sin((x + y) / 11.0 + phase[1])
    g = 128 + 60 * np.sin(y / 29.0 + phase[2]) + 35 * np.sin((x - y) / 7.0 + phase[3])
    b = 128 + 50 * np.sin((x * 0.7 + y) / 19.0 + phase[4]) + 30 * np.sin(x / 3.1 + phase[5]) * np.cos(y / 4.3)
    # a few hard-edged discs
    for k in range(5):
        cx, cy, rad = rng.uniform(0, big_w), rng.uniform(0, big_h), rng.uniform(10, 40)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < rad**2
        col = rng.uniform(0, 255, 3)
        r, g, b = np.where(mask, col[0], r), np.where(mask, col[1], g), np.where(mask, col[2], b)
    return np.clip(np.stack([r, g, b], axis=2), 0, 255).astype(np.uint8)


def leaves(height: int, width: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    """``frames`` frames of a moving dead-leaves scene (uint8 RGB): occluding discs with sizes drawn as natural
    images' are (p(r) ~ r^-3), flat or textured, under a smooth shading, each moving its own way around a pan, and
    a slight optical blur. Its edges, textures, flat areas and occlusions have the statistics of natural pictures,
    where ``scene`` is smooth: what int8 engines calibrate on without a user's own data (vsr.int8)."""
    import cv2

    rng = np.random.default_rng(seed)
    m = 16  # a margin: discs move in from outside
    big_h, big_w = height + 2 * m, width + 2 * m
    n = big_h * big_w // 15  # enough to cover the picture
    rmin, rmax = 1.0, max(big_h, big_w) / 4
    r = rmin * (1 - rng.random(n) * (1 - (rmin / rmax) ** 2)) ** -0.5
    cx, cy = rng.uniform(0, big_w, n), rng.uniform(0, big_h, n)
    lum = rng.uniform(0, 255, n + 1)  # index 0: the background
    colour = np.clip(lum[:, None] + rng.normal(0, 35, (n + 1, 3)), 0, 255).astype(np.float32)
    texture = np.where(rng.random(n + 1) < 0.4, rng.uniform(5, 40, n + 1), 0).astype(np.float32)
    texture[0] = 0
    pan = rng.normal(0, 2, 2)
    velocity = np.vstack([pan, pan + rng.normal(0, 0.75, (n, 2))]).astype(np.float32)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (big_h, big_w)).astype(np.float32), (0, 0), rng.uniform(0.3, 1.0))
    noise /= noise.std()
    yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
    g = rng.normal(0, 1, 4)
    shade = (1 + 0.35 * np.sin(xx / big_w * np.pi * g[0] + g[1]) * np.cos(yy / big_h * np.pi * g[2] + g[3]))
    out = []
    for t in range(frames):
        index = np.zeros((big_h, big_w), np.int32)
        for i in range(n):  # later discs occlude earlier ones; centres and radii in 1/16 pixels
            x, y = cx[i] + velocity[i + 1, 0] * t, cy[i] + velocity[i + 1, 1] * t
            cv2.circle(index, (int(x * 16), int(y * 16)), int(r[i] * 16), i + 1, -1, cv2.LINE_8, 4)
        v = velocity[index]
        moved = cv2.remap(noise, xx - v[..., 0] * t, yy - v[..., 1] * t, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        img = (colour[index] + (texture[index] * moved)[..., None]) * shade[..., None].astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), 0.7)
        out.append(np.clip(img[m : m + height, m : m + width] + 0.5, 0, 255).astype(np.uint8))
    return out


def street_sign(frames: int = 12, width: int = 640, height: int = 360) -> list[np.ndarray]:
    """A street sign and a shop's board panning past, 8 pixels a frame: text, hard edges and flat colour (HR frames,
    uint8 RGB; the font is matplotlib's DejaVu Sans)."""
    import matplotlib.font_manager as fm
    from PIL import Image, ImageDraw, ImageFont

    def font(size: int, bold: bool):
        weight = "bold" if bold else "normal"
        return ImageFont.truetype(fm.findfont(fm.FontProperties(family="DejaVu Sans", weight=weight)), size)

    h = height
    canvas = Image.new("RGB", (width + 8 * frames + 64, h), (70, 90, 110))
    d = ImageDraw.Draw(canvas)
    d.rectangle([20, h // 5, canvas.width - 20, h // 2], fill=(20, 90, 40))
    d.text((40, h // 5 + 10), "MAIN STREET 24", font=font(h // 8, True), fill=(240, 240, 240))
    d.text((40, h // 5 + 10 + h // 7), "Parking only for residents 8-18h", font=font(h // 18, False),
           fill=(240, 240, 220))
    d.rectangle([40, 2 * h // 3, canvas.width - 40, 2 * h // 3 + h // 5], fill=(230, 230, 230))
    d.text((60, 2 * h // 3 + 10), "OPEN 7 DAYS  CAFE  BAR", font=font(h // 8, True), fill=(20, 20, 20))
    big = np.asarray(canvas)
    return [np.ascontiguousarray(big[:, 8 * t : 8 * t + width]) for t in range(frames)]


def encode_scene(container, stream, frames) -> None:
    """Encode scene frames ``frames`` (their ``t``), at the stream's size, into ``container``; then flush."""
    for t in frames:
        for p in stream.encode(av.VideoFrame.from_ndarray(scene(stream.height, stream.width, t), format="rgb24")):
            container.mux(p)
    for p in stream.encode():
        container.mux(p)


@dataclass
class ClipSpec:
    width: int = 160
    height: int = 96
    frames: int = 12
    fps: int = 25
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    colorspace: str | None = "itu709"  # swscale name, or None for untagged
    color_range: str = "MPEG"  # MPEG (limited) or JPEG (full)
    audio: bool = True
    subtitles: bool = False
    chapters: bool = False
    vfr: bool = False  # irregular timestamps
    metadata: dict[str, str] = field(default_factory=dict)
    crf: int = 18
    seed: int = 0
    rgb: np.ndarray | None = None  # a fixed frame (H×W×3 uint8) instead of the scene
    gop: int = 0  # keyframe interval in frames (0: the encoder's default)
    interlaced: bool = False  # H.264 interlaced, top field first: odd rows half a frame later than even ones
    container: str | None = None  # FFmpeg's muxer, where the extension doesn't name it (.MTS: mpegts)


_MATRIX = {"itu709": 1, "itu601": 6, "smpte170m": 6, "bt2020": 9}


def make_clip(path: str | Path, spec: ClipSpec | None = None, **kw) -> Path:
    """Write a clip; returns its path. Keyword arguments override ``spec``'s fields."""
    spec = spec or ClipSpec()
    for k, v in kw.items():
        setattr(spec, k, v)
    path = Path(path)
    tb = fractions.Fraction(1, spec.fps * 100)
    with av.open(str(path), "w", format=spec.container) as out:
        out.metadata.update(spec.metadata)
        v = out.add_stream(spec.codec, rate=spec.fps)
        v.width, v.height, v.pix_fmt = spec.width, spec.height, spec.pix_fmt
        v.time_base = tb
        v.codec_context.time_base = tb
        if spec.codec in ("libx264", "libx265"):
            v.options = {"crf": str(spec.crf), "preset": "ultrafast"}
        if spec.interlaced:
            v.options = {**v.options, "x264-params": "interlaced=1:tff=1"}
        if spec.gop:
            v.codec_context.gop_size = spec.gop
        if spec.colorspace:
            v.codec_context.colorspace = _MATRIX[spec.colorspace]
            v.codec_context.color_primaries = 9 if spec.colorspace == "bt2020" else (1 if spec.colorspace == "itu709" else 6)
            v.codec_context.color_trc = 14 if spec.colorspace == "bt2020" else (1 if spec.colorspace == "itu709" else 6)
        v.codec_context.color_range = 2 if spec.color_range == "JPEG" else 1
        a = None
        if spec.audio:
            a = out.add_stream("aac", rate=48000)
            a.layout = "stereo"
            a.metadata["language"] = "eng"
        s = None
        if spec.subtitles:
            s = out.add_mux_stream("mov_text" if path.suffix in (".mp4", ".mov") else "subrip")
            s.time_base = fractions.Fraction(1, 1000)
            s.metadata["language"] = "fra"
        pts = 0
        pts_list = []
        for i in range(spec.frames):
            step = int(tb.denominator / spec.fps)
            if spec.vfr:
                step = int(step * (0.5 + (i * 7919 % 10) / 10.0))  # irregular but monotonic
            pts_list.append(pts)
            rgb = spec.rgb if spec.rgb is not None else scene(spec.height, spec.width, i, spec.seed)
            if spec.interlaced:  # two fields, half a frame's motion apart
                rgb = scene(spec.height, spec.width, 2 * i, spec.seed, speed=6.0)
                rgb[1::2] = scene(spec.height, spec.width, 2 * i + 1, spec.seed, speed=6.0)[1::2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            kwargs = {}
            if spec.colorspace:
                kwargs = {"dst_colorspace": spec.colorspace}
            frame = frame.reformat(format=spec.pix_fmt, dst_color_range=spec.color_range, **kwargs)
            frame.pts, frame.time_base = pts, tb
            for p in v.encode(frame):
                out.mux(p)
            pts += step
        for p in v.encode():
            out.mux(p)
        duration_s = pts * tb
        if a is not None:
            _write_tone(out, a, float(duration_s))
        if s is not None:
            _write_subtitles(out, s, float(duration_s), path.suffix in (".mp4", ".mov"))
        if spec.chapters:
            half = int(duration_s * 1000 / 2)
            out.set_chapters([
                {"id": 1, "start": 0, "end": half, "time_base": fractions.Fraction(1, 1000), "metadata": {"title": "One"}},
                {"id": 2, "start": half, "end": int(duration_s * 1000), "time_base": fractions.Fraction(1, 1000),
                 "metadata": {"title": "Two"}},
            ])
    return path


def _write_tone(out, stream, seconds: float) -> None:
    rate, n = 48000, 1024
    total = int(seconds * rate)
    t0 = 0
    while t0 < total:
        k = min(n, total - t0)
        t = (np.arange(t0, t0 + k) / rate).astype(np.float32)
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, t0
        for p in stream.encode(frame):
            out.mux(p)
        t0 += k
    for p in stream.encode():
        out.mux(p)


def _write_subtitles(out, stream, seconds: float, mov_text: bool) -> None:
    """Two cues, muxed as packets in the stream's time base (PyAV cannot encode subtitles)."""
    tb = stream.time_base or fractions.Fraction(1, 1000)
    cues = [(0.0, seconds / 2, "Bonjour"), (seconds / 2, seconds, "Au revoir")]
    for start, end, text in cues:
        payload = text.encode()
        if mov_text:
            payload = len(payload).to_bytes(2, "big") + payload
        pkt = av.Packet(payload)
        pkt.stream = stream
        pkt.time_base = tb
        pkt.pts = pkt.dts = int(start / tb)
        pkt.duration = int((end - start) / tb)
        out.mux(pkt)
