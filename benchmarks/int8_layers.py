"""Which layers cost a model its int8 loss: each convolution that int8 quantises is kept in float in turn (and any
set given with --keep), the engine calibrated as vsr calibrates it by default (its own scenes, or $VSR_CALIBRATION),
and PSNR-Y on val_video (×4 clean BI, the first --frames of each clip) compared with fp32.

    python benchmarks/int8_layers.py ../shared/data/val_video ../shared/data/community_weights/realesr-animevideov3.pth
    python benchmarks/int8_layers.py ../shared/data/val_video MODEL --frames 10 \\
        --keep node_conv2d_14/WithoutBiases --keep node_conv2d_14/WithoutBiases,node_conv2d_6/WithoutBiases
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="../shared/data/val_video")
    ap.add_argument("model", help="a vsr model name or a weight file")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--keep", action="append", default=[], help="comma-separated op names kept in float together "
                    "(repeatable); without it, each quantised convolution alone")
    args = ap.parse_args()

    import openvino as ov

    from engines import Identity, quantise
    from engines.openvino_backend import OpenVINORunner
    from vsr.evaluate import evaluate, load_source
    from vsr.int8 import calibration_for
    from vsr.runner import choose, load
    from vsr.weightfile import weights_id

    model, info = load(choose(args.model, args.scale, "video"))
    src = load_source(args.data, args.scale, max_frames=args.frames)
    cal = calibration_for(model, info)
    default = quantise.kept_in_float

    def score(precision: str, extra: list[str] = ()) -> tuple[float, OpenVINORunner]:
        os.environ["VSR_CACHE"] = tempfile.mkdtemp(prefix="vsr-int8-layers-")  # the key does not name `extra`
        quantise.kept_in_float = lambda m, first="float": default(m, first) + list(extra)
        try:
            r = OpenVINORunner(model, Identity.of(model, weights_id(info), info.name), precision=precision,
                               calibration=cal if precision == "int8" else None)
            return float(np.mean([s.psnr for s in evaluate(r, src, with_ssim=False)])), r
        finally:
            quantise.kept_in_float = default

    fp32, runner = score("fp32")
    graph = ov.Core().read_model(runner.onnx("u8")[0])
    kept = set(default(graph, cal.first_convolutions))
    convs = [op.get_friendly_name() for op in graph.get_ordered_ops()
             if quantise._is_conv(op) and op.get_friendly_name() not in kept]
    print(f"{info.name} ×{args.scale}: fp32 {fp32:.3f} dB; {len(convs)} convolutions quantised; calibration: "
          f"{cal.source}", flush=True)
    print(f"int8 as shipped: loss {fp32 - score('int8')[0]:.3f} dB", flush=True)
    for extra in ([k.split(",") for k in args.keep] or [[c] for c in convs]):
        t = time.perf_counter()
        print(f"{', '.join(extra)} in float: loss {fp32 - score('int8', extra)[0]:.3f} dB "
              f"[{time.perf_counter() - t:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
