"""What a run shows and leaves behind: ``log.jsonl`` (and TensorBoard when installed), a progress bar with
loss, it/s and ETA, and ``curves.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path


class Log:
    """``log.jsonl`` (one record a line), mirrored to TensorBoard when it is installed."""

    def __init__(self, run_dir: Path):
        self.file = open(run_dir / "log.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.tb = None

    def write(self, rec: dict) -> None:
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()
        if self.tb is not None:
            flat = {f"val/{k}": v for k, v in _flatten(rec["val"]).items()} if "val" in rec else {
                f"train/{k}": v for k, v in rec.items() if k != "step"}
            for key, value in flat.items():
                self.tb.add_scalar(key, value, rec["step"])
            self.tb.flush()

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = float(v)
    return out


def plot(history: list[dict], path: Path) -> None:
    """Loss and validation PSNR against step, as a PNG (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    train_pts = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val_pts = [(h["step"], h["val"]["psnr"]) for h in history if "val" in h]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if train_pts:
        ax[0].plot(*zip(*train_pts))
        ax[0].set_yscale("log")
    ax[0].set_title("training loss")
    ax[0].set_xlabel("step")
    if val_pts:
        ax[1].plot(*zip(*val_pts), marker="o")
    ax[1].set_title("validation PSNR-Y (dB)")
    ax[1].set_xlabel("step")
    fig.tight_layout()
    tmp = path.with_name(".curves.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


class Progress:
    """Rich progress bar with loss, it/s and ETA; silent when disabled."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.2f} it/s"),
                          TimeRemainingColumn())
        self.p.start()
        self.task = self.p.add_task("train", total=total, completed=start, loss=float("nan"), rate=0.0)

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.enabled:
            self.p.update(self.task, completed=step, loss=loss, rate=rate)

    def note(self, text: str) -> None:
        if self.enabled:
            self.p.console.print(text)

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
