"""File formats in one place: which image files vsr reads and writes, which video containers it writes and
with what encoder by default, and how folders of frames are listed."""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass
from pathlib import Path

# images
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".dpx"}  # read
IMAGE_WRITERS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".jpg": "JPEG", ".jpeg": "JPEG",
                 ".avif": "AVIF", ".dpx": "DPX"}
SEQUENCE_KEPT = (".dpx", ".tif", ".tiff")  # a folder of frames out keeps these formats (film scanning, grading)


@dataclass(frozen=True)
class Container:
    muxer: str  # FFmpeg's format name
    codec: str  # the video encoder used when none is asked for


CONTAINERS = {
    ".mp4": Container("mp4", "libx264"), ".m4v": Container("mp4", "libx264"), ".mov": Container("mov", "libx264"),
    ".mkv": Container("matroska", "libx264"), ".webm": Container("webm", "libvpx-vp9"),
    ".avi": Container("avi", "libx264"), ".ts": Container("mpegts", "libx264"), ".mxf": Container("mxf", "mpeg2video"),
    ".gif": Container("gif", "gif"),  # a palette per frame (vsr.video.sink.Palettes); in one pass, not segments
}
# read, and picked up by a folder job (FFmpeg reads more: any file can be named on its own)
VIDEO_EXTS = set(CONTAINERS) | {".y4m", ".mpg", ".mpeg", ".vob", ".m2v", ".mts", ".m2ts", ".m2t", ".tod",
                                ".wmv", ".asf", ".flv", ".f4v", ".3gp", ".3g2", ".dv", ".ogv", ".divx", ".rm", ".rmvb"}

# encoder defaults: constant quality, and a speed preset that keeps up with the model on a laptop
DEFAULT_CRF = {"libx264": 17, "libx265": 19, "libsvtav1": 24, "libvpx-vp9": 24}
DEFAULT_PRESET = {"libx264": "veryfast", "libx265": "fast", "libsvtav1": "8", "libvpx-vp9": "4"}
# the encoder option --preset sets: libvpx's speed is cpu-used (0 slowest … 8); its default (1) encodes 1080p at
# half the speed of cpu-used 4 with row-mt (docs/video.md, "Encoder speed at 1080p")
PRESET_OPTION = {"libx264": "preset", "libx265": "preset", "libsvtav1": "preset", "libvpx-vp9": "cpu-used"}
LOSSLESS = ("ffv1",)  # no CRF
# what --crf may be for each encoder (its own scale: CRF for x264/x265/SVT-AV1/libvpx, a quantiser for MPEG-1/2)
QUALITY_RANGE = {"libx264": (0, 51), "libx264rgb": (0, 51), "libx265": (0, 51), "libsvtav1": (0, 63),
                 "libaom-av1": (0, 63), "libvpx-vp9": (0, 63), "libvpx": (4, 63), "mpeg2video": (1, 31),
                 "mpeg1video": (1, 31)}
# MPEG-1/2 have no CRF: a constant quantiser (1 best … 31), where FFmpeg's default is 200 kb/s at any size; and they
# count time in frames, so their clock is the frame rate (one of MPEG's)
QSCALE_CODECS = ("mpeg2video", "mpeg1video")
DEFAULT_QSCALE = 2
# encoders that write closed captions (EIA-608/708, carried with each frame) into the video stream
CAPTION_CODECS = ("libx264", "libx265", "mpeg2video")


HDR_CODEC = "libx265"  # what carries HDR10 metadata where the container's default (H.264) cannot
HDR_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv", ".ts")


# what carries an alpha channel where the container's default cannot: ProRes 4444 in QuickTime, FFV1 (lossless) in
# Matroska, VP9 (yuva420p) in WebM; no encoder here writes alpha into MP4 or MPEG-TS
ALPHA_CODEC = {".mov": "prores_ks", ".mkv": "ffv1", ".webm": "libvpx-vp9"}
# VP8/VP9 write alpha as a second bitstream in packet side data (Matroska/WebM block additions)
SIDE_ALPHA_CODECS = ("libvpx-vp9", "libvpx")
# encoders whose alpha vsr keeps and tests (HEVC's alpha layer is not: not offered)
ALPHA_CODECS = ("prores_ks", "prores_aw", "ffv1", "png", "qtrle", "utvideo") + SIDE_ALPHA_CODECS


def muxer_for(target: Path) -> str | None:
    """FFmpeg's muxer for an output file vsr writes (None: let FFmpeg guess from the name)."""
    c = CONTAINERS.get(target.suffix.lower())
    return c.muxer if c else None


def default_codec(ext: str, hdr: bool = False, alpha: bool = False, source: str = "") -> str:
    """The encoder for an output extension when none is asked for: for sources with alpha one that keeps it where
    the container holds one; HEVC for HDR10 sources where the container holds it (H.264 cannot carry their mastering
    metadata); ProRes for ProRes sources (``source``: the input's codec) into QuickTime or Matroska, as editors
    round-trip their intermediates; else the container's default."""
    ext = ext.lower()
    if alpha and ext in ALPHA_CODEC:
        return ALPHA_CODEC[ext]
    if hdr and ext in HDR_CONTAINERS:
        return HDR_CODEC
    if source == "prores" and ext in (".mov", ".mkv"):
        return "prores_ks"
    return CONTAINERS[ext].codec if ext in CONTAINERS else "libx264"


def natural_key(path: Path | str) -> list:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def list_images(folder: Path) -> list[Path]:
    """The image files in a folder (hidden files left out), in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.name.startswith(".")), key=natural_key)


def frame_file(number: int) -> str:
    """What a folder of frames out names a video's frame (its number, from 1)."""
    return f"frame_{number:06d}.png"


def frame_files(pictures: list[Path]) -> list[str]:
    """What a folder of frames out names each upscaled picture: its own name, in its own format where it is a DPX or
    TIFF sequence's (SEQUENCE_KEPT), else as PNG; the whole name + .png where two would meet (a.jpg beside a.png)."""
    def own(p: Path) -> str:
        return p.stem + (p.suffix.lower() if p.suffix.lower() in SEQUENCE_KEPT else ".png")

    taken = collections.Counter(own(p).lower() for p in pictures)
    return [own(p) if taken[own(p).lower()] == 1 or own(p).endswith(p.suffix.lower()) else p.name + ".png"
            for p in pictures]


def list_videos(folder: Path) -> list[Path]:
    """The video files in a folder (hidden files left out: macOS's ``._name.mp4`` beside each file on a shared
    drive is not a video), in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS
                   and not p.name.startswith(".")), key=natural_key)


def folders_under(folder: Path, skip: Path | None = None) -> list[Path]:
    """A folder and its subfolders, depth first in natural order, hidden ones left out and ``skip`` (an output folder
    inside it) too. Links to folders are not followed."""
    skip = skip.resolve() if skip is not None else None
    out = []
    for root, dirs, _ in os.walk(folder):
        dirs[:] = sorted((d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() != skip),
                         key=natural_key)
        out.append(Path(root))
    return out


def videos_under(folder: Path, skip: Path | None = None) -> list[Path]:
    """The video files in a folder and in its subfolders (:func:`folders_under`), each folder's in natural order."""
    return [v for d in folders_under(folder, skip) for v in list_videos(d)]


def clips_in(path: Path) -> list[Path]:
    """The clips of a folder of clips, in natural order: its frame folders (``../shared/data/val_video``) and its
    video files. None where the folder holds images itself (it is then a clip or a set of pictures)."""
    if not path.is_dir() or list_images(path):
        return []
    folders = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and list_images(p)]
    return sorted(folders + list_videos(path), key=natural_key)


def is_clip_folder(path: Path) -> bool:
    """A folder of clips: frame folders or video files, and no images of its own."""
    return bool(clips_in(path))


def output_names(inputs: list[Path]) -> dict[Path, str]:
    """A folder job's output file names: the input's where vsr writes that container, else the same stem as .mkv
    (which holds what they hold), or the whole name + .mkv where two inputs would meet (a.vob beside a.mkv)."""
    names = {p: p.name if p.suffix.lower() in CONTAINERS else p.stem + ".mkv" for p in inputs}
    taken = [n.lower() for n in names.values()]
    return {p: n if taken.count(n.lower()) == 1 or p.suffix.lower() in CONTAINERS else p.name + ".mkv"
            for p, n in names.items()}
