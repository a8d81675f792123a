"""Progress display that library code can report to without depending on a terminal.

Stages call ``progress.task(...)``/``advance``; the CLI passes a rich-backed reporter
(bars with ETA on stderr), library users and tests get the silent default.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """Silent reporter; subclasses draw. Also keeps per-step wall times for summaries."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[StepHandle]:
        start = time.perf_counter()
        handle = self._open(description, total)
        try:
            yield handle
        finally:
            handle.close()
            self.timings[description] = time.perf_counter() - start

    def track(self, items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
        with self.step(description, total) as handle:
            for item in items:
                yield item
                handle.advance()

    def log(self, message: str) -> None:  # noqa: ARG002 - silent by design
        return None

    def _open(self, description: str, total: float | None) -> StepHandle:
        return StepHandle()


class StepHandle:
    def advance(self, amount: float = 1) -> None:
        return None

    def close(self) -> None:
        return None


class RichProgress(Progress):
    """Bars with elapsed time and ETA on stderr (rich)."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar
        from rich.text import Text

        class CountColumn(ProgressColumn):
            """``done/total`` for counted steps; nothing for steps that only have a duration."""

            def render(self, task):  # type: ignore[no-untyped-def]
                if task.fields.get("uncounted"):
                    return Text("")
                total = f"{task.total:,.0f}" if task.total is not None else "?"
                return Text(f"{task.completed:,.0f}/{total}", style="progress.download")

        self.console = Console(stderr=True)
        self._bar = RichBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            CountColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._bar.start()

    def _open(self, description: str, total: float | None) -> StepHandle:
        bar = self._bar
        task = bar.add_task(description, total=total, uncounted=total is None)

        class _Handle(StepHandle):
            def advance(self, amount: float = 1) -> None:
                bar.advance(task, amount)

            def close(self) -> None:
                t = bar.tasks[task]
                if t.total is None:  # finished: show a full bar and the final count, if any
                    bar.update(
                        task, total=max(t.completed, 1), completed=max(t.completed, 1), uncounted=t.completed == 0
                    )
                else:
                    bar.update(task, completed=t.total)

        return _Handle()

    def log(self, message: str) -> None:
        self._bar.console.log(message)

    def stop(self) -> None:
        self._bar.stop()
