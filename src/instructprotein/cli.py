"""``instructprotein``: one sub-command per pipeline stage.

Each command reads and writes files, so any stage can be rerun or moved to another
machine; ``run`` chains them for the embedded default and skips what is already done.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from instructprotein.errors import InstructProteinError, SkipLog
from instructprotein.paths import cache_dir, default_kg_path, work_dir

app = typer.Typer(help="Align human and protein language: data, knowledge graph, instructions, model.", no_args_is_help=True)
data_app = typer.Typer(help="Fetch and inspect the raw data releases.", no_args_is_help=True)
kg_app = typer.Typer(help="Build and query the protein knowledge graph.", no_args_is_help=True)
instr_app = typer.Typer(help="Build and inspect the knowledge-instruction dataset.", no_args_is_help=True)
corpus_app = typer.Typer(help="The pre-training corpus (protein sequences + biomedical text).", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(kg_app, name="kg")
app.add_typer(instr_app, name="instructions")
app.add_typer(corpus_app, name="corpus")

out = Console()
err = Console(stderr=True)

CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="Data cache (default: $INSTRUCTPROTEIN_CACHE or the user cache dir).")]
WorkOpt = Annotated[Optional[Path], typer.Option("--workdir", help="Outputs of this run (default: $INSTRUCTPROTEIN_WORKDIR or ./instructprotein-work).")]
KgOpt = Annotated[Optional[Path], typer.Option("--kg", help="Knowledge graph file (default: WORKDIR/kg.sqlite).")]


def _progress():
    from instructprotein.progress import RichProgress

    return RichProgress()


# ----------------------------------------------------------------------------- data
@data_app.command("fetch")
def data_fetch(
    cache: CacheOpt = None,
    group: Annotated[list[str], typer.Option(help="Package groups: data (default), test, tools.")] = ["data"],  # noqa: B006
    package: Annotated[list[str], typer.Option(help="Also fetch this package by name.")] = [],  # noqa: B006
    deb_dir: Annotated[Optional[Path], typer.Option(help="Take NAME_*.deb files from this folder instead of apt-get.")] = None,
    force: Annotated[bool, typer.Option(help="Fetch again even if the cache is intact.")] = False,
    keep_debs: Annotated[bool, typer.Option(help="Keep the downloaded .deb files.")] = False,
) -> None:
    """Download the Debian packages holding real protein data and unpack what is used."""
    from instructprotein.sources.debian import fetch, packages_for

    pkgs = packages_for(group, package)
    results = fetch(pkgs, cache, deb_dir=deb_dir, force=force, keep_debs=keep_debs, say=lambda m: err.log(m))
    table = Table(title=f"data cache: {cache_dir(cache)}")
    for col in ("package", "version", ".deb MB", "sha256", "files", "MB", "status"):
        table.add_column(col, no_wrap=col in ("package", "status"))
    for rec, fetched in results:
        table.add_row(rec.package, rec.version, f"{rec.deb_size / 1e6:.1f}", rec.deb_sha256[:10] + "…",
                      str(rec.kept_files), f"{rec.kept_bytes / 1e6:.1f}", "fetched" if fetched else "cached")
    out.print(table)


@data_app.command("status")
def data_status(cache: CacheOpt = None) -> None:
    """What is in the cache, and whether each named resource is present."""
    from instructprotein.sources.debian import load_manifest
    from instructprotein.sources.registry import RESOURCES, resource_path

    root = cache_dir(cache)
    manifest = load_manifest(root)
    table = Table(title=f"resources in {root}")
    for col in ("resource", "package", "version", "present", "description"):
        table.add_column(col)
    for name, res in RESOURCES.items():
        present = resource_path(name, cache, must_exist=False).exists()
        rec = manifest.get(res.package)
        table.add_row(name, res.package, rec.version if rec else "-", "yes" if present else "no", res.description)
    out.print(table)


# ----------------------------------------------------------------------------- kg
@kg_app.command("build")
def kg_build(
    source: Annotated[str, typer.Option(help="debian: Swiss-Prot 2014 from metastudent-data; uniprot: your .dat files + --obo.")] = "debian",
    uniprot: Annotated[list[Path], typer.Option(help="UniProt flat file(s), .dat or .dat.gz (with --source uniprot).")] = [],  # noqa: B006
    obo: Annotated[Optional[Path], typer.Option(help="GO .obo file (required with --source uniprot).")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Output file (default: WORKDIR/kg.sqlite).")] = None,
    sample: Annotated[Optional[float], typer.Option(help="Keep this fraction of proteins (deterministic by accession).")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip and count bad records instead of stopping at the first.")] = False,
    cache: CacheOpt = None,
    workdir: WorkOpt = None,
) -> None:
    """Build the knowledge graph (SQLite) from either source."""
    from instructprotein.kg.inputs import build_from_metastudent, build_from_uniprot

    target = out_path or default_kg_path(workdir)
    skip = SkipLog() if skip_bad else None
    progress = _progress()
    start = time.perf_counter()
    try:
        if source == "debian":
            from instructprotein.formats.go_sqlite import read_go_sqlite
            from instructprotein.formats.obo import read_obo
            from instructprotein.sources.registry import resource_path

            folder = resource_path("swissprot-2014", cache)
            text = [read_obo(resource_path("go-obo-2013", cache)), read_go_sqlite(resource_path("go-sqlite", cache))]
            build_from_metastudent(folder, target, text_sources=text, sample=sample, skip=skip, progress=progress)
        elif source == "uniprot":
            if not uniprot or obo is None:
                raise typer.BadParameter("--source uniprot needs --uniprot FILE (one or more) and --obo FILE")
            from instructprotein.formats.obo import read_obo

            build_from_uniprot(uniprot, read_obo(obo), target, sample=sample, skip=skip, progress=progress)
        else:
            raise typer.BadParameter(f"unknown source {source!r}: use debian or uniprot")
    finally:
        progress.stop()
    if skip is not None:
        err.print(skip.summary())
    err.print(f"[green]knowledge graph written to {target}[/] in {time.perf_counter() - start:.1f} s")


@kg_app.command("stats")
def kg_stats(
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    plot: Annotated[Optional[Path], typer.Option(help="Plot file (default: beside the graph, kg-frequencies.png).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Entity and relation counts, the annotation frequency distribution, and its plot."""
    from instructprotein.kg.stats import graph_stats, plot_frequencies
    from instructprotein.kg.store import KnowledgeGraph

    path = kg or default_kg_path(workdir)
    with KnowledgeGraph(path) as graph:
        stats = graph_stats(graph)
        plot_path = plot_frequencies(graph, plot or path.with_name("kg-frequencies.png"))
    stats["plot"] = str(plot_path)
    if as_json:
        out.print_json(json.dumps(stats))
        return
    print_stats(stats)


def print_stats(stats: dict) -> None:
    out.print(f"[bold]{stats['path']}[/]\nsource: {stats['source']}\nontology: {stats['ontology']}")
    t = Table(title="entities")
    t.add_column("kind")
    t.add_column("count", justify="right")
    t.add_row("protein", f"{stats['proteins']:,}")
    for k, n in stats["entities"].items():
        t.add_row(k, f"{n:,}")
    out.print(t)
    t = Table(title="relations (direct triples)")
    t.add_column("relation")
    t.add_column("count", justify="right")
    for k, n in stats["relations"].items():
        t.add_row(k, f"{n:,}")
    out.print(t)
    b = stats["build"]
    if b:
        out.print(
            f"input annotations {b['annotations_in']:,}: kept {b['annotations_kept']:,}, root-only dropped {b['root_dropped']:,}, "
            f"alt/obsolete ids resolved {b['resolved_alt_or_obsolete']:,}, unresolved dropped {b['unresolved_dropped']:,}, "
            f"duplicates {b['duplicate_dropped']:,}; proteins without GO {b['proteins_without_go']:,}; "
            f"proteins with GO per aspect {b['by_aspect_proteins']}"
        )
    for mode in ("direct", "propagated"):
        title = "proteins per GO term, " + ("direct annotations" if mode == "direct" else "propagated over is_a + part_of")
        t = Table(title=title)
        for col in ("aspect", "terms", "median", "p90", "p99", "max", "<10", ">=1000", "Gini"):
            t.add_column(col, justify="left" if col == "aspect" else "right")
        for aspect, d in stats["frequency"].items():
            x = d[mode]
            if x.get("terms"):
                t.add_row(aspect, f"{x['terms']:,}", f"{x['median']:g}", f"{x['p90']:g}", f"{x['p99']:,.0f}",
                          f"{x['max']:,}", f"{x['terms_under_10']:,}", f"{x['terms_1000_or_more']:,}", f"{x['gini']:.3f}")
        out.print(t)
    t = Table(title="most frequent terms (direct)")
    for col in ("aspect", "term", "name", "proteins"):
        t.add_column(col, justify="right" if col == "proteins" else "left")
    for aspect, d in stats["frequency"].items():
        for top in d["direct"].get("top", [])[:3]:
            t.add_row(aspect, top["id"], top["name"], f"{top['proteins']:,}")
    out.print(t)
    out.print(f"plot: {stats['plot']}")


@kg_app.command("show")
def kg_show(
    protein: Annotated[str, typer.Argument(help="Accession, e.g. P04637.")],
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    propagated: Annotated[bool, typer.Option(help="Also list the propagated GO terms.")] = False,
) -> None:
    """A protein's direct (and optionally propagated) annotations."""
    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(kg or default_kg_path(workdir)) as graph:
        p = graph.protein(protein)
        out.print(f"[bold]{p.accession}[/] {p.entry_name} {p.name} {p.organism} length {p.length}")
        t = Table(title="direct annotations")
        for col in ("relation", "id", "name", "evidence"):
            t.add_column(col)
        for a in graph.direct_annotations(protein):
            t.add_row(a.entity.relation, a.entity.id, a.entity.name, a.evidence or "")
        out.print(t)
        if propagated:
            t = Table(title="propagated GO terms (is_a + part_of)")
            for col in ("aspect", "id", "name", "distance"):
                t.add_column(col)
            for a in graph.propagated_annotations(protein):
                t.add_row(a.entity.aspect or "", a.entity.id, a.entity.name, str(a.distance))
            out.print(t)


@kg_app.command("term")
def kg_term(
    term: Annotated[str, typer.Argument(help="Term id, e.g. GO:0008270 (alternative ids resolve).")],
    kg: KgOpt = None,
    workdir: WorkOpt = None,
) -> None:
    """A term: definition, ancestor chain to the root, and how many proteins carry it."""
    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(kg or default_kg_path(workdir)) as graph:
        e = graph.entity(term)
        out.print(f"[bold]{e.id}[/] {e.name} ({e.kind} {e.aspect or ''})")
        if e.definition:
            out.print(e.definition)
        chain = graph.ancestor_chain(e.id)
        out.print("chain: " + "".join(f"{x.name} --{rel}--> " if rel else x.name for x, rel in chain))
        direct = len(graph.proteins_with(e.id, descendants=False))
        total = len(graph.proteins_with(e.id))
        out.print(f"proteins: {direct:,} direct, {total:,} with descendants")


# ----------------------------------------------------------------------------- instructions
InstrOpt = Annotated[Optional[Path], typer.Option("--out", help="Dataset folder (default: WORKDIR/instructions).")]


def _benchmark_paths(benchmarks: list[Path], no_decontamination: bool) -> list[str]:
    from instructprotein.sources.packaged import packaged_benchmarks

    if no_decontamination:
        return []
    if benchmarks:
        return [str(p) for p in benchmarks]
    # default: the paper's test and validation sets shipped with the package
    return [str(p) for p in packaged_benchmarks() if "_test" in p.name or "_valid" in p.name]


@instr_app.command("build")
def instructions_build(
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    out_path: InstrOpt = None,
    n: Annotated[int, typer.Option("--n", help="Training instructions to draw (valid/test get --eval-fraction of it each).")] = 100_000,
    eval_fraction: Annotated[float, typer.Option(help="Size of valid and test relative to train.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of sampling and generation.")] = 0,
    max_residues: Annotated[int, typer.Option(help="Proteins longer than this make no instruction (counted).")] = 1000,
    benchmark: Annotated[list[Path], typer.Option("--benchmark", help="Benchmark files/folders to decontaminate against (default: the packaged paper test and valid sets).")] = [],  # noqa: B006
    min_identity: Annotated[float, typer.Option(help="Remove proteins at or above this identity to any benchmark sequence (paper: 0.7; strict: 0.3).")] = 0.7,
    sensitivity: Annotated[float, typer.Option(help="MMseqs2 -s of the decontamination search.")] = 4.0,
    no_decontamination: Annotated[bool, typer.Option(help="Skip decontamination (not for evaluation!).")] = False,
    split_identity: Annotated[float, typer.Option(help="Identity of the clusters that splits keep apart.")] = 0.3,
    split_linclust: Annotated[bool, typer.Option(help="Cluster splits with linclust (fast, less sensitive at 30 %).")] = False,
    shards: Annotated[int, typer.Option(help="Shards of the training split.")] = 8,
    workers: Annotated[int, typer.Option(help="Processes generating shards.")] = 2,
) -> None:
    """Decontaminate, split by homology, sample debiased triples and write the dataset."""
    from instructprotein.instruct.dataset import BuildConfig, build_instructions

    kg_path = kg or default_kg_path(workdir)
    target = out_path or work_dir(workdir) / "instructions"
    config = BuildConfig(
        n_train=n, eval_fraction=eval_fraction, seed=seed, max_residues=max_residues, shards=shards, workers=workers,
        min_identity=min_identity, sensitivity=sensitivity, split_identity=split_identity,
        split_linclust=split_linclust, benchmarks=_benchmark_paths(benchmark, no_decontamination),
    )
    progress = _progress()
    start = time.perf_counter()
    try:
        result = build_instructions(kg_path, target, config, progress)
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
    t.add_row("triples in the graph", f"{stats['before']['gini']:.3f}", f"{stats['before']['entropy_bits']:.2f}", f"{stats['before']['top_share']:.1%}")
    t.add_row("after debiased sampling (expected)", f"{stats['after']['gini']:.3f}", f"{stats['after']['entropy_bits']:.2f}", f"{stats['after']['top_share']:.1%}")
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
        out.print(_shorten_protein(text[:start]) + "[green]" + _shorten_protein(text[start:]) + "[/]", markup=True, highlight=False)


def _shorten_protein(text: str, keep: int = 12) -> str:
    """``<protein>MKTAYIAK…(350)…LQR</protein>`` so a person can read the instruction around it."""
    import re

    def short(m: re.Match[str]) -> str:
        seq = m.group(1)
        return m.group(0) if len(seq) <= 2 * keep else f"<protein>{seq[:keep]}…({len(seq)} aa)…{seq[-keep:]}</protein>"

    return re.sub(r"<protein>([A-Z]+)</protein>", short, text).replace("[", "\\[")


# ----------------------------------------------------------------------------- corpus
@corpus_app.command("build")
def corpus_build(
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Corpus folder (default: WORKDIR/corpus).")] = None,
    instructions_dir: Annotated[Optional[Path], typer.Option("--instructions", help="Dataset folder whose splits and decontamination to honour (default: WORKDIR/instructions).")] = None,
    text: Annotated[list[Path], typer.Option("--text", help="Your text files (plain paragraphs or JSON lines with 'text').")] = [],  # noqa: B006
    chebi: Annotated[bool, typer.Option(help="Add ChEBI definitions from the cache.")] = True,
    max_residues: Annotated[int, typer.Option(help="Longer proteins are cropped to a window of this many residues.")] = 1000,
    shards: Annotated[int, typer.Option(help="Number of shards.")] = 8,
    seed: Annotated[int, typer.Option(help="Shuffle seed.")] = 0,
    cache: CacheOpt = None,
) -> None:
    """Protein sequences (train split only) and biomedical text, shuffled into JSON-lines shards."""
    from instructprotein.instruct.corpus import build_corpus
    from instructprotein.kg.store import KnowledgeGraph

    kg_path = kg or default_kg_path(workdir)
    folder = instructions_dir or work_dir(workdir) / "instructions"
    exclude: set[str] = set()
    if (folder / "splits" / "splits.tsv").exists():
        from instructprotein.instruct.splits import Splits

        exclude = {a for a, s in Splits.load(folder / "splits").split.items() if s != "train"}
    else:
        err.print(f"[yellow]no splits in {folder}: every protein goes into the corpus (build instructions first to hold out valid/test)[/]")
    chebi_onto = None
    if chebi:
        from instructprotein.formats.obo import read_obo
        from instructprotein.sources.registry import resource_path

        path = resource_path("chebi-obo", cache, must_exist=False)
        chebi_onto = read_obo(path) if path.exists() else None
    target = out_path or work_dir(workdir) / "corpus"
    progress = _progress()
    try:
        with KnowledgeGraph(kg_path) as graph:
            stats = build_corpus(graph, target, exclude=exclude, chebi=chebi_onto, user_text=text,
                                 max_residues=max_residues, shards=shards, seed=seed, progress=progress)
    finally:
        progress.stop()
    err.print(
        f"[green]corpus written to {target}[/]: {stats.proteins:,} proteins ({stats.residues:,} residues, "
        f"{stats.proteins_excluded:,} held out, {stats.proteins_cropped:,} cropped), {stats.go_documents:,} GO, "
        f"{stats.chebi_documents:,} ChEBI and {stats.user_documents:,} user documents in {stats.shards} shards"
    )


# ----------------------------------------------------------------------------- train
train_app = typer.Typer(
    help="Pre-train and instruction-tune the model (one loop through accelerate; "
    "`accelerate launch -m instructprotein.cli train ...` for several processes or GPUs).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")

PresetOpt = Annotated[str, typer.Option("--preset", help="tiny | small | paper, or a YAML file.")]
SetOpt = Annotated[list[str], typer.Option("--set", help="Override a preset key, e.g. --set pretrain.max_steps=50 (repeatable).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Start over in --out, deleting its model, checkpoints and logs.")]


def _passive_threads() -> None:
    """Let idle OpenMP threads sleep instead of spin. Must run before torch is imported: on a CPU
    shared with other work, spinning threads made a tiny-preset step 2-3x slower (measured)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _print_training(result) -> None:
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # one report under accelerate launch / torchrun
        return

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    t = Table(title=f"{result.stage}: {result.run_dir}")
    t.add_column("")
    t.add_column("value", justify="right")
    for k, v in (
        ("stopped", result.stop_reason), ("steps", f"{result.steps:,}"), ("tokens", f"{result.tokens:,}"),
        ("epochs", f"{result.epochs:.2f}"), ("wall time (loop)", f"{result.wall_seconds / 60:.1f} min"),
        ("tokens/s", f"{result.tokens_per_second:,.0f}"), ("train loss first -> last", f"{f(result.first_train_loss)} -> {f(result.last_train_loss)}"),
        ("validation loss start -> best", f"{f(result.initial_val_loss)} -> {f(result.best_val_loss)} (step {result.best_step:,})"),
        ("processes x accumulation", f"{result.processes} x {result.accumulation_steps}"), ("precision", result.precision),
        ("parameters", f"{result.parameters:,}"),
    ):
        t.add_row(k, v)
    out.print(t)
    err.print(f"[green]model: {result.model_dir}[/] (log: {result.run_dir}/log.csv, curves: {result.run_dir}/loss.png)")


@train_app.command("pretrain")
def train_pretrain(
    preset: PresetOpt = "tiny",
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus folder (default: WORKDIR/corpus).")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: WORKDIR/runs/pretrain).")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", help="Use this tokenizer folder instead of training one on the corpus.")] = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    set_: SetOpt = [],  # noqa: B006
    workdir: WorkOpt = None,
) -> None:
    """Pre-train on the protein + text corpus; the model lands in OUT/model.

    Trains the tokenizer first (OUT/tokenizer) unless --tokenizer or model.init_from is given.
    Several processes or GPUs: `accelerate launch [--multi_gpu] [--num_processes N] -m instructprotein.cli
    train pretrain ...` (on CPUs: `torchrun --nproc_per_node N -m instructprotein.cli train pretrain ...`).
    Kill it at any time and run again with --resume.
    """
    _passive_threads()
    from instructprotein.model.presets import load_preset
    from instructprotein.train.loop import pretrain

    spec = load_preset(preset, _overrides(set_))
    result = pretrain(spec, corpus or work_dir(workdir) / "corpus", out_path or work_dir(workdir) / "runs" / "pretrain",
                      resume=resume, force=force, tokenizer=tokenizer, progress=True)
    _print_training(result)


@train_app.command("finetune")
def train_finetune(
    preset: PresetOpt = "tiny",
    init: Annotated[Optional[Path], typer.Option("--init", help="Model folder to start from (default: WORKDIR/runs/pretrain/model).")] = None,
    instructions_dir: Annotated[Optional[Path], typer.Option("--instructions", help="Instruction dataset folder (default: WORKDIR/instructions).")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: WORKDIR/runs/finetune).")] = None,
    loss_on: Annotated[Optional[str], typer.Option("--loss-on", help="answer: loss on the answer tokens; all: the paper's whole-sequence loss (default: the preset's).")] = None,
    drop_long: Annotated[bool, typer.Option("--drop-long", help="Leave out (and count) examples longer than the context instead of stopping.")] = False,
    no_pack: Annotated[bool, typer.Option("--no-pack", help="One example per padded row instead of several per row.")] = False,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    set_: SetOpt = [],  # noqa: B006
    workdir: WorkOpt = None,
) -> None:
    """Instruction-tune a model folder on the instruction dataset; the model lands in OUT/model.

    Examples are packed several per row; attention does not cross examples. Several processes
    or GPUs: `accelerate launch ... -m instructprotein.cli train finetune ...`.
    """
    _passive_threads()
    from instructprotein.model.presets import load_preset
    from instructprotein.train.loop import finetune

    if loss_on is not None and loss_on not in ("answer", "all"):
        raise typer.BadParameter("--loss-on must be answer or all")
    spec = load_preset(preset, _overrides(set_))
    result = finetune(spec, instructions_dir or work_dir(workdir) / "instructions",
                      out_path or work_dir(workdir) / "runs" / "finetune",
                      init=init or work_dir(workdir) / "runs" / "pretrain" / "model", resume=resume, force=force,
                      loss_on=loss_on, drop_long=drop_long, pack=not no_pack, progress=True)
    _print_training(result)


# ----------------------------------------------------------------------------- run
@app.command("run")
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


def main() -> None:
    try:
        app()
    except InstructProteinError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except KeyError as exc:
        err.print(f"[red]error:[/] {exc.args[0] if exc.args else exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
