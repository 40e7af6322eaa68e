"""Text moving past, as a phone films it (×4, LR through H.264 CRF 30): what each real-footage model draws over it.

    python benchmarks/text.py -m quality-real,real-gan,path/to/mf-rec-real-gan_x4.safetensors

Writes benchmarks/figures/text.png (frame 10, one row per model, the truth last) and prints each output's worst
16×16 block error against the truth beside bicubic's (tests/test_picture.py holds every shipped real-footage model
to 1.3× bicubic's). The retired mf-rec-real-gan is in git's history: `git show 79af34e:vsr/weights/mf-rec-real-gan_x4.safetensors`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vsr._testclips import street_sign
from vsr.evaluate import upscale_clip
from vsr.resize import imresize
from vsr.runner import choose, open_runner
from vsr.video.recompress import recompress


def worst_block(out: np.ndarray, truth: np.ndarray, block: int = 16) -> float:
    d = np.abs(out.astype(np.float32) - truth.astype(np.float32)).mean(axis=2)
    h, w = d.shape[0] // block * block, d.shape[1] // block * block
    return float(d[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3)).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--models", default="quality-real,real-gan")
    args = ap.parse_args()
    hr = street_sign()
    lr = recompress([imresize(f, 0.25) for f in hr], crf=30)
    t, rows = 10, []

    def row(img: np.ndarray, text: str) -> np.ndarray:
        im = Image.fromarray(np.ascontiguousarray(img[60:330]))
        d = ImageDraw.Draw(im)
        d.rectangle([0, 0, 8 + 6 * len(text), 14], fill=(0, 0, 0))
        d.text((4, 1), text, fill=(255, 255, 255))
        return np.asarray(im)

    bic = imresize(lr[t], 4.0)
    print(f"bicubic: worst block {worst_block(bic, hr[t]):.1f}")
    for name in args.models.split(","):
        runner = open_runner(choose(name, 4, "video"), "torch", "fp32", warn=lambda _m: None)[0]
        out = list(upscale_clip(runner, lr))[t]
        print(f"{Path(name).stem}: worst block {worst_block(out, hr[t]):.1f}")
        rows.append(row(out, Path(name).stem))
    rows.append(row(hr[t], "ground truth"))
    out = Path(__file__).with_name("figures") / "text.png"
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
