"""README's crop figure, made with ``vsr compare``: a held-out clip as a phone would deliver it (downscaled ×4, then
libx264 CRF 26), compared across vsr's models; the page's first crop (picked by vsr compare where bicubic's frame
has the most detail) is laid out beside the truth's.

    python benchmarks/compare_figure.py ../shared/data/val_video/car-shadow \
        -m fast-real,quality-real,real-gan,../shared/data/community_weights/realesr-animevideov3.pth   # README's
    python benchmarks/compare_figure.py ../shared/data/val_video/bmx-trees --out /tmp/bmx.png     # vsr's four

The page itself is kept beside the figure with ``--page``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def lr_clip(clip: Path, scale: int, frames: int, out: Path) -> list[np.ndarray]:
    """The clip's first ``frames`` frames, HR modcropped, downscaled with MATLAB's bicubic and written through
    libx264 CRF 26 to ``out`` (MP4); returns the HR frames."""
    from vsr.metrics import modcrop
    from vsr.resize import imresize
    from vsr.video.colour import to_8bit
    from vsr.video.recompress import encode
    from vsr.video.source import frames_of

    hr = [modcrop(to_8bit(f), scale) for f in frames_of(clip, frames)]
    lr = [imresize(f, 1.0 / scale) for f in hr]  # uint8 in, uint8 out
    encode(lr, out, crf=26, format="mp4")
    return hr


def crops_of(page: Path) -> tuple[list[tuple[str, np.ndarray]], tuple[int, int, int, int]]:
    """(model name, first crop) for every model on the page, bicubic first, and the crop's box in input pixels."""
    from PIL import Image

    text = page.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="images">(.*?)</script>', text, re.DOTALL).group(1)
    images = json.loads(blob)
    out = []
    for cls, key, name in re.findall(r'<section class="model([^"]*)" id="([^"]+)" data-model="([^"]+)"', text):
        uri = images[f"{key}-c0-f0"]
        tile = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))
        out.insert(len(out) if "reference" not in cls else 0, (name, tile))
    box = tuple(int(v) for v in re.search(r"<figcaption>1: (\d+), (\d+), (\d+) × (\d+)</figcaption>", text).groups())
    return out, box


def figure(tiles: list[tuple[str, np.ndarray]], out: Path, columns: int = 3) -> None:
    from PIL import Image, ImageDraw

    h, w = tiles[0][1].shape[:2]
    pad, label = 6, 18
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (w + pad) - pad, rows * (h + label + pad) - pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles):
        x, y = (i % columns) * (w + pad), (i // columns) * (h + label + pad)
        sheet.paste(Image.fromarray(tile), (x, y + label))
        draw.text((x + 2, y + 3), name, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=92)  # (JPEG at 92 for README; PNG where the name says so)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", type=Path, help="a held-out clip (a folder of frames or a video file)")
    ap.add_argument("-m", "--models", default="fast,fast-real,quality-real,real-gan")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--frames", type=int, default=12, help="frames of the clip encoded (compare shows 4 of them)")
    ap.add_argument("--out", type=Path, default=HERE / "figures" / "compare.jpg")
    ap.add_argument("--page", type=Path, help="keep vsr compare's page here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lr = Path(tmp) / f"{args.clip.stem}_crf26.mp4"
        hr = lr_clip(args.clip, args.scale, args.frames, lr)
        page = args.page or Path(tmp) / "page.html"
        cmd = [sys.executable, "-m", "vsr", "compare", str(lr), "-m", args.models, "-s", str(args.scale),
               "--frames", "4", "--at", "0", "-o", str(page), "--overwrite"]
        subprocess.run(cmd, check=True)
        tiles, (x, y, w, h) = crops_of(page)
    s = args.scale
    truth = hr[0][y * s:(y + h) * s, x * s:(x + w) * s]
    figure([("truth", truth), *tiles], args.out)
    print(f"wrote {args.out}: crop {x},{y} {w}×{h} of {args.clip.name} at ×{s}")


if __name__ == "__main__":
    main()
