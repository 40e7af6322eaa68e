"""``vsr bench``: decode, model, encode and end-to-end fps (and peak memory) on a generated clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import ModelOpt, ScaleOpt, app, say
from vsr.errors import VsrError


@app.command()
def bench(
    model: ModelOpt = None,
    scale: ScaleOpt = None,
    backend: Annotated[str, typer.Option(help="all | torch | openvino | tensorrt (comma-separated)")] = "all",
    precision: Annotated[str, typer.Option(help="all | fp32 | bf16 | fp16 | int8 (comma-separated)")] = "all",
    size: Annotated[str, typer.Option(help="input size: 270p 360p 480p 540p 720p 1080p")] = "480p",
    frames: Annotated[int, typer.Option(min=3, help="frames in the generated clip")] = 100,
    repeat: Annotated[int, typer.Option(min=1, help="runs per measurement (the median is reported)")] = 3,
    end_to_end: Annotated[bool, typer.Option("--e2e/--no-e2e", help="also time `vsr upscale` end to end")] = True,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the results here as JSON")] = None,
) -> None:
    """Measure decode, model, encode and end-to-end fps (and peak memory) on a generated clip.

    Example: vsr bench -s 2 --size 480p --backend openvino --json bench.json
    """
    import tempfile

    from vsr.bench import SIZES, print_report, run_bench
    from vsr.runner import choose

    scale = choose(model, scale, "video").native
    if size not in SIZES:
        raise VsrError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    backends = ["torch", "openvino"] + (["tensorrt"] if _cuda() else []) if backend == "all" else backend.split(",")
    precisions = (["fp32", "bf16"] + (["fp16"] if _cuda() else []) + (["int8"] if "openvino" in backends else [])
                  if precision == "all" else precision.split(","))
    with tempfile.TemporaryDirectory(prefix="vsr-bench-") as d:
        report = run_bench(model, scale, backends, precisions, size, frames, repeat, Path(d), e2e=end_to_end, say=say)
    print_report(report)
    if json_out:
        json_out.write_text(report.to_json())
        say(f"wrote {json_out}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
