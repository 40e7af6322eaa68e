"""Side-by-side crops for README: bicubic | vsr | ground truth, from the validation sets.

    python benchmarks/crops.py ../shared/data      # writes benchmarks/figures/*.png

Set5 (×4) shows the single-image model; the cockatoo clip (×4, frame 10, BI
downscaled, never trained on) shows the multi-frame models, and the realshort clip
(×4, frame 10; held out of mf-dis's training, not of mf-fast's) the handheld
footage where DIS alignment pays.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engines import create_runner
from vsr.evaluate import load_source, upscale_clip
from vsr.zoo import default_model, load_model, weight_files

OUT = Path(__file__).with_name("figures")


def _label(img: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 8 + 7 * len(text), 16], fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def strip(source, item: int, t: int, box, models: list[str], scale: int) -> np.ndarray:
    it = source.items[item]
    y, x, size = box
    tiles = []
    for name in ["bicubic", *models]:
        model, info = load_model(name, scale)
        runner = create_runner(model, backend="torch", precision="fp32")
        sr = next(f for i, f in enumerate(upscale_clip(runner, it.lr)) if i == t)
        tiles.append(_label(sr[y : y + size, x : x + size], info.name))
    tiles.append(_label(it.hr[t][y : y + size, x : x + size], "ground truth"))
    gap = np.full((size, 4, 3), 255, np.uint8)
    return np.concatenate([p for tile in tiles for p in (tile, gap)][:-1], axis=1)


def main() -> int:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    OUT.mkdir(exist_ok=True)
    s = 4
    set5 = load_source(data / "val" / "Set5", s)
    image_model = default_model("image", s)
    for i, (name, box) in enumerate([("butterfly", (60, 60, 128)), ("baby", (200, 180, 160))]):
        idx = next(k for k, it in enumerate(set5.items) if it.name == name)
        Image.fromarray(strip(set5, idx, 0, box, [image_model], s)).save(OUT / f"set5_{name}_x{s}.png")
    video = load_source(data / "train_videos" / "cockatoo_1280x720_yuv420.mp4", s, max_frames=12)
    models = [m for m in ("mf-fast", "mf-fast-gan", "mf-dis", "mf-dis-gan") if _has(m, s)]
    Image.fromarray(strip(video, 0, 10, (160, 470, 200), models, s)).save(OUT / f"cockatoo_x{s}.png")
    video = load_source(data / "train_videos" / "realshort_320x240.mp4", s, max_frames=12)
    models = [m for m in ("mf-fast", "mf-dis", "mf-dis-gan") if _has(m, s)]
    Image.fromarray(strip(video, 0, 10, (30, 60, 180), models, s)).save(OUT / f"realshort_x{s}.png")
    for p in sorted(OUT.glob("*.png")):
        print(p)
    return 0


def _has(name: str, scale: int) -> bool:
    return (name, scale) in weight_files()


if __name__ == "__main__":
    sys.exit(main())
