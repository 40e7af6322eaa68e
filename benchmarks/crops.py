"""Side-by-side crops for docs/models/README.md: bicubic | vsr | ground truth, from the validation sets.

    python benchmarks/crops.py ../shared/data        # writes benchmarks/figures/*.png
    python benchmarks/crops.py ../shared/data real   # only the real-footage figures (below)

Set5 (×4) shows the single-image model; the cockatoo clip (×4, frame 10, BI
downscaled, never trained on) shows the multi-frame models, and the realshort clip
(×4, frame 10; held out of mf-dis's training, not of mf-fast's) the handheld
footage where DIS alignment pays.

``real``: the models for real footage beside bicubic and the BI model of the same
size (a row per network size), on footage that is really compressed and was kept
out of their training — realshort as delivered (320×240 H.264, ×4, no ground truth
exists), realshort downscaled ×2 and its frame as the reference, and the sam2_gallery
clips (1280×720 at 1–2 Mbit/s) downscaled ×4 to 320×180 and as delivered (written to
figures/local/, not committed: the clips' licence is not stated; small models only).
Also the degradation figure: one crop of a public-domain photo through each step of
training's realistic chain.
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


def strip(source, item: int, t: int, box, models: list[str], scale: int, truth: bool = True) -> np.ndarray:
    it = source.items[item]
    y, x, size = box
    tiles = []
    for name in ["bicubic", *models]:
        model, info = load_model(name, scale)
        runner = create_runner(model, backend="torch", precision="fp32")
        sr = next(f for i, f in enumerate(upscale_clip(runner, it.lr)) if i == t)
        tiles.append(_label(sr[y : y + size, x : x + size], info.name))
    if truth:
        tiles.append(_label(it.hr[t][y : y + size, x : x + size], "ground truth"))
    return _row(tiles)


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([p for tile in tiles for p in (tile, gap)][:-1], axis=1)


def _delivered(path: Path, frames: int):
    """A clip's decoded frames as the LR (what a user feeds vsr), with nothing to compare against."""
    from vsr.evaluate import Item, Source, frames_of

    lr = list(frames_of(path, frames))
    return Source(path.stem, "video", [Item(path.stem, lr, lr)])


def real_footage(data: Path, out: Path) -> None:
    local = out / "local"
    local.mkdir(parents=True, exist_ok=True)

    def models(s: int, family: str = "mf-fast") -> list[str]:
        return [m for m in (family, f"{family}-real", f"{family}-real-gan") if _has(m, s)]

    def families(source, t: int, box, s: int, truth: bool = True) -> np.ndarray:
        """One row per network size that has a real model at this scale: bicubic | BI | real | real GAN."""
        rows = [strip(source, 0, t, box, models(s, f), s, truth) for f in ("mf-fast", "mf-dis", "mf-rec", "mf-lite")
                if _has(f"{f}-real", s)]
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        return np.concatenate(rows)[:-4]

    clip = data / "train_videos" / "realshort_320x240.mp4"
    Image.fromarray(families(_delivered(clip, 12), 10, (420, 240, 280), 4, truth=False)
                    ).save(out / "real_realshort_delivered_x4.png")  # as delivered
    src = load_source(clip, 2, max_frames=12)  # downscaled: its own frame is the reference
    Image.fromarray(families(src, 10, (100, 60, 160), 2)).save(out / "real_realshort_x2.png")
    # the sam2 clips with the small models only: the larger ones take minutes a frame at 1280×720 ×4 on a CPU
    for clip in sorted((data / "train_videos" / "sam2_gallery").glob("*.mp4")):
        src = load_source(clip, 4, max_frames=4)  # frame 2 of 4: both neighbours are real frames
        Image.fromarray(strip(src, 0, 2, (280, 520, 200), models(4), 4)).save(local / f"sam2_{clip.stem}_x4.png")
        Image.fromarray(strip(_delivered(clip, 4), 0, 2, (1120, 2080, 320), models(4), 4, truth=False)
                        ).save(local / f"sam2_{clip.stem}_delivered_x4.png")


def degradation_figure(data: Path, out: Path) -> None:
    """The same crop through each step of the realistic chain (every step drawn), middle frame of a 5-frame
    pseudo-video of a public-domain photo, each tile shown at the HR crop's size."""
    import cv2

    from train.config import DegradeConfig
    from train.degrade import RealisticDegradation
    from train.pseudo import camera_motion

    photo = np.asarray(Image.open(data / "train_images" / "photos" / "kodim03.png").convert("RGB"))[60:420, 40:400]
    rng = np.random.default_rng(3)
    hr = camera_motion(photo, 5, 192, rng, max_shift=8)
    every = DegradeConfig(plain=0.0, second_round=1.0, blur=1.0, noise=1.0, jpeg=1.0, codec=1.0, crf=(30, 30))
    steps = RealisticDegradation(4, every).steps(hr, np.random.default_rng(0))
    tiles = [_label(hr[2], "HR")]
    for name, clip in steps:
        f = np.clip(clip[2] * 255 + 0.5, 0, 255).astype(np.uint8)
        tiles.append(_label(cv2.resize(f, (192, 192), interpolation=cv2.INTER_NEAREST), name))
    Image.fromarray(np.concatenate([_row(tiles[:6]), np.full((4, 6 * 196 - 4, 3), 255, np.uint8),
                                    _row(tiles[6:] + [np.full_like(tiles[0], 255)] * (12 - len(tiles)))])
                    ).save(out / "degradation.png")


def main() -> int:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    OUT.mkdir(exist_ok=True)
    degradation_figure(data, OUT)
    real_footage(data, OUT)
    if sys.argv[2:] == ["real"]:
        return 0
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
