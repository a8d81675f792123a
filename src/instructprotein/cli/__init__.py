"""``instructprotein``: one sub-command per pipeline stage.

Each command reads and writes files, so any stage can be rerun or moved to another
machine; ``run`` chains them for the embedded default and skips what is already done.
The commands live in one module per stage; this module assembles them and turns
:class:`~instructprotein.errors.InstructProteinError` (the project's own input errors) into a
one-line message and exit 1; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from instructprotein.cli.common import err
from instructprotein.cli.corpus import corpus_app
from instructprotein.cli.data import data_app
from instructprotein.cli.evaluate import evaluate
from instructprotein.cli.infer import classify, describe, design
from instructprotein.cli.instructions import instr_app
from instructprotein.cli.kg import kg_app
from instructprotein.cli.run import run
from instructprotein.cli.serve import serve
from instructprotein.cli.train import train_app
from instructprotein.errors import InstructProteinError

app = typer.Typer(
    help="Align human and protein language: data, knowledge graph, instructions, model.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(kg_app, name="kg")
app.add_typer(instr_app, name="instructions")
app.add_typer(corpus_app, name="corpus")
app.add_typer(train_app, name="train")
app.command("describe")(describe)
app.command("design")(design)
app.command("classify")(classify)
app.command("evaluate")(evaluate)
app.command("serve")(serve)
app.command("run")(run)


def main() -> None:
    try:
        app()
    except InstructProteinError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)  # one line, however long
        sys.exit(1)


if __name__ == "__main__":
    main()
