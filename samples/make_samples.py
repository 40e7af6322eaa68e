"""Regenerate the bundled samples from public-domain photos (imageio's standard images).

    python samples/make_samples.py ../shared/data/train_images/photos

* photo.png: a 256×192 crop of kodim03 (Kodak test set), downscaled ×2 with
  MATLAB-compatible bicubic, so `vsr image` has something small to enlarge;
* clip.mp4: 2 s, 320×180, 25 fps, a smooth camera move (pan, slight zoom)
  across rommel.jpg, downscaled ×4 (BI), H.264 with a 440 Hz AAC tone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from vsr._testclips import _write_tone
from vsr.resize import imresize

HERE = Path(__file__).resolve().parent


def photo(src: Path) -> None:
    img = np.array(Image.open(src / "kodim03.png").convert("RGB"))
    crop = img[60 : 60 + 384, 200 : 200 + 512]
    Image.fromarray(imresize(crop, 0.5)).save(HERE / "photo.png", optimize=True)


def clip(src: Path, frames: int = 50, fps: int = 25) -> None:
    img = cv2.cvtColor(cv2.imread(str(src / "rommel.jpg")), cv2.COLOR_BGR2RGB)
    out_w, out_h, s = 320, 180, 4
    with av.open(str(HERE / "clip.mp4"), "w") as out:
        out.metadata["title"] = "vsr sample (rommel.jpg, public domain)"
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = out_w, out_h, "yuv420p"
        v.options = {"crf": "20", "preset": "slow"}
        v.codec_context.colorspace, v.codec_context.color_range = 6, 1  # BT.601 (SD), limited
        v.codec_context.color_primaries, v.codec_context.color_trc = 6, 6
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        a.metadata["language"] = "eng"
        cx, cy = 1500.0, 1150.0
        for i in range(frames):
            t = i / (frames - 1)
            zoom = 1.0 + 0.08 * t
            x0, y0 = cx - 400 + 260 * t, cy - 200 + 40 * np.sin(np.pi * t)
            m = np.array([[zoom, 0, -(x0 - out_w * s / 2) * zoom - out_w * s / 2 * (zoom - 1)],
                          [0, zoom, -(y0 - out_h * s / 2) * zoom - out_h * s / 2 * (zoom - 1)]])
            hr = cv2.warpAffine(img, m, (out_w * s, out_h * s), flags=cv2.INTER_AREA)
            lr = imresize(hr, 1 / s)
            f = av.VideoFrame.from_ndarray(lr, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="itu601", dst_color_range="MPEG")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        _write_tone(out, a, frames / fps)


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/train_images/photos")
    photo(src)
    clip(src)
    for p in sorted(HERE.glob("*.*")):
        print(f"{p.name}: {p.stat().st_size / 1024:.0f} KiB")
