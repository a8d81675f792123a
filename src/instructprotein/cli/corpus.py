"""`instructprotein corpus`: the pre-training corpus of protein sequences and biomedical text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from instructprotein.cli.common import CacheOpt, KgOpt, WorkOpt, err, progress_bar
from instructprotein.paths import default_kg_path, work_dir

corpus_app = typer.Typer(help="The pre-training corpus (protein sequences + biomedical text).", no_args_is_help=True)


@corpus_app.command("build")
def corpus_build(
    kg: KgOpt = None,
    workdir: WorkOpt = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Corpus folder (default: WORKDIR/corpus).")] = None,
    instructions_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--instructions",
            help="Dataset folder whose splits and decontamination to honour (default: WORKDIR/instructions).",
        ),
    ] = None,
    text: Annotated[
        list[Path], typer.Option("--text", help="Your text files (plain paragraphs or JSON lines with 'text').")
    ] = [],  # noqa: B006
    chebi: Annotated[bool, typer.Option(help="Add ChEBI definitions from the cache.")] = True,
    max_residues: Annotated[
        int, typer.Option(help="Longer proteins are cropped to a window of this many residues.")
    ] = 1000,
    max_proteins: Annotated[
        Optional[int], typer.Option(help="A seeded sample of this many training proteins (default: all).")
    ] = None,
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
        err.print(
            f"[yellow]no splits in {folder}: every protein goes into the corpus (build instructions first to hold out valid/test)[/]"
        )
    chebi_onto = None
    if chebi:
        from instructprotein.formats.obo import read_obo
        from instructprotein.sources.registry import resource_path

        path = resource_path("chebi-obo", cache, must_exist=False)
        chebi_onto = read_obo(path) if path.exists() else None
    target = out_path or work_dir(workdir) / "corpus"
    progress = progress_bar()
    try:
        with KnowledgeGraph(kg_path) as graph:
            stats = build_corpus(
                graph,
                target,
                exclude=exclude,
                chebi=chebi_onto,
                user_text=text,
                max_residues=max_residues,
                max_proteins=max_proteins,
                shards=shards,
                seed=seed,
                progress=progress,
            )
    finally:
        progress.stop()
    err.print(
        f"[green]corpus written to {target}[/]: {stats.proteins:,} proteins ({stats.residues:,} residues, "
        f"{stats.proteins_excluded:,} held out, {stats.proteins_not_sampled:,} not sampled, {stats.proteins_cropped:,} cropped), {stats.go_documents:,} GO, "
        f"{stats.chebi_documents:,} ChEBI and {stats.user_documents:,} user documents in {stats.shards} shards"
    )
