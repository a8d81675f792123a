"""`instructprotein kg`: build the knowledge graph and query it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from instructprotein.cli.common import CacheOpt, KgOpt, WorkOpt, err, out, progress_bar
from instructprotein.errors import SkipLog
from instructprotein.paths import default_kg_path

kg_app = typer.Typer(help="Build and query the protein knowledge graph.", no_args_is_help=True)


@kg_app.command("build")
def kg_build(
    source: Annotated[
        str, typer.Option(help="debian: Swiss-Prot 2014 from metastudent-data; uniprot: your .dat files + --obo.")
    ] = "debian",
    uniprot: Annotated[
        list[Path], typer.Option(help="UniProt flat file(s), .dat or .dat.gz (with --source uniprot).")
    ] = [],  # noqa: B006
    obo: Annotated[Optional[Path], typer.Option(help="GO .obo file (required with --source uniprot).")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Output file (default: WORKDIR/kg.sqlite).")] = None,
    sample: Annotated[
        Optional[float], typer.Option(help="Keep this fraction of proteins (deterministic by accession).")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Skip and count bad records instead of stopping at the first.")
    ] = False,
    cache: CacheOpt = None,
    workdir: WorkOpt = None,
) -> None:
    """Build the knowledge graph (SQLite) from either source."""
    from instructprotein.kg.inputs import build_from_metastudent, build_from_uniprot, check_sample

    check_sample(sample)  # before any data is fetched or read
    target = out_path or default_kg_path(workdir)
    skip = SkipLog() if skip_bad else None
    progress = progress_bar()
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
    plot: Annotated[
        Optional[Path], typer.Option(help="Plot file (default: beside the graph, kg-frequencies.png).")
    ] = None,
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
        title = "proteins per GO term, " + (
            "direct annotations" if mode == "direct" else "propagated over is_a + part_of"
        )
        t = Table(title=title)
        for col in ("aspect", "terms", "median", "p90", "p99", "max", "<10", ">=1000", "Gini"):
            t.add_column(col, justify="left" if col == "aspect" else "right")
        for aspect, d in stats["frequency"].items():
            x = d[mode]
            if x.get("terms"):
                t.add_row(
                    aspect,
                    f"{x['terms']:,}",
                    f"{x['median']:g}",
                    f"{x['p90']:g}",
                    f"{x['p99']:,.0f}",
                    f"{x['max']:,}",
                    f"{x['terms_under_10']:,}",
                    f"{x['terms_1000_or_more']:,}",
                    f"{x['gini']:.3f}",
                )
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
    fasta: Annotated[
        bool, typer.Option("--fasta", help="Print the sequence as FASTA only (e.g. to describe it).")
    ] = False,
) -> None:
    """A protein's direct (and optionally propagated) annotations, or its sequence (--fasta)."""
    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(kg or default_kg_path(workdir)) as graph:
        p = graph.protein(protein)
        if fasta:
            lines = [p.sequence[i : i + 60] for i in range(0, len(p.sequence), 60)]
            head = " ".join([p.accession, p.entry_name or "", p.name or "", f"OS={p.organism}" if p.organism else ""])
            typer.echo("\n".join([">" + " ".join(head.split()), *lines]))  # empty fields left out
            return
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
