"""`instructprotein serve`: the HTTP API (/docs) and the web page (/) for a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from instructprotein.cli.common import WorkOpt, graph_if_any, tuned_model
from instructprotein.errors import InstructProteinError


def serve(
    model: Annotated[
        Optional[Path], typer.Option("--model", help="Model folder (default: WORKDIR/runs/finetune/model).")
    ] = None,
    kg: Annotated[
        Optional[Path],
        typer.Option(
            "--kg",
            help="Knowledge graph: GO ids, design checks, retrieval (default: WORKDIR/kg.sqlite where it exists).",
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind (loopback by default; elsewhere every request needs a token: "
            "$INSTRUCTPROTEIN_TOKEN, or one generated and printed)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, ... (default: cuda where available).")] = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="No homologs in prompts.")] = False,
    allow_host: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allow-host", help="A Host header name to answer (repeat; '*' for any; default: the loopback names)."
        ),
    ] = None,
    read_timeout: Annotated[float, typer.Option(help="Seconds a client has to send a whole request.")] = 15.0,
    workdir: WorkOpt = None,
) -> None:
    """Serve the HTTP API and the web page until interrupted."""
    from instructprotein.serve.run import serve as run_server

    model, kg = tuned_model(model, workdir), graph_if_any(kg, workdir)
    try:
        run_server(
            model,
            kg,
            host,
            port,
            device=device,
            retrieval=False if no_retrieval else None,
            allowed_hosts=allow_host,
            read_timeout=read_timeout,
        )
    except OSError as exc:  # the address cannot be bound
        raise InstructProteinError(f"cannot serve on {host}:{port}: {exc}") from exc
