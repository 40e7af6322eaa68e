"""Before/after numbers for the pipeline's optimisations: each one switched off in turn, end to end.

    python benchmarks/pipeline_ablation.py            # median of 3 runs per row, ×2 480p and ×4 270p

Rows (OpenVINO, bf16 where the CPU has it, x264 veryfast, the clips `vsr bench` makes):

* ``all on``: what `vsr upscale` does by default;
* ``1 OpenVINO stream``: one frame in flight (``VSR_OV_STREAMS=1``) instead of two, so the model
  does not overlap itself while the encoder bursts;
* ``1 frame at a time``: one synchronous request (``--tile`` larger than the frame takes the tiled path);
* ``1 encoder thread``: x264 limited to one thread (``VSR_ENCODER_THREADS=1``), the naive fix for the
  two stages fighting over 2 cores.

Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

from vsr.bench import end_to_end, machine, make_bench_clip

CONFIGS = [(2, "480p"), (4, "270p")]
VARIANTS = [
    ("all on", {}, []),
    ("1 OpenVINO stream", {"VSR_OV_STREAMS": "1"}, []),
    ("1 frame at a time", {}, ["--tile", "100000"]),
    ("1 encoder thread", {"VSR_ENCODER_THREADS": "1"}, []),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model (default: vsr upscale's default)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("pipeline_ablation.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vsr-ablation-") as d:
        for scale, size in CONFIGS:
            clip = make_bench_clip(Path(d), size, args.frames)
            base = ["-s", str(scale), "--backend", "openvino", "--precision", "auto", "--preset", "veryfast"]
            if args.model:
                base += ["-m", args.model]
            for label, env, extra in VARIANTS:
                saved = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                try:
                    fps, rss = end_to_end(clip, base + extra, args.repeat)
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                rows.append({"scale": scale, "size": size, "variant": label, "fps": round(fps, 1),
                             "peak_rss_mb": round(rss)})
                print(f"×{scale} {size}  {label:<22} {fps:6.1f} fps  {rss:5.0f} MB", flush=True)
    args.json.write_text(json.dumps({"date": datetime.date.today().isoformat(), "machine": machine(),
                                     "command": " ".join(sys.argv), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
