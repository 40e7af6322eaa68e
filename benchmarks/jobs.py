"""Long jobs: what segments, Ray and a kill-and-resume cost, and a model of the speed-up past one machine.

    python benchmarks/jobs.py [--seconds 120] [--size 320x180] [-s 2] [--out benchmarks/jobs.json]
    python benchmarks/jobs.py --seconds 60 --segment-seconds 15 --rounds 3 --only-cost --out benchmarks/jobs_cost.json

On a generated clip (moving scene, AAC audio, the encoder's default keyframe interval) it times ``vsr upscale``
as a user runs it:

- single pass (``--segment-seconds 0``), segmented (the default), ``--ray`` (an embedded Ray on this machine),
  interleaved for ``--rounds`` rounds (medians: a shared 2-core machine drifts by 10% between runs);
- killed (SIGKILL) half-way through a segmented run, then the same command again: both runs together;

then, in this process, each segment on its own (the per-segment times a cluster would see) and the rest of the job
(probe, reading packets, join). The multi-node speed-up is *modelled* from those times: segments given out
longest-first to N workers like this machine, plus the driver's own work, which does not spread.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vsr._testclips import ClipSpec, make_clip
from vsr.jobs import Job, Local, Reporter, Settings


def vsr(*args, kill_after: float | None = None) -> float:
    """Wall time of one ``vsr upscale`` run (killed with SIGKILL after ``kill_after`` seconds if given)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "vsr", "upscale", *map(str, args), "-q"], stderr=subprocess.PIPE,
                         text=True)
    try:
        p.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"vsr upscale {' '.join(map(str, args))} failed: {p.stderr.read()}")
    return time.perf_counter() - t0


class Timed(Local):
    """The local scheduler, timing each segment."""

    def __init__(self, runner):
        super().__init__(runner)
        self.times: list[tuple[int, float]] = []

    def run(self, todo, done, count, stop, warn):
        for task, source in todo:
            t0 = time.perf_counter()
            super().run([(task, source)], done, count, stop, warn)
            self.times.append((task.segment.end - task.segment.first, time.perf_counter() - t0))


def makespan(times: list[float], workers: int) -> float:
    """Longest-processing-time-first onto ``workers``: the time the last one finishes."""
    loads = [0.0] * workers
    for t in sorted(times, reverse=True):
        heapq.heapreplace(loads, loads[0] + t)
    return max(loads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("-s", "--scale", type=int, default=2)
    ap.add_argument("--segment-seconds", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only-cost", action="store_true", help="skip the kill and the per-segment model")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/jobs.json"))
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    res: dict = {"clip": f"{args.size}, {args.seconds:g} s at 25 fps, x264 default keyframes, AAC", "scale": args.scale,
                 "cpu": os.popen("grep -m1 'model name' /proc/cpuinfo").read().split(":")[-1].strip()}
    with tempfile.TemporaryDirectory(prefix="vsr-jobs-bench-") as d:
        d = Path(d)
        src = make_clip(d / "in.mp4", ClipSpec(width=w, height=h, frames=int(args.seconds * 25)))
        common = ["-s", args.scale, "--overwrite"]
        seg = ["--segment-seconds", args.segment_seconds]
        vsr(src, d / "warm.mp4", "--segment-seconds", 0, *common)  # engine cache and page cache warm
        runs = {"single_s": ["--segment-seconds", 0], "segmented_s": seg, "ray_s": [*seg, "--ray"]}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.rounds):
            for k, a in runs.items():
                times[k].append(vsr(src, d / "out.mp4", *a, *common))
        res.update({k: statistics.median(v) for k, v in times.items()})
        res["runs"] = times
        res["segmenting_cost"] = res["segmented_s"] / res["single_s"] - 1
        res["ray_cost"] = res["ray_s"] / res["segmented_s"] - 1
        if args.only_cost:
            args.out.write_text(json.dumps(res, indent=1) + "\n")
            print(json.dumps(res, indent=1))
            return
        first = vsr(src, d / "killed.mp4", *seg, *common, kill_after=res["segmented_s"] / 2)
        assert not (d / "killed.mp4").exists()
        res["killed_first_s"], res["killed_resume_s"] = first, vsr(src, d / "killed.mp4", *seg, *common)
        res["killed_total_s"] = first + res["killed_resume_s"]

        from vsr.runner import choose, open_runner

        choice = choose(None, args.scale, "video")
        runner, info = open_runner(choice, "auto", "auto", warn=lambda _m: None)
        res["model"] = info.name
        sched = Timed(runner)
        job = Job(Settings(scale=args.scale, segment_seconds=args.segment_seconds, restart=True), Reporter(),
                  threading.Event()).use(runner, info)
        job.scheduler = sched
        t0 = time.perf_counter()
        job.file(src, d / "timed.mp4")
        total = time.perf_counter() - t0
    seg = [t for _, t in sched.times]
    res["segments"] = [{"frames": n, "seconds": round(t, 3)} for n, t in sched.times]
    res["driver_s"] = total - sum(seg)  # probe, packets, journal, join: stays on the driver
    per_frame = sum(seg) / sum(n for n, _ in sched.times)
    res["modelled"] = {}
    for label, times in [("this clip", seg), ("a 2-hour film (240 segments of 30 s)", [per_frame * 750] * 240)]:
        one = makespan(times, 1) + res["driver_s"] * (len(times) / len(seg))
        res["modelled"][label] = {n: round(one / (makespan(times, n) + res["driver_s"] * (len(times) / len(seg))), 2)
                                  for n in (1, 2, 4, 8, 16)}
    res["kill_resume_ratio"] = res["killed_total_s"] / res["segmented_s"]
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
