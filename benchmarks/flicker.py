"""Is a model's tOF flicker? tOF beside two measures that take the motion from the ground truth instead.

    python benchmarks/flicker.py ../shared/data/val_video -s 2 --crf 26 -m bicubic,mf-lite,mf-lite-real

tOF (TecoGAN, what `vsr eval` reports) compares optical flow estimated on the output with flow estimated on the
ground truth, so it also rises when the output has less structure for the flow estimator to follow (a model
that removes codec noise and grain), not only when it flickers. Per model, mean over clips (first frames, LR
made as `vsr eval` makes it):

* tOF: as `vsr eval`.
* warp: warping error over the ground truth's (`vsr.metrics.warp_error_pair`): > 0 flickers, < 0 steadier.
* diff: mean |(out_t − out_{t−1}) − (gt_t − gt_{t−1})| on Y, what training's temporal term minimises.
* detail: fine-detail energy over the ground truth's (texture.py's number).
"""

from __future__ import annotations

import numpy as np
from texture import clips_and_models, detail

from engines.torch_backend import TorchRunner
from vsr.evaluate import upscale_clip
from vsr.metrics import rgb_to_y, tof_pair, warp_error_pair
from vsr.zoo import load_model


def steps(outs: list[np.ndarray], hr: list[np.ndarray], hr_y: list[np.ndarray], hr_detail: list[float],
          shave: int) -> list[tuple[float, float, float, float]]:
    """Per step t: tOF, warping error, frame-difference error, detail / truth's (the truth's Y and detail given)."""
    ys = [rgb_to_y(o) for o in outs]
    rows = []
    for t in range(1, len(outs)):
        diff = np.abs((ys[t] - ys[t - 1]) - (hr_y[t] - hr_y[t - 1])).mean()
        pair = (outs[t - 1], outs[t], hr[t - 1], hr[t])
        rows.append((tof_pair(*pair), warp_error_pair(*pair), float(diff), detail(ys[t], shave) / hr_detail[t]))
    return rows


def main() -> None:
    args, src, names = clips_and_models(__doc__, "bicubic,mf-lite-real")
    print(f"×{args.scale}{f', LR at CRF {args.crf}' if args.crf else ''}, first {args.max_frames} frames of "
          f"{len(src.items)} clips; mean over clips")
    print("| model | tOF | warp | diff | detail |")
    print("|---|---|---|---|---|")
    truth_y = [[rgb_to_y(h) for h in item.hr] for item in src.items]  # once, not once per model
    truth_detail = [[detail(y, args.scale) for y in ys] for ys in truth_y]
    for name in names:
        runner = TorchRunner(load_model(name, args.scale)[0], precision="fp32")
        per_clip = [np.mean(steps(list(upscale_clip(runner, item.lr)), item.hr, ys, ds, args.scale), axis=0)
                    for item, ys, ds in zip(src.items, truth_y, truth_detail)]
        tof, warp, diff, det = np.mean(per_clip, axis=0)
        print(f"| {name} | {tof:.3f} | {warp:+.3f} | {diff:.3f} | {det:.3f} |", flush=True)


if __name__ == "__main__":
    main()
