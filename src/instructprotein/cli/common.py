"""What every command module shares: the two consoles, common options, the progress display."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="Data cache (default: $INSTRUCTPROTEIN_CACHE or the user cache dir).")]
WorkOpt = Annotated[Optional[Path], typer.Option("--workdir", help="Outputs of this run (default: $INSTRUCTPROTEIN_WORKDIR or ./instructprotein-work).")]
KgOpt = Annotated[Optional[Path], typer.Option("--kg", help="Knowledge graph file (default: WORKDIR/kg.sqlite).")]


def progress_bar():
    """Bars with ETA on stderr; imported lazily so that `--help` stays fast."""
    from instructprotein.progress import RichProgress

    return RichProgress()
