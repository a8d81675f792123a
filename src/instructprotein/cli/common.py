"""What every command module shares: the two consoles, common options, the progress display."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

CacheOpt = Annotated[
    Optional[Path],
    typer.Option("--cache-dir", help="Data cache (default: $INSTRUCTPROTEIN_CACHE or the user cache dir)."),
]
WorkOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--workdir", help="Outputs of this run (default: $INSTRUCTPROTEIN_WORKDIR or ./instructprotein-work)."
    ),
]
KgOpt = Annotated[Optional[Path], typer.Option("--kg", help="Knowledge graph file (default: WORKDIR/kg.sqlite).")]


def tuned_model(model: Path | None, workdir: Path | None) -> Path:
    """``--model``, or the main job's tuned model in WORKDIR: after `instructprotein run`,
    `instructprotein describe SEQ` needs no flag."""
    from instructprotein.errors import InputError
    from instructprotein.paths import work_dir

    if model is not None:
        if not model.expanduser().is_dir():
            raise InputError("model folder not found", model)
        return model
    guess = work_dir(workdir) / "runs" / "finetune" / "model"
    if not (guess / "config.json").is_file():
        raise InputError(
            f"no --model given and no tuned model at {guess}: run `instructprotein run` "
            "(or `train finetune`), or pass --model / --workdir"
        )
    return guess


def graph_if_any(kg: Path | None, workdir: Path | None, *, warn: bool = True) -> Path | None:
    """``--kg``, or WORKDIR/kg.sqlite where it exists; without one, say what is lost (no
    homologs' evidence in the prompt, GO names left unmapped) instead of answering worse silently."""
    from instructprotein.paths import default_kg_path

    if kg is not None:
        return kg
    guess = default_kg_path(workdir)
    if guess.is_file():
        return guess
    if warn:
        err.print(
            f"[yellow]no knowledge graph (--kg, or {guess}): no homologs' evidence in the prompts, "
            "GO names not mapped to ids, designs not checked against known proteins[/]"
        )
    return None


def progress_bar():
    """Bars with ETA on stderr; imported lazily so that `--help` stays fast."""
    from instructprotein.progress import RichProgress

    return RichProgress()
