"""`instructprotein run`: the main job, every stage in order, finished stages checked and skipped.

fetch -> graph -> statistics -> instructions -> statistics -> corpus -> pre-training ->
instruction tuning -> evaluation -> summary. Each stage is also its own command; this one
only chains them with the embedded default's settings, so that a new user gets a trained,
evaluated model without choosing anything, and a rerun resumes where the last one stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from instructprotein.cli.common import CacheOpt, WorkOpt, err, out
from instructprotein.cli.corpus import corpus_build
from instructprotein.cli.data import data_fetch
from instructprotein.cli.instructions import instructions_build, instructions_stats
from instructprotein.cli.kg import kg_build, kg_stats
from instructprotein.cli.recipe import InstructionRecipe, load_recipe
from instructprotein.errors import InstructProteinError
from instructprotein.paths import default_kg_path, work_dir


def run(
    cache: CacheOpt = None,
    workdir: WorkOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | paper, or a YAML file.")] = "tiny",
    sample: Annotated[
        Optional[float], typer.Option(help="Build the graph from this fraction of proteins (a quick trial).")
    ] = None,
    n: Annotated[
        Optional[int], typer.Option("--n", help="Training instructions to draw (default: the recipe's, 20,000).")
    ] = None,
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="Override a preset key for both training stages, e.g. --set finetune.max_minutes=20 (repeatable).",
        ),
    ] = [],  # noqa: B006
    eval_limit: Annotated[
        Optional[int], typer.Option(help="At most this many items per evaluation task (default: all).")
    ] = None,
) -> None:
    """The main job on the embedded default, every stage in order; finished stages are skipped.

    Each stage's outputs are checked before it is skipped (the cache against its manifest,
    the graph by opening it, the dataset and corpus by their summaries, a training run by
    its summary and model, the evaluation by the model it scored), so an interrupted run
    resumes at the stage it was in; an interrupted training run continues from its last
    checkpoint.
    """
    from instructprotein.cli.train import _overrides, _passive_threads

    _passive_threads()
    start = time.perf_counter()
    work = work_dir(workdir)
    kg_path = default_kg_path(workdir)
    instr_dir = work / "instructions"
    corpus_dir = work / "corpus"
    pre_dir, fine_dir = work / "runs" / "pretrain", work / "runs" / "finetune"
    eval_dir = work / "evaluation"
    overrides = _overrides(set_)
    recipe = load_recipe()
    ins, corpus = recipe.instructions, recipe.corpus
    n = ins.n if n is None else n
    results: dict[str, Any] = {}

    stages: list[tuple[str, Callable[[], str | None], Callable[[], None]]] = [
        (
            "data fetch",
            lambda: None,
            lambda: data_fetch(
                cache=cache, group=["data", "tools"], package=[], deb_dir=None, force=False, keep_debs=False
            ),
        ),
        (
            "knowledge graph",
            lambda: _kg_done(kg_path),
            lambda: kg_build(
                source="debian",
                uniprot=[],
                obo=None,
                out_path=kg_path,
                sample=sample,
                skip_bad=False,
                cache=cache,
                workdir=workdir,
            ),
        ),
        ("graph statistics", lambda: None, lambda: kg_stats(kg=kg_path, workdir=workdir, plot=None, as_json=False)),
        (
            "knowledge instructions",
            lambda: _instructions_done(instr_dir, kg_path, n, ins),
            lambda: instructions_build(
                kg=kg_path,
                workdir=workdir,
                out_path=instr_dir,
                cache=cache,
                n=n,
                eval_fraction=ins.eval_fraction,
                seed=ins.seed,
                max_residues=ins.max_residues,
                benchmark=[],
                min_identity=ins.min_identity,
                sensitivity=ins.sensitivity,
                no_decontamination=False,
                split_identity=ins.split_identity,
                split_linclust=ins.split_linclust,
                shards=ins.shards,
                workers=ins.workers,
                evidence_fraction=ins.evidence_fraction,
                evidence_top_k=ins.evidence_top_k,
                task_weight=list(ins.task_weights),
            ),
        ),
        (
            "instruction statistics",
            lambda: None,
            lambda: instructions_stats(workdir=workdir, out_path=instr_dir, plot=None, as_json=False),
        ),
        (
            "pre-training corpus",
            lambda: _corpus_done(corpus_dir, instr_dir),
            lambda: corpus_build(
                kg=kg_path,
                workdir=workdir,
                out_path=corpus_dir,
                instructions_dir=instr_dir,
                text=[],
                chebi=corpus.chebi,
                max_residues=corpus.max_residues,
                max_proteins=corpus.proteins.get(preset),
                shards=corpus.shards,
                seed=corpus.seed,
                cache=cache,
            ),
        ),
        (
            "pre-training",
            lambda: _training_done(pre_dir, after=(corpus_dir / "corpus.json",)),
            lambda: _train("pretrain", preset, overrides, corpus_dir, pre_dir),
        ),
        (
            "instruction tuning",
            lambda: _training_done(fine_dir, after=(pre_dir / "training.json", instr_dir / "instructions.json")),
            lambda: _train("finetune", preset, overrides, instr_dir, fine_dir, init=pre_dir / "model"),
        ),
        (
            "evaluation",
            lambda: _evaluation_done(eval_dir, fine_dir / "model", eval_limit),
            lambda: results.update(_evaluate(fine_dir / "model", kg_path, instr_dir, eval_dir, eval_limit)),
        ),
    ]
    timings = []
    for i, (name, done, action) in enumerate(stages, 1):
        err.rule(f"{i}/{len(stages)} {name}")
        t = time.perf_counter()
        reason = done()
        said = None
        if reason:
            err.print(f"skipped: {reason} (delete it to redo this stage)")
        else:
            said = action()
        timings.append(
            (name, time.perf_counter() - t, "skipped" if reason else (said if isinstance(said, str) else "ran"))
        )
    _write_card(fine_dir / "model", eval_dir)
    _summary(timings, time.perf_counter() - start, work, kg_path, instr_dir, fine_dir, eval_dir, results)


# -- is a stage done? (each returns why it is, or None) ------------------------------------------------------


def _kg_done(kg_path: Path) -> str | None:
    from instructprotein.kg.store import KnowledgeGraph

    try:
        KnowledgeGraph(kg_path).close()
        return f"{kg_path} opens"
    except InstructProteinError:
        return None


def _instructions_done(instr_dir: Path, kg_path: Path, n: int, recipe: InstructionRecipe) -> str | None:
    try:
        summary = json.loads((instr_dir / "instructions.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = summary.get("config", {})
    if not (instr_dir / "hf" / "dataset_dict.json").exists() or config.get("n_train") != n:
        return None
    from instructprotein.cli.instructions import _task_weights

    if config.get("task_multipliers") != _task_weights(list(recipe.task_weights)):
        return None
    if config.get("evidence_fraction") != recipe.evidence_fraction:
        return None
    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(kg_path) as kg:
        if summary.get("kg_content_hash") not in ("", kg.meta.get("content_hash")):
            return None
    return f"{instr_dir} holds {n:,} training instructions from this graph"


def _corpus_done(corpus_dir: Path, instr_dir: Path) -> str | None:
    summary, splits = corpus_dir / "corpus.json", instr_dir / "splits" / "splits.tsv"
    if summary.exists() and (not splits.exists() or summary.stat().st_mtime >= splits.stat().st_mtime):
        return f"{summary} exists"
    return None


def _training_done(run_dir: Path, *, after: tuple[Path, ...]) -> str | None:
    """Done: a finished run (training.json + a loadable model) newer than its inputs."""
    from instructprotein.model.factory import check_model_folder

    summary = run_dir / "training.json"
    if not summary.exists() or any(p.exists() and summary.stat().st_mtime < p.stat().st_mtime for p in after):
        return None
    try:
        check_model_folder(run_dir / "model")
    except InstructProteinError:
        return None
    return f"{run_dir} holds a finished run"


def _train(
    stage: str, preset: str, overrides: dict[str, str], data_dir: Path, run_dir: Path, init: Path | None = None
) -> str:
    """Run one training stage; returns how it stopped (the budget is a step count: a run the
    minute cap cut is said loudly, since another machine would stop it elsewhere)."""
    from instructprotein.cli.train import _print_training
    from instructprotein.model.presets import load_preset
    from instructprotein.train.loop import latest_checkpoint
    from instructprotein.train.stages import finetune, pretrain

    spec = load_preset(preset, overrides)
    resume = latest_checkpoint(run_dir) is not None and not (run_dir / "training.json").exists()
    force = not resume and run_dir.exists() and any(run_dir.iterdir())
    if resume:
        err.print(f"resuming the interrupted run in {run_dir} from its last checkpoint")
    if stage == "pretrain":
        result = pretrain(spec, data_dir, run_dir, resume=resume, force=force, progress=True)
    else:
        assert init is not None
        result = finetune(spec, data_dir, run_dir, init=init, resume=resume, force=force, progress=True)
    _print_training(result)
    if "max_minutes" in result.stop_reason:
        err.print(
            f"[yellow]{stage}: the minute cap (a safety net) cut this run at step {result.steps:,}: "
            "another machine would stop it elsewhere; raise it with --set {stage}.max_minutes=N[/]"
        )
    return f"ran ({result.steps:,} steps: {result.stop_reason})"


MAIN_JOB_TASK_LIMITS = {"go_mf": 5000}
"""The paper's GO-MF set has 22,256 questions: with the model asked twice (with and without
its homologs) it is half the main job's scoring. A seeded 5,000 of them keep the interval
within about 1.3 points and the main job within 45 minutes on 2 cores; ``instructprotein
evaluate --task go_mf`` scores every one."""


def _evaluation_done(eval_dir: Path, model_dir: Path, limit: int | None) -> str | None:
    try:
        saved = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    from instructprotein.evaluate.provenance import _sha256

    same_model = saved.get("model", {}).get("config_sha256") == _sha256(model_dir / "config.json")
    same_weights = saved.get("model", {}).get("weights", {}).get("sha256") == _sha256(model_dir / "model.safetensors")
    same_caps = saved.get("task_limits") == MAIN_JOB_TASK_LIMITS
    if same_model and same_weights and saved.get("limit") == limit and same_caps:
        return f"{eval_dir}/results.json scored this model"
    return None


def _evaluate(model_dir: Path, kg_path: Path, instr_dir: Path, eval_dir: Path, limit: int | None) -> dict[str, Any]:
    from instructprotein.evaluate.commands import evaluate_command

    return evaluate_command(
        model_dir,
        ["all"],
        limit,
        kg_path,
        instr_dir,
        eval_dir,
        retrieval=True,
        threads=None,
        console=out,
        task_limits=MAIN_JOB_TASK_LIMITS,
    )


def _write_card(model_dir: Path, eval_dir: Path) -> None:
    """The model folder's card, rewritten with the evaluation's numbers when they scored this model."""
    from instructprotein.model.card import results_for, write_model_card

    if (model_dir / "config.json").exists():
        results = results_for(model_dir, eval_dir / "results.json")
        write_model_card(model_dir, results)
        err.print(f"model card: {model_dir / 'README.md'}" + (" (with the evaluation's numbers)" if results else ""))


# -- the end -------------------------------------------------------------------------------------------------

HEADLINE = (
    "deeploc10",
    "deeploc_binary",
    "metal_ion_binding",
    "go_mf",
    "heldout_location",
    "heldout_metal",
    "heldout_go_mf",
    "heldout_go_bp",
    "heldout_go_cc",
)


def _summary(
    timings: list[tuple[str, float, str]],
    total: float,
    work: Path,
    kg_path: Path,
    instr_dir: Path,
    fine_dir: Path,
    eval_dir: Path,
    results: dict[str, Any],
) -> None:
    table = Table(title=f"main job done in {total / 60:.1f} min")
    for col in ("stage", "seconds", ""):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for name, seconds, what in timings:
        table.add_row(name, f"{seconds:.0f}", what)
    out.print(table)
    if not results:
        try:
            results = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = {}
    if results.get("tasks"):
        out.print(_headline(results))
    model = fine_dir / "model"
    # the model commands find this run's model and graph in the work folder by themselves
    at = "" if work.resolve() == work_dir().resolve() else f" --workdir {work}"
    acc = _test_protein(instr_dir)
    out.print(
        f"knowledge graph: {kg_path}\ninstructions:    {instr_dir}\nmodel:           {model}\n"
        f"report:          {eval_dir / 'report.md'}\n\nnext (a protein of the held-out test split):\n"
        f"  instructprotein kg show {acc} --fasta{at} > {acc}.fasta\n"
        f"  instructprotein describe {acc}.fasta{at} --max-identity 0.7 --baseline\n"
        f'  instructprotein design "a zinc-binding protein located in the nucleus" --n 4{at}\n'
        f"  instructprotein serve{at}      # web page and HTTP API on http://127.0.0.1:8000\n"
        f"  instructprotein evaluate{at} --task deeploc10 --no-retrieval --limit 200   # the model without its homologs"
    )


def _test_protein(instr_dir: Path) -> str:
    """An accession of the held-out test split (never trained on) to try the commands on."""
    try:
        with (instr_dir / "splits" / "splits.tsv").open(encoding="utf-8") as f:
            next(f)
            for line in f:
                accession, _, split = line.rstrip("\n").split("\t")
                if split == "test":
                    return accession
    except (OSError, StopIteration, ValueError):
        pass
    return "P04637"


def _headline(results: dict[str, Any]) -> Table:
    """Accuracy of the model (full-option rule) beside majority class and homology transfer."""

    def pct(r: dict[str, Any] | None) -> str:
        if not r or r.get("accuracy") is None:
            return "-"
        lo, hi = r.get("ci95", (None, None))
        ci = f" [{lo * 100:.1f}, {hi * 100:.1f}]" if lo is not None else ""
        return f"{r['accuracy'] * 100:.1f}{ci}"

    t = Table(title="headline results (accuracy %, 95 % interval; system = the answer fit on validation)")
    for col in (
        "task",
        "n",
        "system",
        "model + evidence",
        "model alone",
        "majority",
        "homology best hit",
        "homology vote",
        "paper",
    ):
        t.add_column(col, justify="left" if col == "task" else "right")
    for name in HEADLINE:
        r = results["tasks"].get(name)
        if r is None or "model" not in r:
            continue
        b = r.get("baselines", {})
        paper = r.get("paper") or {}
        t.add_row(
            name,
            f"{r['n']:,}",
            pct(r.get("system")),
            pct(r["model"].get("sum")),
            pct(r.get("model_alone")),
            pct(b.get("majority")),
            pct(b.get("homology_best")),
            pct(b.get("homology_vote")),
            ", ".join(f"{k} {v}" for k, v in paper.items()) or "-",
        )
    return t
