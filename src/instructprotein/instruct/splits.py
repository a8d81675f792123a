"""Sequence clusters of the knowledge graph and homology-aware train / valid / test splits.

Two clusterings of the graph's proteins are needed downstream:

- **80 % identity** (:func:`sequence_clusters`): the debiased sampler weighs a triple by
  1 / |cluster| (paper, section 3.3), so a family of 2,000 near-identical orthologues does
  not count 2,000 times. ``easy-linclust`` is the default: it is made for high identity and
  took 92 s over the 516k proteins of Swiss-Prot 2014 on 2 shared cores (244,455 clusters).
- **30 % identity** (:func:`make_splits`): whole clusters go to train, valid or test, so no
  test protein shares a cluster (members at >= 30 % identity over 80 % of both lengths to
  its representative) with a training protein. Here sensitivity matters more than speed:
  ``easy-linclust`` only links pairs that share a long exact k-mer, which at 30 % identity
  misses many homologs and would leak families across the split: it left 123,147 clusters of Swiss-Prot 2014 where
  ``easy-cluster`` (prefilter + alignment, 3 cascaded steps) finds 59,102. The default is
  therefore ``easy-cluster``: 598 s on 2 shared cores, once, then
  reused from disk. ``linclust=True`` is the fast option (110 s).

Identical sequences (16 % of Swiss-Prot 2014 is duplicate sequences) are clustered once and
their copies given the same representative: they would end in one cluster anyway.

Each result is a TSV plus a JSON sidecar that records the inputs (the graph's content hash,
the parameters) and the TSV's sha256; a later call with the same inputs reads the files
instead of running MMseqs2, and never trusts a TSV whose checksum does not match.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructprotein.atomic import atomic_path, write_text
from instructprotein.checksums import file_sha256
from instructprotein.errors import InputError
from instructprotein.formats.records import SequenceRecord
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.progress import Progress
from instructprotein.tools.mmseqs import MMseqs

__all__ = [
    "SPLIT_NAMES",
    "SequenceGroups",
    "Splits",
    "assign_splits",
    "load_sequence_clusters",
    "make_splits",
    "sequence_clusters",
]

SPLIT_NAMES = ("train", "valid", "test")
REMOVED = "removed"
# Bump when the meaning of an output changes, so that old outputs are recomputed.
METHOD_VERSION = 1


# -- helpers shared with decontamination ----------------------------------------------------------


def sequence_digest(sequence: str) -> bytes:
    """A 16-byte digest of a sequence: identical sequences, and only they, share it."""
    return hashlib.blake2b(sequence.encode("ascii", "replace"), digest_size=16).digest()


def kg_content_hash(kg: KnowledgeGraph) -> str:
    """The graph's content hash (written by the builder); what cached outputs are keyed on."""
    value = kg.meta.get("content_hash")
    if not value:
        raise InputError("knowledge graph has no content_hash in its meta table; rebuild it", kg.path)
    return value


def normalise(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparing cache keys."""
    return json.loads(json.dumps(value, sort_keys=True))


def reusable(summary_path: Path, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The saved summary if it was made from ``inputs`` and its outputs are intact, else None.

    The summary is written last, after its outputs, so a run interrupted in between leaves
    no summary that vouches for a missing or partial file; the checksums also catch an
    output edited by hand.
    """
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("inputs") != normalise(dict(inputs)):
        return None
    for name, digest in (summary.get("outputs") or {}).items():
        path = summary_path.parent / name
        if not path.is_file() or file_sha256(path) != digest:
            return None
    return summary


def write_tsv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Write a TSV with a header line atomically; return its sha256."""
    h = hashlib.sha256()
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for row in _chain(header, rows):
            line = "\t".join(map(str, row)) + "\n"
            fh.write(line)
            h.update(line.encode("utf-8"))
    return h.hexdigest()


def _chain(first: Sequence[object], rest: Iterable[Sequence[object]]) -> Iterator[Sequence[object]]:
    yield first
    yield from rest


def read_tsv(path: Path, header: Sequence[str]) -> Iterator[list[str]]:
    """Rows of a TSV written by :func:`write_tsv`; a different header is an :class:`InputError`."""
    with open(path, encoding="utf-8") as fh:
        first = fh.readline().rstrip("\n").split("\t")
        if first != list(header):
            raise InputError(f"expected columns {', '.join(header)}, found {', '.join(first)}", path, 1)
        for lineno, line in enumerate(fh, 2):
            row = line.rstrip("\n").split("\t")
            if len(row) != len(header):
                raise InputError(f"expected {len(header)} columns, found {len(row)}", path, lineno)
            yield row


class SequenceGroups:
    """The graph's proteins grouped by identical sequence, streamed once from the store.

    :meth:`records` yields one record per distinct sequence (id: the first accession, by
    pid); afterwards :meth:`members` gives every accession sharing that sequence. MMseqs2
    then works on distinct sequences only, and a search's ``max_seqs`` slots are not spent on
    copies of one sequence.
    """

    def __init__(self, kg: KnowledgeGraph):
        self.kg = kg
        self.copies: dict[str, list[str]] = {}
        self.proteins = 0
        self.distinct = 0

    def rows(self) -> Iterator[tuple[str, str, bytes]]:
        """(accession, sequence, digest) of every protein, in pid order."""
        for accession, sequence in self.kg.con.execute("SELECT accession, sequence FROM protein ORDER BY pid"):
            yield accession, sequence, sequence_digest(sequence)

    def records(self, rows: Iterable[tuple[str, str, bytes]] | None = None) -> Iterator[SequenceRecord]:
        first: dict[bytes, str] = {}
        self.copies, self.proteins, self.distinct = {}, 0, 0
        for accession, sequence, digest in self.rows() if rows is None else rows:
            self.proteins += 1
            owner = first.setdefault(digest, accession)
            if owner != accession:
                self.copies.setdefault(owner, []).append(accession)
                continue
            self.distinct += 1
            yield SequenceRecord(accession, "", sequence)

    def members(self, accession: str) -> list[str]:
        """The accession and every later accession with the same sequence."""
        return [accession, *self.copies.get(accession, ())]


# -- sequence clusters -----------------------------------------------------------------------------


def _cluster_name(min_seq_id: float) -> str:
    return f"clusters{round(min_seq_id * 100)}"


def sequence_clusters(
    kg: KnowledgeGraph,
    out_dir: str | Path,
    min_seq_id: float = 0.8,
    *,
    coverage: float = 0.8,
    linclust: bool = True,
    threads: int | None = None,
    mmseqs: MMseqs | None = None,
    progress: Progress | None = None,
    shared: str | Path | None = None,
) -> dict[str, str]:
    """Cluster every protein of the graph by sequence; return accession -> representative accession.

    Saved as ``clusters{NN}.tsv`` (``NN`` = identity in percent: ``clusters80.tsv``) with
    ``clusters{NN}.json`` beside it, and reused while the graph and parameters are the same
    (MMseqs2 is then not needed at all). ``coverage`` is MMseqs2's ``-c`` with ``--cov-mode
    0`` (the alignment covers that fraction of both sequences); ``linclust`` chooses
    ``easy-linclust`` (default: fast, meant for >= 50 % identity) over ``easy-cluster``.

    ``shared``: a folder that keeps clusterings across work folders, by graph content hash
    (the data cache's ``clusters/``). A clustering depends on the graph alone, and the
    sensitive 30 % one is the longest step before training, so a second work folder over
    the same graph (another seed, another recipe) copies it instead of running MMseqs2.
    """
    progress = progress or Progress()
    out_dir = Path(out_dir)
    name = _cluster_name(min_seq_id)
    tsv, summary_path = out_dir / f"{name}.tsv", out_dir / f"{name}.json"
    header = ("accession", "representative")
    inputs = {
        "kg_content_hash": kg_content_hash(kg),
        "min_seq_id": min_seq_id,
        "coverage": coverage,
        "cov_mode": 0,
        "workflow": "easy-linclust" if linclust else "easy-cluster",
        "method_version": METHOD_VERSION,
    }
    if reusable(summary_path, inputs) is not None:
        return load_sequence_clusters(tsv)
    shelf = Path(shared) / inputs["kg_content_hash"][:32] if shared is not None else None
    if shelf is not None and _copy_clustering(shelf, out_dir, name, inputs):
        return load_sequence_clusters(tsv)

    start = time.perf_counter()
    tool = mmseqs or MMseqs.locate()
    groups = SequenceGroups(kg)
    distinct = tool.cluster(
        groups.records(),
        out_dir,
        min_seq_id=min_seq_id,
        coverage=coverage,
        cov_mode=0,
        linclust=linclust,
        threads=threads,
        progress=progress,
    )
    clusters: dict[str, str] = {}
    for member, rep in distinct.items():
        for acc in groups.members(member):
            clusters[acc] = rep
    with progress.step(f"write {tsv.name}"):
        digest = write_tsv(tsv, header, sorted(clusters.items()))
    sizes = Counter(clusters.values())
    summary = {
        "inputs": inputs,
        "outputs": {tsv.name: digest},
        "counts": {
            "proteins": groups.proteins,
            "distinct_sequences": groups.distinct,
            "clusters": len(sizes),
            "singletons": sum(1 for n in sizes.values() if n == 1),
            "largest_cluster": max(sizes.values(), default=0),
        },
        "mmseqs_version": tool.version(),
        "seconds": round(time.perf_counter() - start, 1),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    if shelf is not None:
        _copy_clustering(out_dir, shelf, name, inputs)
    return clusters


def _copy_clustering(src: Path, dst: Path, name: str, inputs: Mapping[str, Any]) -> bool:
    """Copy a clustering's TSV and summary from ``src`` to ``dst`` when ``src`` holds one made
    from ``inputs`` with intact outputs; the summary goes last, so a copy cut short is never
    trusted. Returns whether it copied. A shared folder that cannot be written is skipped:
    it only saves time."""
    if reusable(src / f"{name}.json", inputs) is None:
        return False
    try:
        dst.mkdir(parents=True, exist_ok=True)
        for suffix in (".tsv", ".json"):
            with atomic_path(dst / f"{name}{suffix}") as tmp:
                shutil.copyfile(src / f"{name}{suffix}", tmp)
    except OSError:
        return False
    return reusable(dst / f"{name}.json", inputs) is not None


def load_sequence_clusters(path: str | Path) -> dict[str, str]:
    """Read a ``clusters{NN}.tsv`` written by :func:`sequence_clusters`."""
    return {acc: rep for acc, rep in read_tsv(Path(path), ("accession", "representative"))}


# -- splits ----------------------------------------------------------------------------------------------


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"fractions must be three non-negative numbers (train, valid, test) summing to 1, got {fractions}"
        )
    return float(fractions[0]), float(fractions[1]), float(fractions[2])


def _unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) from (seed, key): the same on every machine and Python version."""
    h = hashlib.blake2b(f"{seed}\t{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


def assign_splits(
    representatives: Mapping[str, str],
    fractions: Sequence[float] = (0.9, 0.05, 0.05),
    seed: int = 0,
    exclude: Iterable[str] = frozenset(),
) -> dict[str, str]:
    """Split name (train / valid / test / removed) of each accession, one draw per cluster.

    A cluster's split depends only on its representative and the seed (a hash, not a
    shuffle), so it does not move when other clusters appear or vanish, and every member of
    a cluster lands in the same split. ``fractions`` are per cluster; the share of proteins
    deviates from them by the chance of where the large clusters fall (``splits.json``
    records the real counts). Excluded accessions are ``removed`` whatever their cluster.
    """
    cuts = _check_fractions(fractions)
    excluded = set(exclude)
    split_of_rep: dict[str, str] = {}
    out: dict[str, str] = {}
    for acc, rep in representatives.items():
        split = split_of_rep.get(rep)
        if split is None:
            u = _unit_hash(seed, rep)
            split = "train" if u < cuts[0] else "valid" if u < cuts[0] + cuts[1] else "test"
            split_of_rep[rep] = split
        out[acc] = REMOVED if acc in excluded else split
    return out


@dataclass
class Splits:
    """Train / valid / test (and removed) membership of every protein of the graph."""

    split: dict[str, str]  # accession -> train / valid / test / removed
    representative: dict[str, str]  # accession -> representative of its cluster
    parameters: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    reused: bool = False

    def accessions(self, name: str) -> list[str]:
        """Accessions in one split, sorted."""
        if name not in (*SPLIT_NAMES, REMOVED):
            raise ValueError(f"unknown split {name!r}; one of {', '.join((*SPLIT_NAMES, REMOVED))}")
        return sorted(acc for acc, s in self.split.items() if s == name)

    @classmethod
    def load(cls, out_dir: str | Path) -> Splits:
        """Read ``splits.tsv`` and ``splits.json`` written by :func:`make_splits`."""
        out_dir = Path(out_dir)
        tsv, summary_path = out_dir / "splits.tsv", out_dir / "splits.json"
        if not tsv.is_file() or not summary_path.is_file():
            raise InputError("no splits here; make them with make_splits (instructprotein instruct splits)", out_dir)
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        split: dict[str, str] = {}
        representative: dict[str, str] = {}
        for acc, rep, name in read_tsv(tsv, ("accession", "representative", "split")):
            split[acc] = name
            representative[acc] = rep
        return cls(split, representative, summary.get("inputs", {}), summary.get("counts", {}), reused=True)


def make_splits(
    kg: KnowledgeGraph,
    out_dir: str | Path,
    min_seq_id: float = 0.3,
    fractions: Sequence[float] = (0.9, 0.05, 0.05),
    seed: int = 0,
    exclude: Iterable[str] = frozenset(),
    mmseqs: MMseqs | None = None,
    progress: Progress | None = None,
    *,
    coverage: float = 0.8,
    linclust: bool = False,
    threads: int | None = None,
    shared: str | Path | None = None,
) -> Splits:
    """Homology-aware splits: cluster at ``min_seq_id`` and give each cluster one split.

    The clustering is :func:`sequence_clusters` (saved as ``clusters30.tsv`` and reused by
    later calls with another seed or exclusion); ``linclust=False`` (default) runs the
    sensitive ``easy-cluster``, see the module notes. ``exclude`` (the accessions
    decontamination removed) are put in split ``removed``: never trained, validated or
    tested on. Output ``splits.tsv`` (accession, representative, split) and ``splits.json``
    (parameters, counts, graph hash), reused while all inputs match.
    """
    progress = progress or Progress()
    out_dir = Path(out_dir)
    cuts = _check_fractions(fractions)
    excluded = sorted(set(exclude))
    tsv, summary_path = out_dir / "splits.tsv", out_dir / "splits.json"
    inputs = {
        "kg_content_hash": kg_content_hash(kg),
        "min_seq_id": min_seq_id,
        "coverage": coverage,
        "workflow": "easy-linclust" if linclust else "easy-cluster",
        "fractions": list(cuts),
        "seed": seed,
        "excluded": len(excluded),
        "excluded_sha256": hashlib.sha256("\n".join(excluded).encode()).hexdigest(),
        "method_version": METHOD_VERSION,
    }
    if reusable(summary_path, inputs) is not None:
        return Splits.load(out_dir)

    clusters = sequence_clusters(
        kg,
        out_dir,
        min_seq_id,
        coverage=coverage,
        linclust=linclust,
        threads=threads,
        mmseqs=mmseqs,
        progress=progress,
        shared=shared,
    )
    split = assign_splits(clusters, cuts, seed, excluded)
    with progress.step(f"write {tsv.name}"):
        digest = write_tsv(
            tsv, ("accession", "representative", "split"), [(acc, clusters[acc], split[acc]) for acc in sorted(split)]
        )
    proteins = Counter(split.values())
    cluster_sets: dict[str, set[str]] = {name: set() for name in SPLIT_NAMES}
    for acc, name in split.items():
        if name != REMOVED:
            cluster_sets[name].add(clusters[acc])
    counts = {name: proteins.get(name, 0) for name in (*SPLIT_NAMES, REMOVED)}
    counts.update({f"{name}_clusters": len(cluster_sets[name]) for name in SPLIT_NAMES})
    counts["excluded_not_in_kg"] = sum(1 for acc in excluded if acc not in clusters)
    summary = {
        "inputs": inputs,
        "outputs": {tsv.name: digest},
        "counts": counts,
        "protein_fractions": {name: round(counts[name] / max(1, len(split)), 4) for name in (*SPLIT_NAMES, REMOVED)},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    representative = {acc: clusters[acc] for acc in split}
    return Splits(split, representative, inputs, counts)
