"""How fast each encoder vsr offers writes 1080p with vsr's settings (VideoSink: CRF, preset, threads), on frames
like the model's output: a real clip upscaled smoothly to 1920×1080.

    python benchmarks/encoders.py                              # every encoder at its default preset
    python benchmarks/encoders.py --codec libvpx-vp9 --preset 1 --preset 4

The encoder shares the machine with the model in `vsr upscale`: an encoder slower than the model sets the speed.
"""

from __future__ import annotations

import argparse
import fractions
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "train_videos" / "big_buck_bunny_1280x720_132f.mp4"


def frames(n: int) -> list[np.ndarray]:
    import cv2

    from vsr._testclips import scene
    from vsr.video.source import frames_of

    if CLIP.exists():
        src = list(frames_of(CLIP, limit=n))
    else:  # without ../shared: a synthetic pan
        src = [scene(720, 1280, t) for t in range(n)]
    return [cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in src]


def encode(codec: str, preset: str | None, rgb: list[np.ndarray], folder: Path) -> tuple[float, int]:
    from vsr.video.colour import Colour
    from vsr.video.encoder import EncodeOptions
    from vsr.video.sink import VideoSink
    from vsr.video.source import Frame, SourceInfo

    class Source:  # what VideoSink reads of a source
        info = SourceInfo(width=1920, height=1080, bits=8, colour=Colour(1, 1, 1, 1, 8),
                          time_base=fractions.Fraction(1, 24), rate=fractions.Fraction(24), total=len(rgb),
                          total_exact=True, pix_fmt="yuv420p")

    target = folder / f"out-{codec}-{preset}.mkv"
    sink = VideoSink(target, Source(), EncodeOptions(codec=codec, preset=preset), 1920, 1080, print, copy=False)
    t = time.perf_counter()
    for i, a in enumerate(rgb):
        sink.write_frame(a, Frame(a, i, fractions.Fraction(1, 24), 1))
    sink.finish()
    return len(rgb) / (time.perf_counter() - t), target.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", action="append", help="encoder (repeat); default: libx264 libx265 libsvtav1 libvpx-vp9")
    p.add_argument("--preset", action="append", help="preset (repeat); default: vsr's for each encoder")
    p.add_argument("--frames", type=int, default=48)
    a = p.parse_args(argv)
    rgb = frames(a.frames)
    print(f"{len(rgb)} frames 1920×1080 from {CLIP.name if CLIP.exists() else 'a synthetic pan'}")
    print("| encoder | preset | fps | kB/frame |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as d:
        for codec in a.codec or ["libx264", "libx265", "libsvtav1", "libvpx-vp9"]:
            for preset in a.preset or [None]:
                fps, size = encode(codec, preset, rgb, Path(d))
                print(f"| {codec} | {preset or 'default'} | {fps:.1f} | {size / len(rgb) / 1000:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
