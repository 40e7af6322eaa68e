"""Peak memory of `vsr upscale` against video length: it must not grow with duration.

    python benchmarks/memory.py            # a 1-minute and a 10-minute 320×180 clip, ×2, bicubic

The pipeline holds a few frames whatever the length (bounded queues, a sliding
window); this measures the peak RSS of the whole process for both lengths.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def clip(path: Path, seconds: int, w: int, h: int) -> Path:
    """A long clip, made fast: a short loop of scene frames, re-encoded for the whole length."""
    import av

    from vsr.testclips import scene

    frames = [scene(h, w, i) for i in range(50)]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(seconds * 25):
            f = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def measure(src: Path, out: Path, model: str) -> dict:
    cmd = [sys.executable, "-m", "vsr", "upscale", str(src), str(out), "-s", "2", "-m", model, "--backend", "openvino",
           "--overwrite"]
    code = ("import resource, subprocess, sys, json\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "print(json.dumps([r.returncode, r.stderr, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n")
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    rc, err, rss = json.loads(res.stdout.strip().splitlines()[-1])
    if rc:
        raise SystemExit(err)
    frames = int(re.search(r"(\d+) frames", err).group(1))
    return {"frames": frames, "peak_rss_mb": round(rss / 1024, 1), "seconds": round(time.perf_counter() - t, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="bicubic")
    ap.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for m in args.minutes:
            src = clip(Path(d) / f"{m}min.mp4", m * 60, 320, 180)
            results[f"{m} min"] = measure(src, Path(d) / "out.mp4", args.model)
            print(m, "min:", results[f"{m} min"], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
