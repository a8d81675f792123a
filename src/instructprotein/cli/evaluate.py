"""`instructprotein evaluate`: the built-in (or your own) tasks, the model beside its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from instructprotein.cli.common import WorkOpt, err, graph_if_any, out, tuned_model
from instructprotein.paths import work_dir


def evaluate(
    model: Annotated[
        Optional[Path],
        typer.Option("--model", help="Model folder (default: WORKDIR/runs/finetune/model, the main job's)."),
    ] = None,
    task: Annotated[
        list[str],
        typer.Option(
            "--task", help="A built-in task, a task file, or all / paper / heldout (repeatable; default all)."
        ),
    ] = [],  # noqa: B006
    limit: Annotated[Optional[int], typer.Option(help="At most this many items per task (a seeded sample).")] = None,
    kg: Annotated[
        Optional[Path],
        typer.Option(
            "--kg",
            help="Training knowledge graph: GO names, homology baseline, retrieval (default: WORKDIR/kg.sqlite).",
        ),
    ] = None,
    instructions: Annotated[
        Optional[Path],
        typer.Option(
            "--instructions",
            help="The instruction set the model was trained on: held-out tasks, decontamination (default: WORKDIR/instructions).",
        ),
    ] = None,
    out_path: Annotated[
        Optional[Path], typer.Option("--out", help="Report folder (default: MODEL/evaluation).")
    ] = None,
    retrieval: Annotated[
        Optional[bool],
        typer.Option(
            "--retrieval/--no-retrieval",
            help="Homologs' evidence in the prompts (default: on with a knowledge graph, as describe and classify).",
        ),
    ] = None,
    no_homology: Annotated[
        bool, typer.Option("--no-homology", help="Skip the MMseqs2 homology-transfer baseline.")
    ] = False,
    max_identity: Annotated[
        Optional[float],
        typer.Option(help="Drop homology hits at or above this identity (default: the decontamination threshold)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of sampling (--limit, held-out items, bootstrap).")] = 0,
    threads: Annotated[Optional[int], typer.Option(help="Torch threads while scoring.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, ... (default: cuda where available).")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Tables only.")] = False,
    scope_des: Annotated[
        Optional[Path],
        typer.Option(
            "--scope-des",
            help="SCOPe's description file dir.des.scope.2.08-stable.txt (scop.berkeley.edu): the SCOPe design-ranking tasks need it.",
        ),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the built-in tasks and stop.")] = False,
    workdir: WorkOpt = None,
) -> None:
    """Score the model on evaluation tasks (both the paper's first-token rule and the full-option
    likelihood), beside majority class, homology transfer, composition and term-frequency
    baselines and the paper's numbers; write results.json, report.md and plots.

    A task of your own is a YAML file naming a JSON-lines or TSV data file
    (`instructprotein.evaluate.tasks` documents every key); pass its path to --task.
    """
    from instructprotein.evaluate.commands import evaluate_command, list_tasks_command

    if list_:
        list_tasks_command(out)
        return
    model = tuned_model(model, workdir)
    kg_path = graph_if_any(kg, workdir, warn=False)
    instr = instructions
    if instr is None:
        guess = work_dir(workdir) / "instructions"
        instr = guess if (guess / "instructions.json").is_file() else None
    tasks = task or ["all"]
    if instr is None:
        from instructprotein.evaluate.commands import expand_tasks

        dropped = [t for t in expand_tasks(tasks) if str(t).startswith("heldout_")]
        if dropped and set(map(str, tasks)) & {"all", "heldout"}:
            err.print(
                f"[yellow]no instruction set (--instructions): held-out tasks left out ({', '.join(map(str, dropped))})[/]"
            )
            tasks = [t for t in expand_tasks(tasks) if not str(t).startswith("heldout_")]
    use_retrieval = retrieval if retrieval is not None else (kg_path is not None or instr is not None)
    evaluate_command(
        model,
        tasks,
        limit,
        kg_path,
        instr,
        out_path,
        seed=seed,
        max_identity=max_identity,
        homology=not no_homology,
        retrieval=use_retrieval,
        threads=threads,
        device=device,
        plots=not no_plots,
        console=out,
        scope_des=scope_des,
    )
