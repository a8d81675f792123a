"""`instructprotein instructions`: build and inspect the knowledge-instruction dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from instructprotein.cli.common import CacheOpt, KgOpt, WorkOpt, err, out, progress_bar
from instructprotein.paths import cache_dir, default_kg_path, work_dir

instr_app = typer.Typer(help="Build and inspect the knowledge-instruction dataset.", no_args_is_help=True)

InstrOpt = Annotated[Optional[Path], typer.Option("--out", help="Dataset folder (default: WORKDIR/instructions).")]


def _benchmark_paths(benchmarks: list[Path], no_decontamination: bool) -> list[str]:
    from instructprotein.sources.packaged import packaged_benchmarks

    if no_decontamination:
        return []
    if benchmarks:
        return [str(p) for p in benchmarks]
    # default: the paper's test sets shipped with the package (its rule: no training protein in the
    # same 70 % family as a test sequence; validation and train files only feed baselines)
    return [str(p) for p in packaged_benchmarks() if "_test" in p.name]


def _task_values(pairs: list[str], flag: str, *, at_most: float | None = None) -> dict[str, float]:
    """Parse repeated ``task=value`` options; a bad task or value names the option and pair."""
    from instructprotein.instruct.dataset import TASK_NAMES

    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = -1.0
        if not sep or name not in TASK_NAMES or factor < 0 or (at_most is not None and factor > at_most):
            bound = f"between 0 and {at_most:g}" if at_most is not None else ">= 0"
            raise typer.BadParameter(
                f"{flag} takes task=value with a task among {', '.join(TASK_NAMES)} and a value {bound}, got {pair!r}"
            )
        out[name] = factor
    return out


def _task_weights(pairs: list[str]) -> dict[str, float]:
    return _task_values(pairs, "--task-weight")


def _generate_overrides(paper_phrasing: list[str]) -> dict:
    """GenerateOptions overrides from ``--paper-phrasing``: left out when not given, so a
    dataset built without the option records (and caches) exactly what it did before."""
    return (
        {"task_paper_phrasing": _task_values(paper_phrasing, "--paper-phrasing", at_most=1.0)} if paper_phrasing else {}
    )


@instr_app.command("build")
def instructions_build(
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    out_path: InstrOpt = None,
    cache: CacheOpt = None,
    n: Annotated[
        int, typer.Option("--n", help="Training instructions to draw (valid/test get --eval-fraction of it each).")
    ] = 100_000,
    eval_fraction: Annotated[float, typer.Option(help="Size of valid and test relative to train.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of sampling and generation.")] = 0,
    max_residues: Annotated[int, typer.Option(help="Proteins longer than this make no instruction (counted).")] = 1000,
    benchmark: Annotated[
        list[Path],
        typer.Option(
            "--benchmark",
            help="Benchmark files/folders to decontaminate against (default: the packaged paper test sets).",
        ),
    ] = [],  # noqa: B006
    min_identity: Annotated[
        float,
        typer.Option(
            help="Remove proteins at or above this identity to any benchmark sequence (paper: 0.7; strict: 0.3)."
        ),
    ] = 0.7,
    sensitivity: Annotated[float, typer.Option(help="MMseqs2 -s of the decontamination search.")] = 4.0,
    no_decontamination: Annotated[bool, typer.Option(help="Skip decontamination (not for evaluation!).")] = False,
    split_identity: Annotated[float, typer.Option(help="Identity of the clusters that splits keep apart.")] = 0.3,
    split_linclust: Annotated[
        bool, typer.Option(help="Cluster splits with linclust (fast, less sensitive at 30 %).")
    ] = False,
    shards: Annotated[int, typer.Option(help="Shards of the training split.")] = 8,
    workers: Annotated[int, typer.Option(help="Processes generating shards.")] = 2,
    evidence_fraction: Annotated[
        float,
        typer.Option(
            help="Share of protein -> text instructions with their homologs' evidence before the question (0: no homolog search)."
        ),
    ] = 0.5,
    evidence_top_k: Annotated[int, typer.Option(help="Homologs in an evidence block.")] = 3,
    task_weight: Annotated[
        list[str],
        typer.Option("--task-weight", help="task=factor: more (or fewer) of one task, e.g. location=3 (repeatable)."),
    ] = [],  # noqa: B006
    paper_phrasing: Annotated[
        list[str],
        typer.Option(
            "--paper-phrasing",
            help="task=p: share of that task's instructions in the paper's benchmark wording (others: 0.3), e.g. yes_no=1 for one yes/no answer form (repeatable).",
        ),
    ] = [],  # noqa: B006
) -> None:
    """Decontaminate, split by homology, sample debiased triples and write the dataset."""
    from instructprotein.instruct.dataset import BuildConfig, build_instructions

    kg_path = kg or default_kg_path(workdir)
    target = out_path or work_dir(workdir) / "instructions"
    config = BuildConfig(
        n_train=n,
        eval_fraction=eval_fraction,
        seed=seed,
        max_residues=max_residues,
        shards=shards,
        workers=workers,
        min_identity=min_identity,
        sensitivity=sensitivity,
        split_identity=split_identity,
        split_linclust=split_linclust,
        benchmarks=_benchmark_paths(benchmark, no_decontamination),
        evidence_fraction=evidence_fraction,
        evidence_top_k=evidence_top_k,
        task_multipliers=_task_weights(task_weight),
        generate=_generate_overrides(paper_phrasing),
    )
    progress = progress_bar()
    start = time.perf_counter()
    try:
        result = build_instructions(kg_path, target, config, progress, cluster_cache=cache_dir(cache) / "clusters")
    finally:
        progress.stop()
    totals = {k: v["total"] for k, v in result.summary["instructions"].items()}
    err.print(f"[green]instructions written to {target}[/] ({totals}) in {time.perf_counter() - start:.0f} s")


@instr_app.command("stats")
def instructions_stats(
    workdir: WorkOpt = None,
    out_path: InstrOpt = None,
    plot: Annotated[Optional[Path], typer.Option(help="Plot file (default: DATASET/sampling.png).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Counts per split and task, and term frequency before and after debiased sampling."""
    from instructprotein.instruct.report import instruction_stats, plot_sampling

    folder = out_path or work_dir(workdir) / "instructions"
    stats = instruction_stats(folder)
    stats["plot"] = str(plot_sampling(folder, plot or folder / "sampling.png"))
    if as_json:
        out.print_json(json.dumps(stats, default=str))
        return
    s = stats["summary"]
    t = Table(title=f"instructions in {folder}")
    tasks = sorted({k for v in s["instructions"].values() for k in v if k != "total"})
    t.add_column("task")
    for split in s["instructions"]:
        t.add_column(split, justify="right")
    for task in [*tasks, "total"]:
        t.add_row(task, *(f"{s['instructions'][sp].get(task, 0):,}" for sp in s["instructions"]))
    out.print(t)
    dec = s.get("decontamination") or {}
    if dec:
        out.print(
            f"decontamination (identity >= {s['config']['min_identity']}): removed {dec.get('removed', 0):,} of "
            f"{dec.get('kg_proteins', 0):,} proteins ({dec.get('removed_exact', 0):,} identical sequences) against "
            f"{dec.get('benchmark_sequences', 0):,} benchmark sequences in {dec.get('benchmark_files', 0)} files"
        )
    else:
        out.print("[yellow]no decontamination: do not evaluate on the paper's benchmarks with this dataset[/]")
    out.print(f"splits (by {s['config']['split_identity']:.0%}-identity cluster): {s['splits']}")
    out.print(f"skipped: {s['skipped']}")
    t = Table(title=f"term frequency over {stats['terms']:,} terms (train split)")
    for col in ("", "Gini", "entropy (bits)", "top-10 share"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row(
        "triples in the graph",
        f"{stats['before']['gini']:.3f}",
        f"{stats['before']['entropy_bits']:.2f}",
        f"{stats['before']['top_share']:.1%}",
    )
    t.add_row(
        "after debiased sampling (expected)",
        f"{stats['after']['gini']:.3f}",
        f"{stats['after']['entropy_bits']:.2f}",
        f"{stats['after']['top_share']:.1%}",
    )
    out.print(t)
    t = Table(title="most frequent terms before sampling, and after (expected, same total)")
    for col in ("term", "name", "triples", "after"):
        t.add_column(col, justify="right" if col in ("triples", "after") else "left")
    for term, name, before, after in stats["top_before"]:
        t.add_row(term, name, f"{before:,}", f"{after:,.0f}")
    out.print(t)
    out.print(f"plot: {stats['plot']}")


@instr_app.command("show")
def instructions_show(
    protein: Annotated[str, typer.Option("--protein", help="Accession, e.g. P04637.")],
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    out_path: InstrOpt = None,
    limit: Annotated[int, typer.Option(help="Instructions to print.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed for instructions generated on the fly.")] = 0,
) -> None:
    """A protein's knowledge chains, its split, and the instructions made from it."""
    import random

    from instructprotein.instruct.chains import chain_text, chains_for_protein
    from instructprotein.kg.store import KnowledgeGraph

    folder = out_path or work_dir(workdir) / "instructions"
    kg_path = kg or default_kg_path(workdir)
    with KnowledgeGraph(kg_path) as graph:
        p = graph.protein(protein)
        out.print(f"[bold]{p.accession}[/] {p.name or ''} {p.organism or ''} length {p.length}")
        out.rule("knowledge chains")
        for chain in chains_for_protein(graph, p.accession):
            out.print(f"- ({chain.kind}) {chain_text(chain)}")
    records = []
    split = "not in a built dataset"
    if (folder / "splits" / "splits.tsv").exists():
        from instructprotein.instruct.splits import Splits

        split = Splits.load(folder / "splits").split.get(p.accession, "not in the graph's splits")
        removed = folder / "decontamination" / "removed.tsv"
        if removed.exists():
            for line in removed.read_text().splitlines()[1:]:
                acc, bench, ident, why = line.split("\t")
                if acc == p.accession:
                    split = f"removed: {why} match to {bench} at identity {float(ident):.2f}"
                    break
        for path in sorted((folder / "jsonl").glob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if f'"accession": "{p.accession}"' in line:
                        records.append(json.loads(line))
    out.print(f"split: {split}")
    if records:
        out.rule(f"{len(records)} instruction(s) in the dataset (showing {min(limit, len(records))})")
        shown = [(r["task"], r["text"], r["answer_start"]) for r in records[:limit]]
    else:
        from instructprotein.instruct.generate import instructions_for_protein
        from instructprotein.instruct.kgview import KGView
        from instructprotein.instruct.negatives import NegativeSampler

        view = KGView(kg_path)
        insts = instructions_for_protein(view, p.accession, random.Random(seed), NegativeSampler(view))
        out.rule(f"not in the dataset; {len(insts)} instruction(s) generated now (seed {seed})")
        shown = [(i.task, i.text, i.answer_span[0]) for i in insts[:limit]]
    for task, text, start in shown:
        out.print(f"[bold cyan]{task}[/]")
        out.print(
            _shorten_protein(text[:start]) + "[green]" + _shorten_protein(text[start:]) + "[/]",
            markup=True,
            highlight=False,
        )


def _shorten_protein(text: str, keep: int = 12) -> str:
    """``<protein>MKTAYIAK…(350)…LQR</protein>`` so a person can read the instruction around it."""
    import re

    def short(m: re.Match[str]) -> str:
        seq = m.group(1)
        return m.group(0) if len(seq) <= 2 * keep else f"<protein>{seq[:keep]}…({len(seq)} aa)…{seq[-keep:]}</protein>"

    return re.sub(r"<protein>([A-Z]+)</protein>", short, text).replace("[", "\\[")
