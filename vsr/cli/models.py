"""``vsr models``: what vsr ships (:mod:`vsr.zoo`), with each weight file's own numbers, and the community models
vsr has checked (:mod:`vsr.catalogue`), which ``vsr models pull NAME`` downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.cli.app import app, say, stderr_console

models_app = typer.Typer(add_completion=False, no_args_is_help=False)
app.add_typer(models_app, name="models")


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
        from engines import Identity
        from engines.onnx_export import cached_onnx
        from vsr.weightfile import weights_id

        cached_onnx(model, Identity.of(model, weights_id(info), info.name))
        runs = "OpenVINO on a CPU, TensorRT on an NVIDIA GPU (it exports to ONNX); torch anywhere"
    except BackendError as e:
        runs = f"torch only: {e}"
    rows.append(("runs on", runs))
    return rows


def community_rows() -> list[dict[str, str]]:
    """One row per catalogue model, in the listing's columns."""
    from vsr import catalogue

    return [{"name": e.name, "job": f"{e.purpose}, community", "description": f"{e.description} ({e.licence}"
             + (", non-commercial" if e.non_commercial else "") + f"; {e.size / 1e6:.1f} MB)",
             "frames": "1", "scales": f"×{e.scale}", "params": "-",
             "validation": "pulled" if catalogue.pulled(e) else f"vsr models pull {e.name}"} for e in catalogue.entries()]


def as_json() -> list[dict]:
    """``vsr models --json``: one object per model, vsr's own and the community ones."""
    from vsr import catalogue
    from vsr.zoo import BICUBIC, ZOO, scales_of

    out = [{"name": e.name, "source": "vsr", "job": e.job, "description": e.description, "scales": scales_of(e.name),
            "licence": "MIT", "pulled": True} for e in ZOO if scales_of(e.name)]
    out.append({"name": BICUBIC.name, "source": "vsr", "job": BICUBIC.job, "description": BICUBIC.description,
                "scales": "any", "licence": "MIT", "pulled": True})
    out += [{"name": e.name, "source": "community", "job": e.purpose, "description": e.description,
             "scales": [e.scale], "licence": e.licence, "pulled": catalogue.pulled(e), "architecture": e.architecture,
             "size": e.size, "sha256": e.sha256, "url": e.url, "author": e.author, "title": e.title,
             "path": str(catalogue.path_of(e))} for e in catalogue.entries()]
    return out


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    markdown_: Annotated[bool, typer.Option("--markdown", help="print vsr's own models as Markdown (README's table)")] = False,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object per model (name, source, scales, licence, "
                                                      "pulled, …)")] = False,
    file: Annotated[Optional[Path], typer.Option("--file", help="describe a weight file (vsr's, or a community "
                                                                 ".pth/.safetensors) instead")] = None,
) -> None:
    """List the models: vsr's own (job, frames, scales, parameters, validation PSNR-Y) and the community ones it
    has checked, which `vsr models pull NAME` downloads.

    Example: vsr models pull realesr-general-x4v3
    """
    if ctx.invoked_subcommand is not None:
        return
    if file is not None:
        for key, value in describe_file(file):
            print(f"{key:>12}: {value}")
        return
    if markdown_:
        print(markdown())
        return
    if json_:
        import json

        print(json.dumps(as_json(), indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = ("vsr models (-m NAME); community models run once pulled; architectures without weights are for "
             "`python -m train`")
    ours, theirs = rows(), community_rows()
    if console.width >= 160:
        table = Table(title=title)
        for col in COLUMNS:
            table.add_column(col, no_wrap=col in ("name", "job", "scales"), overflow="fold")
        cells = [[r[c] for c in COLUMNS] for r in ours], [[r[c] for c in COLUMNS] for r in theirs]
    else:
        # Seven columns squeezed into a usual terminal fold every cell to a letter a line: name and scales
        # stay whole, the rest goes under the description.
        from rich.text import Text

        table = Table(title=title, show_lines=True)
        table.add_column("name", no_wrap=True)
        table.add_column("scales", no_wrap=True)
        table.add_column("model")

        def cell(r: dict[str, str]) -> list:
            facts = f"{r['job']}; frames {r['frames']}" + (f"; {r['params']} parameters" if r["params"] != "-" else "")
            return [r["name"], r["scales"], Text(r["description"]).append(f"\n{facts}\n{r['validation']}", "dim")]

        cells = [cell(r) for r in ours], [cell(r) for r in theirs]
    for row in cells[0]:
        table.add_row(*row)
    table.add_section()
    for row in cells[1]:
        table.add_row(*row)
    console.print(table)


class _Bar:
    """pooch's progress protocol (total, update, reset, close) on a Rich bar."""

    def __init__(self, name: str):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.p = Progress(TextColumn(f"pulling {name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=stderr_console(), transient=True)
        self.task, self.total = None, 0

    def update(self, n: int) -> None:
        if self.task is None:
            self.p.start()
            self.task = self.p.add_task("download", total=self.total or None)
        self.p.advance(self.task, n)

    def reset(self) -> None:
        if self.task is not None:
            self.p.reset(self.task, total=self.total or None)

    def close(self) -> None:
        self.p.stop()


@models_app.command()
def pull(
    name: Annotated[str, typer.Argument(help="a community model's name (see `vsr models`)")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Download a community model from its publisher, check its sha256 and keep it in vsr's cache
    (VSR_MODEL_MIRROR, a URL or a folder, replaces the publishers).

    Example: vsr models pull realesr-general-x4v3
    """
    from vsr import catalogue
    from vsr.errors import VsrError
    from vsr.zoo import entry

    e = catalogue.find(name)
    if e is None:
        if entry(name) is not None:
            raise VsrError(f"{name} ships with vsr: nothing to pull")
        raise VsrError(f"unknown community model {name!r}; to pull: {', '.join(x.name for x in catalogue.entries())}")
    if catalogue.pulled(e):
        say(f"{name} is already pulled: {catalogue.path_of(e)}")
        return
    path = catalogue.pull(e, None if quiet else _Bar(name))
    say(f"pulled {name} ({e.title}, ×{e.scale}, {e.licence}{', non-commercial use only' if e.non_commercial else ''})"
        f" → {path}")
