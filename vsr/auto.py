"""``-m auto``: the real-footage model for compressed or noisy video, the clean model otherwise, decided from what
the file says (its codec, bits per pixel, H.264's quantiser) and shows (blockiness and noise, measured on a few
frames sampled across it by seeking). The thresholds were calibrated on training clips only, and what the choice
scores on the held-out clips is measured by ``benchmarks/auto.py`` (BENCHMARKS.md, "Choosing the model").

The whole choice reads a handful of frames: well under a second on a 4K file.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsr.errors import VsrError

AUTO = "auto"
CLEAN = "fast"  # for clean sources
REAL = "fast-real"  # for compressed or noisy ones (real footage)


@dataclass(frozen=True)
class Rule:
    """The thresholds of :func:`classify` (benchmarks/auto.py calibrates them on training clips)."""

    qp: float  # an H.264 stream quantised at this mean QP or above is compressed
    bpp: float  # without a quantiser: below these bits per pixel (H.264-equivalent) it is compressed
    blocky: float  # any codec: this much more luma step across block edges than inside blocks is compressed
    noisy: float  # noise σ (8-bit levels) at or above which a source is noisy
    clean: bool = True  # whether clean input gets CLEAN (False: REAL did as well on clean calibration clips)


# per scale, as `python benchmarks/auto.py calibrate` fits them on training clips. At ×4 every H.264 file from CRF 18
# (QP ≥ 19) on, and every blocky or noisy one, does better with REAL, a lossless one with CLEAN; at ×2 REAL did as
# well as CLEAN on every training clip, the clean ones included, so it runs whatever the input (the thresholds then
# only name what the input is)
RULES = {4: Rule(qp=19.0, bpp=1.374, blocky=1.13, noisy=3.3),
         2: Rule(qp=19.0, bpp=1.374, blocky=1.13, noisy=3.3, clean=False)}


def rule_for(scale: int) -> Rule:
    """The rule calibrated at ``scale``, else at the nearest scale that has one (the larger where two are as near)."""
    return RULES[min(RULES, key=lambda k: (abs(k - scale), -k))]


# bits per pixel a codec needs for H.264's quality, relative to H.264's (published coding-efficiency comparisons,
# rounded): a bit rate is read as H.264 would spend it
EFFICIENCY = {"h264": 1.0, "hevc": 1.5, "vp9": 1.4, "av1": 1.8, "vvc": 2.2, "vp8": 0.9, "mpeg4": 0.7,
              "msmpeg4v3": 0.6, "msmpeg4v2": 0.6, "h263": 0.6, "flv1": 0.6, "mpeg2video": 0.5, "mpeg1video": 0.45,
              "wmv3": 0.8, "vc1": 0.8, "theora": 0.7, "mjpeg": 0.25}
# codecs that keep every pixel, or so nearly (mezzanine formats) that nothing of the codec is left to undo
LOSSLESS = {"rawvideo", "ffv1", "huffyuv", "ffvhuff", "utvideo", "magicyuv", "lagarith", "png", "qtrle", "v210",
            "v410", "r210", "r10k", "prores", "dnxhd", "cfhd", "zlib", "tiff", "exr", "dpx", "apng", "qoi"}

SAMPLES = 4  # places in the file, spread over it
PER_SAMPLE = 3  # consecutive frames decoded at each
CROP = 960  # pixel measures on the centre of a frame at most this size (a 4K frame costs what a 1080p one does)
WHOLE_FILE = 64 << 20  # bytes: a smaller file's packets are all counted (cheap); a larger one's are sampled


@dataclass
class Signals:
    codec: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    bpp: float | None = None  # the video stream's bits per pixel, as read (None: unknown, e.g. a folder of frames)
    rate_from: str = ""  # where the bit rate came from
    qp: float | None = None  # H.264's mean quantiser over the frames read (None: not exposed for this codec)
    blockiness: float = 1.0  # luma step across block edges (4, 8, 16 px) over the step inside blocks; 1: none
    noise: float = 0.0  # σ of the noise in flat regions, 8-bit levels
    frames: int = 0  # frames measured
    extra: dict = field(default_factory=dict)

    @property
    def lossless(self) -> bool:
        return self.codec in LOSSLESS or self.qp == 0

    @property
    def bpp_h264(self) -> float | None:
        """Bits per pixel as H.264 would need them for the same quality (None where unknown or not meaningful)."""
        if self.bpp is None or self.codec in LOSSLESS:
            return None
        return self.bpp * EFFICIENCY.get(self.codec, 1.0)


@dataclass(frozen=True)
class Decision:
    model: str
    why: str  # "compressed: 0.08 bits/pixel, blockiness 1.90, noise 0.4"
    signals: Signals

    @property
    def kind(self) -> str:
        """What the source looked like: clean, compressed, noisy, or compressed and noisy."""
        return self.why.split(":")[0]

    @property
    def line(self) -> str:
        return f"auto: {self.model} ({self.why})"


# ---------------------------------------------------------------------------
# the rule


def classify(s: Signals, rule: Rule, *, use_qp: bool = True) -> tuple[bool, str]:
    """(real, why): whether the source is compressed or noisy, and the one-line reason. Compressed: by its codec
    (H.264 by its quantiser; any other, or with ``use_qp`` False, which benchmarks/auto.py measures too, by its bits
    per pixel; a lossless or mezzanine codec never) or by the blocks its pixels show. Noisy: by the noise in its
    flat regions. Where the rule says clean input too is better served by REAL at its scale, every source is."""
    said = []
    if s.lossless:
        coded = False
        said.append(s.codec if s.codec in LOSSLESS else "lossless")
    elif use_qp and s.qp is not None:
        coded = s.qp >= rule.qp
        said.append(f"QP {s.qp:.1f}")
    else:
        bpp = s.bpp_h264
        coded = bpp is not None and bpp < rule.bpp
        if s.bpp is not None:
            said.append(f"{s.bpp:.2f} bits/pixel" + (f" {s.codec}" if s.codec not in ("h264", "") else ""))
    compressed = coded or s.blockiness >= rule.blocky
    noisy = s.noise >= rule.noisy
    said += [f"blockiness {s.blockiness:.2f}", f"noise {s.noise:.1f}"]
    kind = ("compressed and noisy" if noisy else "compressed") if compressed else ("noisy" if noisy else "clean")
    return compressed or noisy or not rule.clean, f"{kind}: {', '.join(said)}"


def decide_from(s: Signals, scale: int) -> Decision:
    """The model for a source with these signals at ``scale``: REAL for compressed or noisy input, else CLEAN; one
    without weights for the scale gives way to the other where that has them (said in the reason)."""
    from vsr.zoo import scales_of

    rule = rule_for(scale)
    real, why = classify(s, rule)
    if not rule.clean and why.startswith("clean"):
        why += f"; at ×{scale} {REAL} did as well as {CLEAN} on clean training clips too"
    model = REAL if real else CLEAN
    other = CLEAN if real else REAL
    if scale not in scales_of(model) and scale in scales_of(other):
        why += f"; {model} has no ×{scale} weights, so {other}"
        model = other
    return Decision(model, why, s)


def decide(path: Path, scale: int, stream: int | None = None, fps: float = 25.0) -> Decision:
    """The model ``-m auto`` runs on ``path`` (a video file or a folder of frames) at ``scale``."""
    return decide_from(measure(path, stream, fps), scale)


# ---------------------------------------------------------------------------
# the signals


def measure(path: Path, stream: int | None = None, fps: float = 25.0) -> Signals:
    """The signals of a video file (its video stream ``stream``, else the first that is not cover art), or of a
    folder of frames (pixels only: no codec, no bit rate)."""
    path = Path(path)
    if path.is_dir():
        return _measure_folder(path, fps)
    import av

    from vsr.video.source import _is_cover_art, _open_input

    container = _open_input(path)
    try:
        videos = [s for s in container.streams.video if not _is_cover_art(s)]
        if stream is not None:
            videos = [s for s in container.streams if s.index == stream and s.type == "video"]
        if not videos:
            raise VsrError(f"{path}: no video stream to choose a model by")
        v = videos[0]
        cc = v.codec_context
        rate = v.average_rate or v.guessed_rate or fractions.Fraction(25)
        s = Signals(codec=cc.name, width=cc.width, height=cc.height, fps=float(rate))
        bits, s.rate_from = _bit_rate(container, v, path)
        if bits and s.width and s.height:
            s.bpp = bits / (s.width * s.height * s.fps)
        cc.thread_type = "SLICE"  # not frame threads: with them a frame's quantisers were now and then all zero
        try:  # the decoder's per-block quantisers, where it exports them (H.264, VP9, MPEG-1/2/4 in FFmpeg)
            cc.options = {**cc.options, "export_side_data": "venc_params"}
        except (av.error.FFmpegError, ValueError, AttributeError):
            pass
        qps, lumas = [], []
        for frame in _sample(container, v):
            qp = _qp(frame)
            if qp is not None:
                qps.append(qp)
            lumas.append(_luma(frame))
        if not lumas:
            raise VsrError(f"{path}: no decodable video frames")
        if qps and cc.name == "h264":  # (other codecs' scales are not H.264's; not calibrated)
            s.qp = float(np.mean(qps))
        _pixels(s, lumas)
        return s
    finally:
        container.close()


def _measure_folder(path: Path, fps: float) -> Signals:
    from vsr.formats import list_images
    from vsr.picture import read_picture

    files = list_images(path)
    if not files:
        raise VsrError(f"{path}: no images in the folder")
    picks = sorted({files[int((i + 0.5) * len(files) / SAMPLES)] for i in range(SAMPLES)})
    lumas = []
    for p in picks:
        pic = read_picture(p)
        rgb = pic.color.astype(np.float32) / (257.0 if pic.bits > 8 else 1.0)
        lumas.append(rgb if rgb.ndim == 2 else rgb @ np.float32([0.299, 0.587, 0.114]))
    h, w = lumas[0].shape[:2]
    s = Signals(codec=files[0].suffix.lower().lstrip("."), width=w, height=h, fps=fps, rate_from="frames")
    _pixels(s, lumas)
    return s


def _bit_rate(container, v, path: Path) -> tuple[float | None, str]:
    """The video stream's bit rate (bits per second) and where it came from: the stream's header (MP4 and MOV
    record it), a muxer's statistics tag (mkvmerge's BPS), else its packets' sizes over their duration: all of
    them in a file up to WHOLE_FILE, a few stretches of whole GOPs spread over a larger one."""
    from vsr.video.source import seek_seconds

    if v.bit_rate:
        return float(v.bit_rate), "header"
    for k, val in v.metadata.items():
        if k.upper().startswith("BPS"):
            try:
                return float(val), "tag"
            except ValueError:
                pass
    tb = v.time_base or fractions.Fraction(1, 1000)
    size = path.stat().st_size
    if size <= WHOLE_FILE:
        total, ends = 0, []
        for p in container.demux(v):
            if p.size and p.pts is not None:
                total += p.size
                ends.append((p.pts, p.pts + (p.duration or 0)))
        container.seek(0, stream=v)
        if len(ends) < 2:
            return None, ""
        first = min(a for a, _ in ends)
        last_pts = max(a for a, _ in ends)
        step = (last_pts - first) / (len(ends) - 1)  # one frame's duration, where packets carry none
        seconds = float((max(b for _, b in ends) if any(b > a for a, b in ends) else last_pts + step) - first) * tb
        return (total * 8 / float(seconds), "packets") if seconds > 0 else (None, "")
    duration = _duration(container, v)
    total = seconds = 0.0
    for t in _targets(duration, SAMPLES):
        seek_seconds(container, v, t)
        start = end = None
        nbytes = 0
        for p in container.demux(v):
            if not p.size or p.pts is None:
                continue
            if start is not None:
                span = float((end - start) * tb)
                if (p.is_keyframe and span >= 1.0) or span >= 2.0:  # whole GOPs, or 2 s of a longer one (whose
                    break  # keyframe then weighs a little more than its share)
            start = p.pts if start is None else min(start, p.pts)
            end = max(end if end is not None else p.pts, p.pts + (p.duration or 0))
            nbytes += p.size
        if start is not None and end is not None and end > start:
            total += nbytes
            seconds += float((end - start) * tb)
    container.seek(0, stream=v)
    return (total * 8 / seconds, "packets sampled") if seconds > 0 else (None, "")


def _duration(container, v) -> float:
    if v.duration and v.time_base:
        return float(v.duration * v.time_base)
    return container.duration / 1e6 if container.duration else 0.0


def _targets(duration: float, n: int) -> list[float]:
    return [duration * (i + 0.5) / n for i in range(n)] if duration > 0 else [0.0]


def _sample(container, v):
    """PER_SAMPLE consecutive frames from each of SAMPLES places spread over the stream, each from the keyframe
    before it; places that share a keyframe (a short clip, a long GOP) take their frames one after another, so no
    frame is decoded twice."""
    import av

    from vsr.video.source import seek_seconds

    starts = []  # the keyframe each place decodes from (its packet's pts), found without decoding
    for t in _targets(_duration(container, v), SAMPLES):
        try:
            seek_seconds(container, v, t)
            pts = next((p.pts for p in container.demux(v) if p.size and p.pts is not None), None)
        except av.error.FFmpegError:
            continue
        if pts is not None:
            starts.append(pts)
    for pts in sorted(set(starts)):
        want = PER_SAMPLE * starts.count(pts)
        try:
            container.seek(pts, stream=v, backward=True, any_frame=False)
            v.codec_context.flush_buffers()
            for i, frame in enumerate(container.decode(v)):
                yield frame
                if i + 1 >= want:
                    break
        except av.error.FFmpegError:  # a damaged stretch: the other places still count
            continue


def _qp(frame) -> float | None:
    for sd in frame.side_data:
        if type(sd).__name__ == "VideoEncParams":
            qmap = sd.qp_map()
            return float(np.mean(qmap)) if qmap.size else float(sd.qp)
    return None


def _luma(frame) -> np.ndarray:
    """The frame's luma as float32 in 8-bit levels, its centre at most CROP square (cropped on the 16-pixel grid,
    so block edges stay where the codec put them)."""
    w, h = frame.width, frame.height
    cw, ch = min(w, CROP), min(h, CROP)
    x0, y0 = (w - cw) // 2 // 16 * 16, (h - ch) // 2 // 16 * 16
    fmt = frame.format
    if fmt.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"):
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
        return y[y0:y0 + ch, x0:x0 + cw].astype(np.float32)
    y = frame.reformat(format="gray16le").to_ndarray()
    return y[y0:y0 + ch, x0:x0 + cw].astype(np.float32) / 257.0


def _pixels(s: Signals, lumas: list[np.ndarray]) -> None:
    s.frames = len(lumas)
    s.blockiness = float(np.median([blockiness(y) for y in lumas]))
    s.noise = float(np.median([noise(y) for y in lumas]))


def blockiness(y: np.ndarray) -> float:
    """How much larger the luma step is across block edges than inside blocks: for grids of 4, 8 and 16 pixels
    (H.264's and HEVC's transforms, JPEG's and MPEG's blocks, macroblocks), the mean absolute step between columns
    (rows) at the grid's edges over that between the others, both directions averaged; the largest of the three.
    About 1 where there are no blocks."""
    out = 1.0
    cols = np.abs(np.diff(y, axis=1)).mean(axis=0)
    rows = np.abs(np.diff(y, axis=0)).mean(axis=1)
    for p in (4, 8, 16):
        ratios = []
        for d in (cols, rows):
            at = (np.arange(d.size) + 1) % p == 0
            inside = d[~at].mean() if (~at).any() else 0.0
            if at.any() and inside > 1e-3:
                ratios.append(d[at].mean() / inside)
        if ratios:
            out = max(out, float(np.mean(ratios)))
    return out


# Immerkær's kernel: the difference of two Laplacians, blind to planes and ramps; white noise of σ comes out 6σ
_NOISE_KERNEL = np.float32([[1, -2, 1], [-2, 4, -2], [1, -2, 1]])


def noise(y: np.ndarray) -> float:
    """σ of the noise, 8-bit levels: the robust spread (median absolute value × 1.4826) of a high-pass, over the
    flattest fifth of the 8×8 blocks whose mean is off black and white (where clipping hides noise)."""
    import cv2

    h, w = (y.shape[0] - 2) // 8 * 8, (y.shape[1] - 2) // 8 * 8
    if h < 8 or w < 8:
        return 0.0
    hp = np.abs(cv2.filter2D(y, cv2.CV_32F, _NOISE_KERNEL))[1:1 + h, 1:1 + w]
    g = (np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)))
    g = g[1:1 + h, 1:1 + w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    m = y[1:1 + h, 1:1 + w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    ok = (m > 20) & (m < 235)
    if not ok.any():
        return 0.0
    flat = ok & (g <= np.quantile(g[ok], 0.2))
    blocks = hp.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)[flat]
    return float(np.median(blocks) * 1.4826 / 6.0)
