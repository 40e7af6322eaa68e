"""``vsr eval``: PSNR/SSIM (Y, the SR protocol) and, for video, tOF of a model next to bicubic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vsr.cli.app import ModelOpt, ScaleOpt, app, count_bar, load_runner
from vsr.errors import VsrError


@app.command("eval")
def eval_(
    hr: Annotated[Path, typer.Argument(help="an HR image or a folder of them, a paired HR/ LR/ folder, a video, a "
                                            "folder of frames or a folder of clips (videos or frame folders)")],
    scale: ScaleOpt = None,
    model: ModelOpt = None,
    backend: Annotated[str, typer.Option(help="torch (the default here: the reference, so scores are the same on "
                                              "every machine) | auto | openvino | tensorrt (what that engine makes)")] = "torch",
    precision: Annotated[str, typer.Option(help="fp32 (the default here, as the reference) | auto | bf16 | fp16 | int8")] = "fp32",
    max_frames: Annotated[int, typer.Option(min=1, help="frames to score per video clip (the first ones)")] = 30,
    crf: Annotated[int, typer.Option(min=0, max=51, help="encode each clip's LR with libx264 at this CRF first, as real footage "
                                          "arrives (the real-footage protocol: 26); 0 = clean BI")] = 0,
    state: Annotated[bool, typer.Option(help="carry a recurrent model's hidden state from frame to frame; "
                                             "--no-state starts it from zero at every frame (the ablation)")] = True,
    temporal: Annotated[str, typer.Option(help="video: the temporal stage after the model, as vsr upscale runs it "
                                               "(auto: on for learned models that see one frame at a time; on; off)")] = "auto",
) -> None:
    """PSNR/SSIM (Y, SR protocol) of a model and of bicubic, per image or clip and mean.

    Example: vsr eval ../shared/data/val_video --scale 4 --max-frames 20
    """
    from rich.console import Console
    from rich.table import Table

    from vsr.evaluate import Source, evaluate, is_video, iter_source, mean, mean_tof
    from vsr.runner import choose

    video = is_video(hr)
    scale = choose(model, scale, "video" if video else "image").scale if model != "bicubic" else (scale or 2)
    if crf and not video:
        raise VsrError("--crf applies to video (a clip, a folder of frames or a folder of clips)")
    src, items = iter_source(hr, scale, max_frames=max_frames if video else 0, crf=crf)
    bic, _ = load_runner("bicubic", scale, "image", "torch", "fp32", quiet=True)
    columns = [("bicubic", bic)]
    if model != "bicubic":
        runner, info = load_runner(model, scale, "video" if video else "image", backend, precision, quiet=False)
        if not state and not getattr(runner.model, "state_channels", 0):
            raise VsrError(f"--no-state: {info.name} has no hidden state")
        columns.append((info.name + ("" if state else ", state reset every frame"), runner))
    from vsr.jobs import temporal_for

    stages = [temporal_for(temporal, r) if video else None for _, r in columns]
    columns = [(name + (", temporal stage" if st is not None else ""), r) for (name, r), st in zip(columns, stages)]
    results: list[tuple[str, list]] = [(name, []) for name, _ in columns]
    per_item = (max_frames if video else 1) * len(columns)  # frames through the columns (a clip may have fewer)
    with count_bar() as bar:
        task = bar.add_task("scoring", total=src.count * per_item)
        for i, item in enumerate(items):  # each clip or picture through every column, then let go of it
            one = Source(src.name, src.kind, [item])
            bar.update(task, description=f"scoring {item.name}")
            for (_, scores), (_, r), st in zip(results, columns, stages):
                scores += evaluate(r, one, with_tof=video, state=state, temporal=st,
                                   keep=lambda *_: bar.advance(task))
            bar.update(task, completed=(i + 1) * per_item)
    title = (f"LR through libx264 CRF {crf}; " if crf else "") + "PSNR / SSIM on Y"
    title += " / tOF (flicker, lower is better)" if video else ""
    table = Table(title=f"{hr} ×{scale}: {title}")
    table.add_column("video" if video else "image")
    for name, _ in results:
        table.add_column(name, justify="right")

    def cell(p: float, s: float, tof: float | None) -> str:
        return f"{p:.2f} / {s:.4f}" + (f" / {tof:.3f}" if tof is not None else "")

    for i, first in enumerate(results[0][1]):
        table.add_row(first.name, *[cell(sc[i].psnr, sc[i].ssim, sc[i].tof) for _, sc in results])
    if len(results[0][1]) > 1:
        table.add_row("mean", *[cell(*mean(sc), mean_tof(sc)) for _, sc in results], style="bold")
    Console(width=max(100, 40 + 30 * len(results))).print(table)

