"""What reading one segment's packets costs along a long film: the first, middle and last segment of a 1-hour file,
read by seeking to the segment's keyframe (what jobs do) and by demuxing from the start (what they did), in time,
packets demuxed and bytes read (/proc/self/io's rchar: every byte the process read).

    python benchmarks/reading.py [--minutes 60] [--container mp4|mkv|ts]

The film is made here: 10 s of a panning scene encoded once (H.264, 1280×720, a keyframe every 2 s, about 1 MB/s),
its packets copied again and again with shifted timestamps (a few seconds for an hour)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import av

from vsr._testclips import encode_scene
from vsr.segments import Halo, plan
from vsr.video.probe import PacketReader
from vsr.video.source import VideoSource


def rchar() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def make_film(path: Path, minutes: float) -> None:
    piece = path.with_name("piece.mkv")
    with av.open(str(piece), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "18", "g": "50"})
        v.width, v.height, v.pix_fmt = 1280, 720, "yuv420p"
        encode_scene(c, v, range(250))
    with av.open(str(piece)) as src:
        packets = [p for p in src.demux(src.streams.video[0]) if p.size]
        span = max(p.pts for p in packets) + packets[0].duration - min(p.pts for p in packets)
        with av.open(str(path), "w") as out:
            o = out.add_stream_from_template(src.streams.video[0], opaque=True)
            for k in range(round(minutes * 6)):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts, q.duration = p.pts + k * span, p.dts + k * span, p.duration
                    q.time_base, q.is_keyframe, q.stream = p.time_base, p.is_keyframe, o
                    out.mux(q)
    piece.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--container", default="mp4", choices=["mp4", "mkv", "ts"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        film = Path(d) / f"film.{args.container}"
        t = time.perf_counter()
        make_film(film, args.minutes)
        print(f"{film.name}: {film.stat().st_size / 1e6:.0f} MB, {args.minutes:g} min, made in "
              f"{time.perf_counter() - t:.1f} s")
        src = VideoSource(film, scan=True)
        m = src.packet_map()
        src.close()
        segments = plan(m, 30.0, Halo.of(3, 0))
        picks = {"first": segments[0], "middle": segments[len(segments) // 2], "last": segments[-1]}
        rows = []
        for how, seek in (("seek to the keyframe", True), ("demux from the start", False)):
            reader = PacketReader(film, 0, m)
            for where, s in picks.items():
                times, reads = [], []
                for _ in range(args.repeat):
                    before, demuxed, t = rchar(), reader.demuxed, time.perf_counter()
                    n = sum(1 for _ in reader.packets(s.decode_from, s.decode_to, seek=seek))
                    times.append(time.perf_counter() - t)
                    reads.append(rchar() - before)
                rows.append({"how": how, "segment": f"{where} ({s.index + 1} of {len(segments)})", "packets": n,
                             "demuxed": reader.demuxed - demuxed, "seconds": statistics.median(times),
                             "MB read": statistics.median(reads) / 1e6})
            reader.close()
    print("\n| how | segment | its packets | packets demuxed | time | MB read |\n|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['how']} | {r['segment']} | {r['packets']} | {r['demuxed']} | {r['seconds'] * 1000:.0f} ms | "
              f"{r['MB read']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
