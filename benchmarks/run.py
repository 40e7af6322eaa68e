"""The numbers behind BENCHMARKS.md: vsr's default video models at 480p→960p (×2) and 270p→1080p (×4).

    python benchmarks/run.py                # every CPU backend and precision, median of 3 runs
    python benchmarks/run.py --repeat 5 --frames 200 --json benchmarks/results.json

Each configuration reports decode, encode, model-only and end-to-end fps (and the
end-to-end peak RSS), plus the floor a user gets without a learned model
(decode → OpenCV bicubic → the same encoder), so every row carries its ratio to
the floor. Run it on an idle machine: other work on the cores changes the numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from vsr.bench import COLUMNS, Report, print_report, run_bench, table_cells, title

CONFIGS = [(2, "480p"), (4, "270p")]


def markdown(report: Report) -> str:
    """One report as the Markdown table BENCHMARKS.md shows."""
    right = {"fps", "× floor", "peak RSS"}
    lines = [f"**{title(report)}**", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if c in right else "---" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_cells(report)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name or weights (default: vsr upscale's default)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="torch,openvino")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args()
    reports = []
    with tempfile.TemporaryDirectory(prefix="vsr-bench-") as d:
        for scale, size in CONFIGS:
            r = run_bench(args.model, scale, args.backends.split(","), args.precisions.split(","), size, args.frames,
                          args.repeat, Path(d), say=lambda m: print(m, file=sys.stderr, flush=True))
            print_report(r)
            reports.append(r)
    md = args.json.with_suffix(".md")
    md.write_text("\n\n".join(markdown(r) for r in reports) + "\n")
    args.json.write_text(json.dumps({"date": datetime.date.today().isoformat(), "command": " ".join(sys.argv),
                                     "reports": [asdict(r) for r in reports]}, indent=2))
    print(f"wrote {args.json} and {md} (the tables of BENCHMARKS.md)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
