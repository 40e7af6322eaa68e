"""The numbers behind vsr.flow.is_cut: how alike consecutive frames are within one shot and across a cut.

    python benchmarks/scene_cuts.py ../shared/data

Within: every consecutive pair of the DAVIS training clips and the validation clips (real camera and object
motion, some of it fast and blurred). Across: the last frame of each clip followed by the first of every other
(a hard cut). Prints the spread of both features and what the shipped thresholds decide.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vsr.flow import cut_features, is_cut, luma8
from vsr.formats import list_images
from vsr.picture import read_rgb8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="../shared/data")
    args = ap.parse_args()
    dirs = sorted((args.data / "train_videos" / "davis").iterdir()) + sorted((args.data / "val_video").iterdir())
    clips = {d.name: [luma8(read_rgb8(p)) for p in list_images(d)] for d in dirs if d.is_dir()}
    within = [(cut_features(f[i], f[i + 1]), is_cut(f[i], f[i + 1])) for f in clips.values() for i in range(len(f) - 1)]
    across = [(cut_features(clips[a][-1], clips[b][0]), is_cut(clips[a][-1], clips[b][0]))
              for a in clips for b in clips if a != b]
    for label, pairs in (("within a shot", within), ("across a cut", across)):
        ncc = np.array([p[0][0] for p in pairs])
        err = np.array([p[0][1] for p in pairs])
        print(f"{label}: {len(pairs)} pairs; NCC min {ncc.min():.3f} / max {ncc.max():.3f}; "
              f"median error min {err.min():.1f} / max {err.max():.1f}; called a cut: {sum(p[1] for p in pairs)}")


if __name__ == "__main__":
    main()
