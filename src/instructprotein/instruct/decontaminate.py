"""Decontamination: remove from training every protein too similar to a benchmark sequence.

80 % of the DeepLoc test sequences are verbatim in Swiss-Prot 2014: without this step a model is tested on its training data. The paper removed
proteins "in the same 70 %-identity cluster" as any benchmark test sequence. Cluster
membership depends on which representative the clustering happened to pick, so here the
rule is applied directly, which is what it is meant to approximate: a knowledge-graph protein
is removed when

1. its sequence is *identical* to a benchmark sequence (found by hashing: instant, and sure
   whatever the search settings), reason ``exact``; or
2. an MMseqs2 ``easy-search`` of the benchmark sequences against the graph's proteins
   aligns it to one with identity >= ``min_identity`` (MMseqs2's ``fident``: identical
   residues / alignment length) over at least ``min_coverage`` of the *shorter* of the two
   sequences, reason ``search``.

Why coverage of the shorter sequence (default 0.5): a benchmark fragment inside a full-length
training protein, or the other way round, is the same protein and must go, which MMseqs2's
clustering default (-c 0.8 of *both*) would keep apart; but a short shared domain (a zinc
finger at 70 % within two otherwise unrelated proteins) is not the same protein, and removing
every protein with one would strip whole families from training for no test leak.

Search settings: ``sensitivity`` 4 (MMseqs2 ``-s``) finds >= 70 % identity as well as 7.5
does (on 1,000 random benchmark sequences: the same 7,476 graph proteins removed) at a
fraction of the time (7.5: 36 min for 11k queries against 516k on 2 cores). ``max_seqs``
(default 1000; MMseqs2's own default 300 missed 21 of those 7,476, 0.3 %) caps the graph
proteins per query that reach alignment; queries and targets are both de-duplicated first,
so the slots go to distinct sequences. The summary records how many queries filled the cap
(1 of 21,044 on the paper's benchmark files). Below ~0.5 identity, raise ``sensitivity``.

Measured on the whole Swiss-Prot 2014 graph (516,371 proteins) against the 8 files of
the package's benchmark files (24,988 sequences, 21,044 distinct), 2 shared cores: 13 minutes, 79,291
proteins removed at 0.7 (12,327 verbatim copies, 66,964 by search).

Outputs in ``out_dir``: ``removed.tsv`` (accession, benchmark_id, identity, reason; one row
per removed protein, its closest benchmark sequence), ``hits.tsv.gz`` (every alignment the
search found, at any identity, one row per graph protein: the evaluation's homology
baseline and retrieval read their hits from here instead of searching the same benchmark
sequences against the same graph again) and ``decontamination.json`` (inputs, counts,
benchmark files with their sha256, MMseqs2 version). All are reused while the graph's
content hash, the benchmark files' sha256 and the parameters stay the same.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructprotein.atomic import atomic_path, write_text
from instructprotein.checksums import file_sha256
from instructprotein.errors import InputError
from instructprotein.formats.benchmarks import benchmark_files, benchmark_sequences
from instructprotein.formats.records import SequenceRecord
from instructprotein.instruct.splits import (
    SequenceGroups,
    kg_content_hash,
    read_tsv,
    reusable,
    sequence_digest,
    write_tsv,
)
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.progress import Progress
from instructprotein.tools.mmseqs import MMseqs

__all__ = ["Decontamination", "decontaminate"]

REMOVED_TSV = "removed.tsv"
HITS_TSV = "hits.tsv.gz"
SUMMARY_JSON = "decontamination.json"
HEADER = ("accession", "benchmark_id", "identity", "reason")
HITS_HEADER = ("query_digest", "target", "fident", "alnlen", "evalue", "bits", "qcov", "tcov")
METHOD_VERSION = 2


@dataclass
class Decontamination:
    """What decontamination removed, and why."""

    removed: dict[str, tuple[str, float, str]]  # accession -> (benchmark id, identity, "exact" | "search")
    counts: dict[str, int] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # read back from out_dir rather than computed

    @property
    def excluded(self) -> frozenset[str]:
        """The removed accessions, in the form :func:`make_splits` takes as ``exclude``."""
        return frozenset(self.removed)

    @classmethod
    def load(cls, out_dir: str | Path) -> Decontamination:
        """Read ``removed.tsv`` and ``decontamination.json`` written by :func:`decontaminate`."""
        out_dir = Path(out_dir)
        tsv, summary_path = out_dir / REMOVED_TSV, out_dir / SUMMARY_JSON
        if not tsv.is_file() or not summary_path.is_file():
            raise InputError("no decontamination here; run decontaminate first", out_dir)
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        removed: dict[str, tuple[str, float, str]] = {}
        for acc, bench, identity, reason in read_tsv(tsv, HEADER):
            removed[acc] = (bench, float(identity), reason)
        return cls(removed, summary.get("counts", {}), summary.get("inputs", {}), reused=True)


def decontaminate(
    kg: KnowledgeGraph,
    benchmark_paths: Sequence[str | Path],
    out_dir: str | Path,
    min_identity: float = 0.7,
    sensitivity: float = 4.0,
    mmseqs: MMseqs | None = None,
    progress: Progress | None = None,
    *,
    min_coverage: float = 0.5,
    max_seqs: int = 1000,
    threads: int | None = None,
) -> Decontamination:
    """Mark every graph protein at >= ``min_identity`` to a sequence of the benchmark files.

    ``benchmark_paths`` are files of any benchmark shape (``.jsonl`` / ``.tsv``, optionally
    gzipped) or folders of them; an empty file is counted in the summary, not an error.
    See the module notes for the rule, the outputs and the caching.
    """
    if not 0 < min_identity <= 1:
        raise ValueError(f"min_identity is a fraction in (0, 1], got {min_identity}")
    if not 0 <= min_coverage <= 1:
        raise ValueError(f"min_coverage is a fraction in 0..1, got {min_coverage}")
    progress = progress or Progress()
    out_dir = Path(out_dir)
    files = benchmark_files(benchmark_paths)
    if not files:
        raise InputError("no benchmark files found", ", ".join(map(str, benchmark_paths)) or "(none given)")
    with progress.step("checksum benchmark files", len(files)) as bar:
        checksums = []
        for f in files:
            checksums.append({"name": f.name, "sha256": file_sha256(f)})
            bar.advance()
    inputs = {
        "kg_content_hash": kg_content_hash(kg),
        "benchmarks": checksums,
        "min_identity": min_identity,
        "min_coverage": min_coverage,
        "sensitivity": sensitivity,
        "max_seqs": max_seqs,
        "evalue": 1e-3,
        "method_version": METHOD_VERSION,
    }
    summary_path = out_dir / SUMMARY_JSON
    if reusable(summary_path, inputs) is not None:
        return Decontamination.load(out_dir)

    start = time.perf_counter()
    # Benchmark sequences, de-duplicated: digest -> first id (the one reported)
    queries: dict[bytes, SequenceRecord] = {}
    per_file: list[dict[str, Any]] = []
    total = 0
    for f, check in zip(files, checksums):
        n = 0
        for rec in progress.track(benchmark_sequences([f]), f"read {f.name}"):
            n += 1
            queries.setdefault(sequence_digest(rec.sequence), rec)
        per_file.append({**check, "path": str(f), "sequences": n})
        total += n

    removed: dict[str, tuple[str, float, str]] = {}
    groups = SequenceGroups(kg)

    def targets() -> Iterator[SequenceRecord]:
        """The graph's distinct sequences; exact matches are marked on the way past."""

        def rows() -> Iterator[tuple[str, str, bytes]]:
            for acc, seq, digest in groups.rows():
                hit = queries.get(digest)
                if hit is not None:
                    removed[acc] = (hit.id, 1.0, "exact")
                yield acc, seq, digest

        yield from groups.records(rows())

    tool: MMseqs | None = None  # stays None when there is nothing to search
    matched: set[str] = set()  # distinct benchmark sequences (first ids) with a removal
    hits_per_query: Counter[str] = Counter()
    if queries:
        tool = mmseqs or MMseqs.locate()
        hits = tool.search(
            _stable(queries.values()),
            targets(),
            out_dir,
            min_seq_id=0.0,
            sensitivity=sensitivity,
            max_seqs=max_seqs,
            threads=threads,
            progress=progress,
        )
        for hit in hits:
            hits_per_query[hit.query] += 1
            if hit.fident < min_identity or hit.shorter_coverage < min_coverage:
                continue
            matched.add(hit.query)
            for acc in groups.members(hit.target):
                old = removed.get(acc)
                if old is None or (old[2] != "exact" and hit.fident > old[1]):
                    removed[acc] = (hit.query, round(hit.fident, 3), "search")
    else:  # only empty files: nothing can be contaminated, and MMseqs2 is not needed
        for _ in groups.records():
            pass

    with progress.step(f"write {REMOVED_TSV} and {HITS_TSV}"):
        digest = write_tsv(out_dir / REMOVED_TSV, HEADER, ((acc, *removed[acc]) for acc in sorted(removed)))
        hits_digest = _write_hits(out_dir / HITS_TSV, queries, hits if queries else [], groups)
    reasons = Counter(reason for _, _, reason in removed.values())
    counts = {
        "kg_proteins": groups.proteins,
        "kg_distinct_sequences": groups.distinct,
        "benchmark_files": len(files),
        "empty_benchmark_files": sum(1 for f in per_file if f["sequences"] == 0),
        "benchmark_sequences": total,
        "distinct_benchmark_sequences": len(queries),
        "removed": len(removed),
        "removed_exact": reasons.get("exact", 0),
        "removed_search": reasons.get("search", 0),
        "distinct_benchmark_sequences_matched": len(matched | {b for b, _, r in removed.values() if r == "exact"}),
        "queries_at_max_seqs": sum(1 for n in hits_per_query.values() if n >= max_seqs),
    }
    summary = {
        "inputs": inputs,
        "outputs": {REMOVED_TSV: digest, HITS_TSV: hits_digest},
        "counts": counts,
        "benchmark_files": per_file,
        "mmseqs_version": tool.version() if tool is not None else None,
        "seconds": round(time.perf_counter() - start, 1),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return Decontamination(removed, counts, inputs)


def _write_hits(path: Path, queries: dict[bytes, SequenceRecord], hits: Sequence[Any], groups: SequenceGroups) -> str:
    """Every hit, expanded to every graph protein with the hit sequence; a query without hits
    has one row with an empty target (it was searched). Returns the file's sha256."""
    import gzip

    digest_of = {rec.id: d.hex() for d, rec in queries.items()}
    seen: set[str] = set()
    with atomic_path(path) as tmp:
        with gzip.open(tmp, "wt", encoding="ascii", compresslevel=3) as fh:
            fh.write("\t".join(HITS_HEADER) + "\n")
            for h in hits:
                q = digest_of[h.query]
                seen.add(q)
                for acc in groups.members(h.target):
                    fh.write(
                        f"{q}\t{acc}\t{h.fident:.3f}\t{h.alnlen}\t{h.evalue:.3g}\t{h.bits:g}\t{h.qcov:.3f}\t{h.tcov:.3f}\n"
                    )
            for q in sorted(set(digest_of.values()) - seen):
                fh.write(f"{q}\t\t\t\t\t\t\t\n")
    return file_sha256(path)


def load_hits(out_dir: str | Path) -> dict[str, list[tuple[str, float, int, float, float, float, float]]]:
    """``hits.tsv.gz`` as query sequence digest (hex) -> raw hits (target, fident, alnlen, evalue,
    bits, qcov, tcov), the form :class:`~instructprotein.kg.homologs.ProteinIndex` caches."""
    import gzip

    out: dict[str, list[tuple[str, float, int, float, float, float, float]]] = {}
    path = Path(out_dir) / HITS_TSV
    with gzip.open(path, "rt", encoding="ascii") as fh:
        next(fh)
        for line in fh:
            q, t, fi, al, ev, bits, qc, tc = line.rstrip("\n").split("\t")
            got = out.setdefault(q, [])
            if t:
                got.append((t, float(fi), int(al), float(ev), float(bits), float(qc), float(tc)))
    return out


def _stable(records: Iterable[SequenceRecord]) -> list[SequenceRecord]:
    """Queries in id order, so that the same inputs give MMseqs2 the same file."""
    return sorted(records, key=lambda r: r.id)
