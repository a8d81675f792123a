"""`instructprotein run`: the main job, every stage in order, finished stages checked and skipped."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer
from rich.table import Table

from instructprotein.cli.common import CacheOpt, WorkOpt, err, out
from instructprotein.errors import InstructProteinError
from instructprotein.paths import default_kg_path, work_dir

from instructprotein.cli.corpus import corpus_build
from instructprotein.cli.data import data_fetch
from instructprotein.cli.instructions import instructions_build, instructions_stats
from instructprotein.cli.kg import kg_build, kg_stats


def run(
    cache: CacheOpt = None,
    workdir: WorkOpt = None,
    sample: Annotated[Optional[float], typer.Option(help="Build the graph from this fraction of proteins (a quick trial).")] = None,
    n: Annotated[int, typer.Option("--n", help="Training instructions to draw.")] = 100_000,
) -> None:
    """The main job on the embedded default, every stage in order; finished stages are skipped.

    Each stage's outputs are checked before it is skipped (the cache against its manifest,
    the graph by opening it, the dataset and corpus by their summaries), so an interrupted
    run resumes at the stage it was in.
    """
    from instructprotein.kg.store import KnowledgeGraph

    start = time.perf_counter()
    work = work_dir(workdir)
    kg_path = default_kg_path(workdir)
    instr_dir = work / "instructions"
    corpus_dir = work / "corpus"

    def kg_done() -> str | None:
        try:
            KnowledgeGraph(kg_path).close()
            return f"{kg_path} opens"
        except InstructProteinError:
            return None

    def instructions_done() -> str | None:
        ok = (instr_dir / "instructions.json").exists() and (instr_dir / "hf" / "dataset_dict.json").exists()
        return f"{instr_dir} has instructions.json and hf/" if ok else None

    def corpus_done() -> str | None:
        return f"{corpus_dir}/corpus.json exists" if (corpus_dir / "corpus.json").exists() else None

    stages = [
        ("data fetch", lambda: None,
         lambda: data_fetch(cache=cache, group=["data", "tools"], package=[], deb_dir=None, force=False, keep_debs=False)),
        ("knowledge graph", kg_done,
         lambda: kg_build(source="debian", uniprot=[], obo=None, out_path=kg_path, sample=sample, skip_bad=False,
                          cache=cache, workdir=workdir)),
        ("graph statistics", lambda: None, lambda: kg_stats(kg=kg_path, workdir=workdir, plot=None, as_json=False)),
        ("knowledge instructions", instructions_done,
         lambda: instructions_build(kg=kg_path, workdir=workdir, out_path=instr_dir, n=n, eval_fraction=0.05, seed=0,
                                    max_residues=1000, benchmark=[], min_identity=0.7, sensitivity=4.0,
                                    no_decontamination=False, split_identity=0.3, split_linclust=False, shards=8,
                                    workers=2)),
        ("instruction statistics", lambda: None,
         lambda: instructions_stats(workdir=workdir, out_path=instr_dir, plot=None, as_json=False)),
        ("pre-training corpus", corpus_done,
         lambda: corpus_build(kg=kg_path, workdir=workdir, out_path=corpus_dir, instructions_dir=instr_dir, text=[],
                              chebi=True, max_residues=1000, shards=8, seed=0, cache=cache)),
    ]
    timings = []
    for i, (name, done, action) in enumerate(stages, 1):
        err.rule(f"{i}/{len(stages)} {name}")
        t = time.perf_counter()
        reason = done()
        if reason:
            err.print(f"skipped: {reason} (delete it to redo this stage)")
        else:
            action()
        timings.append((name, time.perf_counter() - t, "skipped" if reason else "ran"))
    table = Table(title=f"main job done in {time.perf_counter() - start:.0f} s")
    for col in ("stage", "seconds", ""):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for name, seconds, what in timings:
        table.add_row(name, f"{seconds:.0f}", what)
    out.print(table)
    out.print(
        f"knowledge graph: {kg_path}\ninstructions:    {instr_dir}\ncorpus:          {corpus_dir}\n"
        f"next: instructprotein kg show P04637 --propagated --kg {kg_path}\n"
        f"      instructprotein instructions show --protein P04637 --workdir {work}"
    )
