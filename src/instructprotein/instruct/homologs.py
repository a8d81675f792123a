"""Homologs of the proteins instructions are written about, for their evidence blocks.

A model that is shown homologs' annotations at inference must have been trained with them
(:mod:`~instructprotein.prompt.evidence`), and trained on evidence that looks like what
it will be shown. So the search here mirrors the evaluation's: the targets are the
*training* split's proteins only (a valid or test protein is never evidence, as it is
never in the graph side of the evaluation), the protein itself is left out, and so is
every hit at or above ``max_identity`` (by default the decontamination threshold, 0.7: the
evaluation drops those hits, so training on them would teach the model to trust a kind of
evidence it never gets on the benchmarks).

Output (``out_dir``): ``homologs.tsv`` (query, rank, homolog, identity) and
``homologs.json`` (inputs, counts, time). Reused while the graph, the queries, the set of
allowed targets and the settings are the same.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from instructprotein.atomic import write_text
from instructprotein.instruct.splits import kg_content_hash, read_tsv, reusable, write_tsv
from instructprotein.kg.homologs import ProteinIndex
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.progress import Progress

HEADER = ("query", "rank", "homolog", "identity")
TSV = "homologs.tsv"
SUMMARY = "homologs.json"
METHOD_VERSION = 1


def _digest(items: Collection[str]) -> str:
    h = hashlib.sha256()
    for x in sorted(items):
        h.update(x.encode() + b"\n")
    return h.hexdigest()


def training_homologs(
    kg: KnowledgeGraph,
    queries: Sequence[str],
    train: Collection[str],
    out_dir: str | Path,
    *,
    top_k: int = 3,
    max_identity: float | None = 0.7,
    sensitivity: float = 4.0,
    max_seqs: int = 300,
    index: ProteinIndex | None = None,
    progress: Progress | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Per query accession its top-``top_k`` homologs among ``train`` as (accession, identity).

    Every query gets an entry (an empty list: searched, nothing found). See the module notes.
    """
    progress = progress or Progress()
    out_dir = Path(out_dir)
    queries = sorted(set(queries))
    train_set = frozenset(train)
    inputs = {
        "kg_content_hash": kg_content_hash(kg),
        "queries": _digest(queries),
        "targets": _digest(train_set),
        "top_k": top_k,
        "max_identity": max_identity,
        "sensitivity": sensitivity,
        "max_seqs": max_seqs,
        "method_version": METHOD_VERSION,
    }
    if reusable(out_dir / SUMMARY, inputs) is not None:
        found: dict[str, list[tuple[str, float]]] = {q: [] for q in queries}
        for q, _rank, hom, identity in read_tsv(out_dir / TSV, HEADER):
            found.setdefault(q, []).append((hom, float(identity)))
        return found
    start = time.perf_counter()
    index = index or ProteinIndex(kg)
    with progress.step("MMseqs2 index of the graph's proteins"):
        index.build()
    seqs: dict[str, str] = {}
    for i in range(0, len(queries), 500):
        chunk = queries[i : i + 500]
        marks = ",".join("?" * len(chunk))
        seqs.update(kg.con.execute(f"SELECT accession, sequence FROM protein WHERE accession IN ({marks})", chunk))
    exclude = frozenset(kg.accessions()) - train_set
    with progress.step(
        f"homologs of {len(seqs):,} proteins among {len(train_set):,} training proteins (MMseqs2 -s {sensitivity:g})"
    ):
        hits = index.search(
            {q: s for q, s in seqs.items() if s},
            top_k=top_k,
            exclude=exclude,
            exclude_self=True,
            max_identity=max_identity,
            sensitivity=sensitivity,
            max_seqs=max_seqs,
            workdir=out_dir,
        )
    found = {q: [(h.accession, round(h.identity, 3)) for h in hits.get(q, [])] for q in queries}
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = write_tsv(
        out_dir / TSV, HEADER, ((q, r, acc, ident) for q in queries for r, (acc, ident) in enumerate(found[q], 1))
    )
    with_hits = sum(1 for v in found.values() if v)
    summary = {
        "inputs": inputs,
        "outputs": {TSV: digest},
        "counts": {
            "queries": len(queries),
            "with_homologs": with_hits,
            "targets": len(train_set),
            "pairs": sum(len(v) for v in found.values()),
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_text(out_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return found
