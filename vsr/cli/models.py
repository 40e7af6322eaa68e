"""``vsr models``: what vsr ships (:mod:`vsr.zoo`), with each weight file's own numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import app


def _params(path: Path) -> str:
    import math

    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        n = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def rows() -> list[dict[str, str]]:
    """One row per shipped model (and bicubic): name, job, frames, parameters per scale, validation per scale."""
    from vsr.zoo import BICUBIC, ZOO, describe, weight_files

    files = weight_files()
    out = []
    for e in ZOO:
        infos = describe(e.name)
        if not infos:
            continue
        frames = infos[0][1].frames
        recurrent = bool(infos[0][1].hparams.get("state"))
        params = " / ".join(dict.fromkeys(_params(files[(e.name, s)]) for s, _ in infos))
        scores = []
        for s, info in infos:
            v = info.validation
            val = info.validated_on()
            where = Path(str(val.get("folders", ["?"])[0])).stem + (f", LR at CRF {val['crf']}" if val.get("crf") else "")
            score = f"{v['psnr']:.2f} dB" if isinstance(v.get("psnr"), (int, float)) else "-"
            scores.append(f"×{s} {score} ({where})")
        out.append({"name": e.name, "job": e.job, "description": e.description,
                    "frames": f"{frames}{' + state' if recurrent else ''}", "scales": " ".join(f"×{s}" for s, _ in infos),
                    "params": params, "validation": "; ".join(scores)})
    out.append({"name": BICUBIC.name, "job": BICUBIC.job, "description": BICUBIC.description, "frames": "1",
                "scales": "any", "params": "0", "validation": "-"})
    return out


COLUMNS = ("name", "job", "description", "frames", "scales", "params", "validation")


def markdown() -> str:
    """The models table as docs/models/README.md shows it (a test keeps that copy in step)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(f"`{r[c]}`" if c == "name" else r[c] for c in COLUMNS) + " |" for r in rows()]
    return "\n".join(lines)


def describe_file(path: Path) -> list[tuple[str, str]]:
    """What a weight file is (vsr's or a community one) and what vsr will run it on."""
    from engines import BackendError, Descriptor
    from vsr.zoo import load_model

    model, info = load_model(str(path), None)
    d = Descriptor.of(model)
    rows = [("file", str(path)), ("architecture", info.arch), ("scale", f"×{info.scale}"),
            ("frames", str(info.frames)), ("parameters", f"{sum(p.numel() for p in model.parameters()):,}"),
            ("input size", f"any; padded to a multiple of {d.size_multiple}, at least {d.min_size} px"
                           + (", square" if d.square else ""))]
    if info.training.get("tags"):
        rows.append(("tags", ", ".join(info.training["tags"])))
    try:
        from engines.onnx_export import cached_onnx

        from engines import Identity
        from vsr.weightfile import weights_id

        cached_onnx(model, Identity.of(model, weights_id(info)))
        runs = "OpenVINO on a CPU, TensorRT on an NVIDIA GPU (it exports to ONNX); torch anywhere"
    except BackendError as e:
        runs = f"torch only: {e}"
    rows.append(("runs on", runs))
    return rows


@app.command()
def models(
    markdown_: Annotated[bool, typer.Option("--markdown", help="print the table as Markdown (README's)")] = False,
    file: Annotated[Optional[Path], typer.Option("--file", help="describe a weight file (vsr's, or a community "
                                                                 ".pth/.safetensors) instead")] = None,
) -> None:
    """List the models vsr ships: job, frames, scales with weights, parameters, validation PSNR-Y.

    Example: vsr models --file 4x-Compact.pth
    """
    if file is not None:
        for key, value in describe_file(file):
            print(f"{key:>12}: {value}")
        return
    if markdown_:
        print(markdown())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vsr models (-m NAME); architectures without weights are for `python -m train`")
    for col in COLUMNS:
        table.add_column(col, no_wrap=col in ("name", "job", "scales"), overflow="fold")
    for r in rows():
        table.add_row(*[r[c] for c in COLUMNS])
    Console().print(table)
