"""What ``instructprotein evaluate`` calls: run the tasks, print the table, say where the report is.

``instructprotein evaluate --model PATH --task NAME [--task ...] [--limit N]`` maps onto
:func:`evaluate_command`; ``instructprotein evaluate --list`` onto :func:`list_tasks_command`.
A task is a built-in name (:func:`list_tasks`) or the path of a task file (see
:mod:`instructprotein.evaluate.tasks` for the format). Errors a user can cause are
:class:`~instructprotein.errors.InputError`, raised before the model runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from instructprotein.evaluate.report_rows import summary_rows
from instructprotein.evaluate.tasks import builtin_tasks
from instructprotein.evaluate.tasks import list_tasks as _list_tasks

ALL = "all"


def list_tasks() -> list[tuple[str, str]]:
    """(name, description) of every built-in task."""
    return _list_tasks()


def list_tasks_command(console: Any = None) -> list[tuple[str, str]]:
    """Print the built-in tasks as a table; return them."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = list_tasks()
    table = Table(title="built-in evaluation tasks (or give a task file's path)")
    table.add_column("task", style="bold")
    table.add_column("description")
    for name, desc in rows:
        table.add_row(name, desc)
    console.print(table)
    return rows


def expand_tasks(tasks: Sequence[str | Path]) -> list[str | Path]:
    """``all`` -> every built-in task; ``heldout`` / ``paper`` -> those groups; anything else as given."""
    out: list[str | Path] = []
    names = list(builtin_tasks())
    for t in tasks:
        if str(t) == ALL:
            out += names
        elif str(t) == "heldout":
            out += [n for n in names if n.startswith("heldout_")]
        elif str(t) == "paper":
            out += [n for n in names if not n.startswith("heldout_")]
        else:
            out.append(t)
    return list(dict.fromkeys(out))


def results_table(results: dict[str, Any]) -> Any:
    """The summary as a rich table: task, rule, accuracy [95 % CI], AUPR, baselines, paper."""
    from rich.table import Table

    table = Table(title="evaluation (accuracy %, 95 % Wilson interval; AUPR %, 95 % bootstrap)")
    cols = [
        ("task", "task"),
        ("rule", "rule"),
        ("n", "n"),
        ("accuracy [95 % CI]", "accuracy"),
        ("AUPR", "aupr"),
        ("majority", "majority"),
        ("homology", "homology"),
        ("composition", "composition"),
        ("term freq.", "term_frequency"),
        ("paper", "paper"),
    ]
    for title, _ in cols:
        table.add_column(title, overflow="fold")
    last = None
    for row in summary_rows(results):
        first = row["task"] != last
        last = row["task"]
        table.add_row(
            *[
                row[k]
                if (first or k not in ("task", "n", "majority", "homology", "composition", "term_frequency", "paper"))
                else ""
                for _, k in cols
            ]
        )
    return table


def evaluate_command(
    model_path: str | Path,
    tasks: Sequence[str | Path],
    limit: int | None = None,
    kg: str | Path | None = None,
    instructions_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    *,
    decontamination_dir: str | Path | None = None,
    seed: int = 0,
    max_identity: float | None = None,
    homology: bool = True,
    retrieval: bool = False,
    threads: int | None = None,
    device: str | None = None,
    plots: bool = True,
    console: Any = None,
    show_progress: bool = True,
    scope_des: str | Path | None = None,
    task_limits: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Run :func:`~instructprotein.evaluate.runner.evaluate`, print the summary table and where the
    report went; return the results.

    ``tasks``: names, task-file paths, or ``all`` / ``paper`` / ``heldout``. ``out_dir``
    defaults to ``<model>/evaluation``. ``instructions_dir``: the instruction set the model
    was trained on (held-out tasks, decontamination, which proteins homology may use).
    ``scope_des``: SCOPe's description file for the SCOPe ranking tasks (without it they are
    left out of ``all`` / ``paper``, and an error when named).
    """
    from rich.console import Console

    from instructprotein.evaluate.runner import evaluate
    from instructprotein.progress import Progress, RichProgress

    console = console or Console()
    from instructprotein.evaluate.rank import resolve_scope_tasks

    console = console or Console()
    names = resolve_scope_tasks(tasks, expand_tasks(tasks), scope_des, console)
    out = Path(out_dir) if out_dir is not None else Path(model_path) / "evaluation"
    progress = RichProgress() if show_progress else Progress()
    try:
        results = evaluate(
            model_path,
            names,
            out_dir=out,
            limit=limit,
            task_limits=task_limits,
            kg=kg,
            decontamination_dir=decontamination_dir,
            instructions_dir=instructions_dir,
            seed=seed,
            max_identity=max_identity,
            homology=homology,
            retrieval=retrieval,
            device=device,
            plots=plots,
            threads=threads,
            progress=progress,
        )
    finally:
        if isinstance(progress, RichProgress):
            progress.stop()
    if summary_rows(results):  # choice tasks (describe, design and rank tasks print their own lines)
        console.print(results_table(results))
    from instructprotein.evaluate.report_rows import rank_rows

    for row in rank_rows(results):
        console.print(
            f"{row[0]} (n={row[1]}): model {row[2]} (mean log-prob, paper), {row[3]} (sum); chance {row[4]}; "
            f"homology {row[5]}; paper {row[6]}"
        )
    h = results.get("homology", {})
    if h.get("enabled"):
        console.print(f"homology transfer: hits at >= {h['max_identity']} identity dropped (decontamination threshold)")
    console.print(f"report: {out / 'report.md'}   results: {out / 'results.json'}   ({results['seconds']} s)")
    return results
