"""Peak memory of `vsr upscale` against video length (it must not grow with duration),
and of `vsr image` making a 4K picture (tiled: it must stay under 2 GB).

    python benchmarks/memory.py                     # a 1-minute and a 10-minute 320×180 clip, ×2, bicubic
    python benchmarks/memory.py --model mf-fast     # the same through the default video model
    python benchmarks/memory.py --image             # 960×540 → 3840×2160 with vsr image's default model

The pipeline holds a few frames whatever the length (bounded queues, a sliding
window); this measures the peak RSS of the whole process for both lengths.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path


def clip(path: Path, seconds: int, w: int, h: int) -> Path:
    """A long clip, made fast: a short loop of scene frames, re-encoded for the whole length."""
    import av

    from vsr._testclips import scene

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
    rss, err, seconds = _peak_rss(cmd)
    frames = int(re.search(r"wrote .*?: (\d+) frames", err).group(1))
    return {"frames": frames, "peak_rss_mb": rss, "seconds": seconds}


def measure_image(folder: Path) -> dict:
    """A 960×540 photo-like picture → 3840×2160 with `vsr image -s 4` and its default model and tiling."""
    from PIL import Image

    from vsr._testclips import scene

    src = folder / "pic.png"
    Image.fromarray(scene(540, 960, 0)).save(src)
    cmd = [sys.executable, "-m", "vsr", "image", str(src), str(folder / "pic_x4.png"), "-s", "4", "--overwrite"]
    rss, err, seconds = _peak_rss(cmd)
    return {"output": "3840×2160", "peak_rss_mb": rss, "seconds": seconds, "model": err.splitlines()[0]}


def _peak_rss(cmd: list[str]) -> tuple[float, str, float]:
    """Peak RSS (MB) of a command run in a child process, its stderr, and its wall time."""
    from vsr.bench import run_measured

    t = time.perf_counter()
    rc, err, rss = run_measured(cmd)
    if rc:
        raise SystemExit(err)
    return round(rss, 1), err, round(time.perf_counter() - t, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="bicubic")
    ap.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--image", action="store_true", help="measure vsr image at 4K output instead")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        if args.image:
            print(json.dumps(measure_image(Path(d)), indent=2))
            return 0
        for m in args.minutes:
            src = clip(Path(d) / f"{m}min.mp4", m * 60, 320, 180)
            results[f"{m} min"] = measure(src, Path(d) / "out.mp4", args.model)
            print(m, "min:", results[f"{m} min"], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
