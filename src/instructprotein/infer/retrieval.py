"""Homologs from the knowledge graph: search, prompt block, homology transfer.

On small compute the model's best evidence is what is known about similar sequences
(shared/GUIDE.md section 6: a 4M-parameter model learned only the class prior alone, and
reached 40-80 % with the best homolog's annotation in its prompt). This module gives:

- :class:`ProteinIndex`: the graph's proteins as an MMseqs2 target database, written once
  beside the graph file (``<kg>.proteins.fasta`` and the folder ``<kg>.mmseqs/``, stamped
  with the graph's content hash and rebuilt when it changes; in the user cache when the
  graph's folder is read-only), and :meth:`ProteinIndex.search` for top-k homologs with
  identity and E-value, excluding given accessions (decontamination) and hits at or above a
  maximum identity (leak-free evaluation);
- :func:`homolog_block`: the prompt block ``Homologs: P12345 (identity 0.62): zinc ion
  binding; nucleus. ...`` written before the question
  (:func:`~instructprotein.infer.prompts.with_context`);
- :func:`transfer`: the homology-transfer baseline, labels of the best hit and an
  identity-weighted vote over the top k;
- :func:`homolog_blocks_for_accessions`: for the instruction generator's future
  "retrieval" task family, each graph protein's block built from its homologs other than
  itself.

Search speed: ``sensitivity`` is MMseqs2's ``-s``, 4 by default (finds what is above ~50 %
identity as well as 7.5 does, at a fraction of the time; see :mod:`instructprotein.tools.mmseqs`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from instructprotein.atomic import atomic_dir, atomic_path
from instructprotein.errors import InputError
from instructprotein.formats.records import GO_ROOTS, SequenceRecord
from instructprotein.infer.inputs import Query
from instructprotein.infer.prompts import HOMOLOGS_HEADER
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.paths import cache_dir
from instructprotein.tools.mmseqs import SEARCH_COLUMNS, MMseqs, default_threads

INDEX_FORMAT = 1
_RawHit = tuple[str, float, int, float, float, float, float]  # target, fident, alnlen, evalue, bits, qcov, tcov
PRECOMPUTE_FROM = 50_000
"""Graphs with at least this many proteins get MMseqs2's precomputed k-mer index by default."""
ASPECT_ORDER = ("F", "P", "C")


@dataclass(frozen=True)
class Homolog:
    """A graph protein similar to a query (one MMseqs2 alignment)."""

    query: str
    accession: str
    identity: float  # fraction of identical residues over the alignment (MMseqs2 fident)
    evalue: float
    bits: float
    alnlen: int
    qcov: float
    tcov: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the target database -----------------------------------------------------------------------------


class ProteinIndex:
    """A graph's protein sequences as FASTA and as an MMseqs2 database, built on first use.

    ``precompute``: also build MMseqs2's k-mer index of the targets (``createindex``), so a
    search does not rebuild it every time. Measured on 2 cores against all 516k Swiss-Prot
    2014 proteins: one query took 158 s without it and 0.2-1 s with it; building it took
    193 s and 2.3 GB of disk, once. The index's table has a fixed size (~0.9 GB even for 8
    proteins), so by default (``None``) it is built only for graphs of at least
    :data:`PRECOMPUTE_FROM` proteins. It serves searches at the sensitivity it was built for
    (``index_sensitivity``, 4 by default); MMseqs2 ignores it at a sensitivity that needs
    another k-mer size.
    """

    def __init__(
        self,
        kg: KnowledgeGraph | str | Path,
        *,
        mmseqs: MMseqs | None = None,
        location: str | Path | None = None,
        threads: int | None = None,
        precompute: bool | None = None,
        index_sensitivity: float = 4.0,
    ):
        self.kg = kg if isinstance(kg, KnowledgeGraph) else KnowledgeGraph(kg)
        self._mmseqs = mmseqs
        self.threads = threads
        self.key = self.kg.meta.get("content_hash") or _file_key(self.kg.path)
        base = Path(location) if location is not None else self.kg.path.parent
        if location is None and not os.access(base, os.W_OK):
            base = cache_dir() / "kg-index" / self.key[:16]
        self.fasta = base / f"{self.kg.path.name}.proteins.fasta"
        self.stamp = base / f"{self.kg.path.name}.proteins.json"
        self.db_dir = base / f"{self.kg.path.name}.mmseqs"
        self.precompute = precompute
        self.index_sensitivity = index_sensitivity
        self.cache_size = 100_000
        self._hits: dict[tuple[str, tuple[float, float, int, float]], list[_RawHit]] = {}
        self._built = False

    @property
    def mmseqs(self) -> MMseqs:
        if self._mmseqs is None:
            self._mmseqs = MMseqs.locate()
        return self._mmseqs

    def _stamp(self) -> dict[str, Any]:
        try:
            stamp = json.loads(self.stamp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        fresh = (
            isinstance(stamp, dict)
            and stamp.get("format") == INDEX_FORMAT
            and stamp.get("content_hash") == self.key
            and self.fasta.is_file()
            and (self.db_dir / "targets.dbtype").is_file()
        )
        return stamp if fresh else {}

    def build(self, *, force: bool = False) -> Path:
        """Write the FASTA and the MMseqs2 database (and index) unless they match the graph; return the database."""
        if self._built and not force:
            return self.db_dir / "targets"
        stamp = {} if force else self._stamp()
        want_index = self.precompute
        if want_index is None:
            want_index = self.kg.count("protein") >= PRECOMPUTE_FROM
        n = stamp.get("proteins", 0)
        if not stamp:
            n = 0
            with atomic_path(self.fasta) as tmp, open(tmp, "w", encoding="ascii") as fh:
                for acc, seq in self.kg.con.execute("SELECT accession, sequence FROM protein ORDER BY pid"):
                    if seq:
                        fh.write(f">{acc}\n{seq}\n")
                        n += 1
            if n == 0:
                raise InputError("the knowledge graph has no protein sequences to search", self.kg.path)
        has_index = bool(stamp.get("index")) and stamp.get("index_sensitivity") == self.index_sensitivity
        if not stamp or (want_index and not has_index):
            threads = str(self.threads or default_threads())
            with atomic_dir(self.db_dir) as tmp_dir:
                db = Path(tmp_dir) / "targets"
                self.mmseqs.run(["createdb", self.fasta, db, "-v", "1"])
                if want_index:
                    self.mmseqs.run(["createindex", db, Path(tmp_dir) / "tmp", "-s", f"{self.index_sensitivity:g}",
                                     "--threads", threads, "-v", "1"])  # fmt: skip
                    shutil.rmtree(Path(tmp_dir) / "tmp", ignore_errors=True)
            has_index = bool(want_index)
            stamp = {
                "format": INDEX_FORMAT, "content_hash": self.key, "proteins": n, "graph": str(self.kg.path),
                "index": has_index, "index_sensitivity": self.index_sensitivity if has_index else None,
            }  # fmt: skip
            with atomic_path(self.stamp) as tmp:
                tmp.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        self._built = True
        return self.db_dir / "targets"

    # -- searching --------------------------------------------------------------------------------------
    def search(
        self,
        queries: Sequence[Query | SequenceRecord] | Mapping[str, str],
        *,
        top_k: int = 5,
        exclude: Collection[str] = (),
        exclude_self: bool = False,
        max_identity: float | None = None,
        min_identity: float = 0.0,
        sensitivity: float = 4.0,
        evalue: float = 1e-3,
        max_seqs: int = 300,
        workdir: str | Path | None = None,
    ) -> dict[str, list[Homolog]]:
        """Top-k homologs of every query among the graph's proteins, best (highest bit score) first.

        ``exclude``: accessions never returned (decontamination). ``exclude_self``: a query
        whose id is a graph accession never gets that protein back. ``max_identity``: hits
        at or above it are dropped (leak-free evaluation: with 0.7, no hit is in the same
        70 %-identity family as the query). Every query id has an entry (maybe empty).
        Raw hits are kept in memory per (sequence, search settings), so asking again about
        the same sequence (describe, then classify) runs no second search.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be positive, got {top_k}")
        if max_identity is not None and not 0.0 < max_identity <= 1.0:
            raise ValueError(f"max_identity is a fraction in (0, 1], got {max_identity}")
        if not 0.0 <= min_identity <= 1.0:
            raise ValueError(f"min_identity is a fraction in [0, 1], got {min_identity}")
        items = list(queries.items()) if isinstance(queries, Mapping) else [(q.id, q.sequence) for q in queries]
        params = (sensitivity, evalue, max_seqs, min_identity)
        raw = {seq: self._hits.get((seq, params)) for _, seq in items}
        todo = sorted(seq for seq, hits in raw.items() if hits is None)
        if todo:
            for seq, hits in zip(todo, self._run_search(todo, sensitivity, evalue, max_seqs, min_identity, workdir)):
                raw[seq] = hits
                if len(self._hits) >= self.cache_size:
                    self._hits.pop(next(iter(self._hits)))
                self._hits[(seq, params)] = hits
        excluded = set(exclude)
        result: dict[str, list[Homolog]] = {}
        for qid, seq in items:
            kept: list[Homolog] = []
            seen: set[str] = set()
            for acc, fident, alnlen, ev, bits, qcov, tcov in raw[seq] or []:
                if acc in seen or acc in excluded or (exclude_self and acc == qid):
                    continue
                if max_identity is not None and fident >= max_identity:
                    continue
                seen.add(acc)  # one alignment per target, the best
                kept.append(Homolog(qid, acc, fident, ev, bits, alnlen, qcov, tcov))
                if len(kept) == top_k:
                    break
            result[qid] = kept
        return result

    def _run_search(
        self, sequences: list[str], sensitivity: float, evalue: float, max_seqs: int, min_identity: float,
        workdir: str | Path | None,
    ) -> list[list[_RawHit]]:
        """One ``easy-search`` of distinct sequences; per sequence its hits, best (bit score) first."""
        db = self.build()
        scratch_parent = Path(workdir) if workdir is not None else None
        if scratch_parent is not None:
            scratch_parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".retrieval-", dir=scratch_parent))
        try:
            with open(tmp / "queries.fasta", "w", encoding="ascii") as fh:
                for i, seq in enumerate(sequences):
                    fh.write(f">{i}\n{seq}\n")
            self.mmseqs.run(
                [
                    "easy-search", tmp / "queries.fasta", db, tmp / "hits.tsv", tmp / "tmp",
                    "--format-mode", "0", "--format-output", ",".join(SEARCH_COLUMNS),
                    "-s", f"{sensitivity:g}", "--max-seqs", str(max_seqs), "-e", f"{evalue:g}",
                    "--min-seq-id", f"{min_identity:g}", "--threads", str(self.threads or default_threads()),
                    "-v", "1",
                ]
            )  # fmt: skip
            lines = (tmp / "hits.tsv").read_text(encoding="ascii").splitlines()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out: list[list[_RawHit]] = [[] for _ in sequences]
        for line in lines:
            q, t, fident, alnlen, ev, bits, qcov, tcov = line.split("\t")
            out[int(q)].append((t, float(fident), int(alnlen), float(ev), float(bits), float(qcov), float(tcov)))
        for hits in out:
            hits.sort(key=lambda h: (-h[4], h[3], h[0]))
        return out

    # -- annotations -----------------------------------------------------------------------------------
    def annotations(self, accession: str, *, max_per_aspect: int = 3) -> list[tuple[str, str, str]]:
        """Direct GO terms of a graph protein as (id, name, aspect), functions, processes, locations."""
        by_aspect: dict[str, list[tuple[str, str, str]]] = {a: [] for a in ASPECT_ORDER}
        for a in self.kg.direct_annotations(accession, kind="go"):
            e = a.entity
            if e.id in GO_ROOTS or e.aspect not in by_aspect:
                continue
            by_aspect[e.aspect].append((e.id, e.name, e.aspect))
        return [t for a in ASPECT_ORDER for t in by_aspect[a][:max_per_aspect]]


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"size{st.st_size}-mtime{int(st.st_mtime)}"


# -- the prompt block ---------------------------------------------------------------------------------


def homolog_block(
    index: ProteinIndex, homologs: Sequence[Homolog], *, max_per_aspect: int = 3, digits: int = 2
) -> str:
    """``Homologs: P12345 (identity 0.62): zinc ion binding; DNA repair; nucleus. Q67890 (...): ...``

    Terms per homolog: its direct GO terms, functions then processes then locations, at most
    ``max_per_aspect`` each. No homolog: ``Homologs: none found.`` (the model should learn
    that absence too).
    """
    if not homologs:
        return f"{HOMOLOGS_HEADER} none found."
    parts = []
    for h in homologs:
        names = [name for _id, name, _a in index.annotations(h.accession, max_per_aspect=max_per_aspect)]
        what = "; ".join(names) if names else "no GO annotation"
        parts.append(f"{h.accession} (identity {h.identity:.{digits}f}): {what}.")
    return f"{HOMOLOGS_HEADER} " + " ".join(parts)


def homolog_contexts(
    index: ProteinIndex,
    queries: Sequence[Query],
    *,
    top_k: int = 3,
    fits: Callable[[Query, str], bool] | None = None,
    **search: Any,
) -> dict[str, tuple[list[Homolog], str | None]]:
    """Per query: the homologs used and the block to put before the question.

    ``fits(query, block)`` says whether the prompts built with ``block`` still fit the
    model; while they do not, the last homolog is dropped (a long protein leaves room for
    fewer). With no homolog left that fits, the block is ``None``: no retrieval for that
    query rather than a refused request.
    """
    found = index.search(queries, top_k=top_k, **search)
    out: dict[str, tuple[list[Homolog], str | None]] = {}
    for q in queries:
        hits = found[q.id]
        chosen: tuple[list[Homolog], str | None] = ([], None)
        for k in range(len(hits), -1, -1):
            if k == 0 and hits:
                break  # "none found" would be untrue: leave retrieval out instead
            block = homolog_block(index, hits[:k])
            if fits is None or fits(q, block):
                chosen = (hits[:k], block)
                break
        out[q.id] = chosen
    return out


def homolog_blocks_for_accessions(
    index: ProteinIndex,
    accessions: Sequence[str],
    *,
    top_k: int = 3,
    max_identity: float | None = None,
    exclude: Collection[str] = (),
    sensitivity: float = 4.0,
) -> dict[str, str]:
    """For graph proteins: the homolog block each would get, itself excluded (one batched search).

    Meant for a "retrieval" task family of the instruction generator: render an instruction
    with ``with_context(question, block)``. ``max_identity`` (e.g. 0.95) also drops
    near-identical copies, so the model cannot learn to copy the top hit blindly.
    """
    rows = {}
    for acc in accessions:
        rows[acc] = index.kg.protein(acc).sequence
    found = index.search(
        rows, top_k=top_k, exclude=exclude, exclude_self=True, max_identity=max_identity, sensitivity=sensitivity
    )
    return {acc: homolog_block(index, hits) for acc, hits in found.items()}


# -- homology transfer --------------------------------------------------------------------------------


@dataclass
class Transfer:
    """Labels predicted from homologs: the best hit's, and an identity-weighted top-k vote."""

    best: Homolog | None
    best_labels: list[str]
    votes: dict[str, float] = field(default_factory=dict)  # label -> share of identity-weighted votes (0..1)
    k: int = 0

    @property
    def label(self) -> str | None:
        """The vote's winner (ties: the best hit's label first, then by name); None without hits."""
        if not self.votes:
            return None
        order = {lab: i for i, lab in enumerate(self.best_labels)}
        return max(self.votes, key=lambda lab: (self.votes[lab], -order.get(lab, len(order)), lab))

    def labels(self, threshold: float = 0.5) -> list[str]:
        """Every label whose vote share reaches ``threshold`` (multi-label use, e.g. GO terms)."""
        return sorted((lab for lab, v in self.votes.items() if v >= threshold), key=lambda lab: -self.votes[lab])

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.to_dict() if self.best else None,
            "best_labels": self.best_labels,
            "label": self.label,
            "votes": {k: round(v, 4) for k, v in sorted(self.votes.items(), key=lambda kv: -kv[1])},
            "k": self.k,
        }


def transfer(
    homologs: Sequence[Homolog],
    labels_of: Callable[[str], Iterable[str]] | Mapping[str, Iterable[str]],
    *,
    k: int = 5,
) -> Transfer:
    """Homology transfer: the best hit's labels, and each label's identity-weighted share among the top ``k``.

    ``homologs`` best first (as :meth:`ProteinIndex.search` returns them). ``labels_of``
    gives an accession's labels (a class, or GO ids): a mapping or a function. A homolog
    without labels still counts in the denominator (it votes for nothing).
    """
    get = labels_of.get if isinstance(labels_of, Mapping) else labels_of
    top = list(homologs)[:k]
    if not top:
        return Transfer(None, [], {}, k)

    def labels(acc: str) -> list[str]:
        value = get(acc)  # type: ignore[operator]
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return list(dict.fromkeys(value))

    best_labels = labels(top[0].accession)
    weight = sum(max(h.identity, 1e-6) for h in top)
    votes: dict[str, float] = {}
    for h in top:
        for lab in labels(h.accession):
            votes[lab] = votes.get(lab, 0.0) + max(h.identity, 1e-6) / weight
    return Transfer(top[0], best_labels, votes, k)


def go_labels(kg: KnowledgeGraph, aspect: str | None = None, *, propagated: bool = True) -> Callable[[str], list[str]]:
    """``labels_of`` for GO: a protein's terms (propagated by default, so a vote for zinc ion
    binding is also one for metal ion binding), optionally of one aspect."""
    cache: dict[str, list[str]] = {}

    def labels(acc: str) -> list[str]:
        if acc not in cache:
            with contextlib.suppress(KeyError):
                if propagated:
                    anns = kg.propagated_annotations(acc, aspect)
                else:
                    anns = kg.direct_annotations(acc, "go", aspect)
                cache[acc] = [a.entity.id for a in anns if a.entity.id not in GO_ROOTS]
        return cache.get(acc, [])

    return labels
