"""What a run reports: ``log.csv``, TensorBoard scalars, the console bar and messages, the loss plot.

Apart from the loop (:mod:`~instructprotein.train.loop`): the loop calls these once per
step; none of them changes what is trained.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from instructprotein.progress import Progress

log = logging.getLogger("instructprotein.train")


LOG_COLUMNS = ("step", "epoch", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s")


class _CsvLog:
    """``log.csv``, one row per optimiser step; on resume, rows after the checkpoint are dropped."""

    def __init__(self, path: Path, keep_until: int, enabled: bool):
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        rows = [r for r in self.read(path) if r["step"] <= keep_until] if keep_until > 0 else []
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in LOG_COLUMNS})
        self.fh = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - one row per step until close()
        self.writer = csv.DictWriter(self.fh, fieldnames=LOG_COLUMNS)

    def write(self, **row: Any) -> None:
        if not self.enabled:
            return
        self.writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in LOG_COLUMNS})
        self.fh.flush()

    def close(self) -> None:
        if self.enabled and not self.fh.closed:
            self.fh.close()

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        out = []
        with open(path, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r.get(LOG_COLUMNS[-1]) is None:  # a line cut short by a kill
                    continue
                row: dict[str, Any] = {}
                for k in LOG_COLUMNS:
                    v = r.get(k, "")
                    row[k] = None if v in ("", None) else (int(float(v)) if k in ("step", "tokens") else float(v))
                out.append(row)
        return out


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``log.csv`` (None where a value is missing, e.g. val_loss between evaluations)."""
    return _CsvLog.read(Path(run_dir) / "log.csv")


class _Board:
    def __init__(self, writer: Any):
        self.writer = writer

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None and value is not None and math.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _board(folder: Path, step: int, enabled: bool) -> _Board:
    """TensorBoard writer; on resume, events after the checkpoint's step are purged."""
    if not enabled:
        return _Board(None)
    from torch.utils.tensorboard import SummaryWriter

    return _Board(SummaryWriter(str(folder), purge_step=step + 1 if step > 0 else None))


_CONSOLE: Any = None


def _console():
    """One stderr console for the messages and the bar, so that messages print above a live bar."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(stderr=True)
    return _CONSOLE


def _say(show: bool) -> Callable[[str], None]:
    console = _console() if show else None

    def say(message: str) -> None:
        if console is not None:
            console.log(message)
        else:
            log.info(message)

    return say


def _reporter(show: bool) -> Progress:
    if not show:
        return Progress()
    from instructprotein.progress import RichProgress

    return RichProgress()


def _stop(reporter: Progress) -> None:
    stop = getattr(reporter, "stop", None)
    if stop is not None:
        stop()


class _TrainBar:
    """Steps, loss, validation loss, tokens/s, elapsed and ETA on stderr (rich)."""

    def __init__(self, stage: str, total: int, done: int, budget_s: float | None, elapsed_before: float):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self.budget_s = budget_s
        self.start = time.perf_counter() - elapsed_before
        self.bar = RichBar(
            TextColumn(f"[bold]{stage}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[budget]}"),
            console=_console(),
        )
        self.task = self.bar.add_task(stage, total=total, completed=done, loss="-", val="-", tps="-", budget="")
        self.bar.start()

    def update(self, step: int, loss: float, val: float | None, step_times: list[tuple[int, float]]) -> None:
        recent = step_times[-20:]
        tps = sum(t for t, _ in recent) / max(1e-9, sum(s for _, s in recent))
        budget = ""
        if self.budget_s:
            left = max(0.0, self.budget_s - (time.perf_counter() - self.start))
            budget = f"budget {int(left // 60)}:{int(left % 60):02d} left"
        self.bar.update(
            self.task,
            completed=step,
            loss=f"{loss:.3f}",
            val="-" if val is None else f"{val:.3f}",
            tps=f"{tps:,.0f}",
            budget=budget,
        )

    def stop(self) -> None:
        self.bar.stop()


def plot_losses(csv_path: str | Path, png_path: str | Path, title: str = "") -> Path | None:
    """Train loss (per step and smoothed) and validation loss against steps, from ``log.csv``."""
    rows = _CsvLog.read(Path(csv_path))
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in rows if r["train_loss"] is not None])
    train = np.array([r["train_loss"] for r in rows if r["train_loss"] is not None])
    val = [(r["step"], r["val_loss"]) for r in rows if r["val_loss"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    if len(train):
        ax.plot(steps, train, color="tab:blue", alpha=0.25, linewidth=0.8, label="train (per step)")
        smooth = np.empty_like(train)
        acc = 0.0
        for i, x in enumerate(train):  # exponential moving average, bias-corrected (as TensorBoard's)
            acc = 0.9 * acc + 0.1 * x
            smooth[i] = acc / (1 - 0.9 ** (i + 1))
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.6, label="train (smoothed)")
    if val:
        ax.plot(
            [s for s, _ in val],
            [v for _, v in val],
            "o-",
            color="tab:orange",
            linewidth=1.6,
            markersize=4,
            label="validation",
        )
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (nats per label token)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path
