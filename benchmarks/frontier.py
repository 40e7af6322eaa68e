"""The speed/quality frontier: every shipped video model (and sr-lite per frame, and bicubic) on val_video at ×2
and ×4, with model-only and end-to-end fps at 480p→960p (×2), 360p→1080p (×3, with --scales) and 270p→1080p
(×4): BENCHMARKS.md's tables.

    python benchmarks/frontier.py ../shared/data/val_video --json benchmarks/frontier.json
    python benchmarks/frontier.py ../shared/data/val_video --no-speed    # quality only: needs no idle machine
    python benchmarks/frontier.py ../shared/data/val_video --no-quality --models mf-fast,mf-dis   # speed only

Quality: PSNR-Y / SSIM-Y / tOF over the first ``--max-frames`` frames of each clip, torch fp32 (``vsr eval``'s
numbers). Speed: ``vsr bench`` on its generated clip, OpenVINO at the CPU's best precision (bf16 where it is
native), measured once per network (a GAN fine-tune runs at its fidelity model's speed by construction). Run the
speed part on an idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

from engines.cpu import has_native_bf16
from engines.torch_backend import TorchRunner
from vsr.bench import machine, run_bench
from vsr.evaluate import evaluate, load_source, mean, mean_tof
from vsr.zoo import ZOO, file_scale, load_model, looks_like_path, scales_of

SIZES = {2: "480p", 3: "360p", 4: "270p"}  # ×3: 640×360 → 1920×1080


def quality(model, src) -> dict:
    scores = evaluate(TorchRunner(model), src, with_tof=True)
    (p, s), t = mean(scores), mean_tof(scores)
    return {"psnr": round(p, 2), "ssim": round(s, 4), "tof": round(t, 3)}


def speed(name: str, scale: int, precision: str, frames: int, repeat: int, workdir: Path) -> dict:
    r = run_bench(name, scale, ["openvino"], [precision], SIZES[scale], frames, repeat, workdir,
                  say=lambda m: print(m, file=sys.stderr, flush=True))
    fps = {row.stage: row.fps for row in r.rows if row.stage in ("model", "end-to-end")}
    return {"model_fps": round(fps.get("model", 0.0), 1), "e2e_fps": round(fps.get("end-to-end", 0.0), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="../shared/data/val_video")
    ap.add_argument("--max-frames", type=int, default=20)
    ap.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--frames", type=int, default=60, help="frames in vsr bench's clip")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--models", default="", help="comma-separated names or weight files (default: every video "
                                                 "model, sr-lite, bicubic)")
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    precision = "bf16" if has_native_bf16() else "fp32"
    names = args.models.split(",") if args.models else [e.name for e in ZOO if e.job == "video"] + ["sr-lite", "bicubic"]
    rows, seen = [], {}
    with tempfile.TemporaryDirectory(prefix="vsr-frontier-") as d:
        for scale in map(int, args.scales.split(",")):
            src = load_source(args.data, scale, max_frames=args.max_frames) if args.quality else None
            for name in names:
                scales = [file_scale(name)] if looks_like_path(name) else scales_of(name)
                if name != "bicubic" and scale not in scales:
                    continue
                model, info = load_model(name, scale)
                row = {"model": name, "scale": scale, **(quality(model, src) if src else {})}
                if args.speed and name != "bicubic":
                    key = (info.arch, json.dumps(info.hparams, sort_keys=True), scale)  # one network, one speed
                    if key not in seen:
                        seen[key] = speed(name, scale, precision, args.frames, args.repeat, Path(d))
                    row.update(seen[key])
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    head = "| model | ×s | val_video PSNR-Y / SSIM-Y | tOF | model-only fps | end-to-end fps |"
    lines = [head, "|---|---|---|---:|---:|---:|"]
    for r in rows:
        q = (f"{r['psnr']:.2f} / {r['ssim']:.4f} | {r['tof']:.3f}") if "psnr" in r else "- | -"
        lines.append(f"| `{r['model']}` | ×{r['scale']} | {q} | {r.get('model_fps', '-')} | {r.get('e2e_fps', '-')} |")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"date": datetime.date.today().isoformat(), "command": " ".join(sys.argv),
                                         "machine": machine(), "precision": precision, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
