"""The knowledge graph loaded into memory once, for generating instructions at scale.

Why: the dataset builder writes ~1M instructions from 516k proteins in minutes; one SQL
query per instruction (or per protein, through :class:`KnowledgeGraph`'s joins) would
spend that budget on query overhead alone. :class:`KGView` reads each table with one
query into numpy arrays or plain dicts, and answers per-protein and per-term questions
from memory:

- direct annotations of every protein: CSR arrays over pid (4.5M rows on the full graph);
- the propagation closure (term -> every ancestor over is_a + part_of, with distances);
- term ids, names, aspects, definitions, parents / children, propagated frequencies.

Sequences and free text (names, FUNCTION, SUBCELLULAR LOCATION) are the bulk of the file;
they are read lazily one pid shard at a time (``WHERE pid BETWEEN ? AND ?``), so a worker
walking its range of pids does one query per few thousand proteins.

The view also answers the subset of :class:`KnowledgeGraph`'s API that chains use
(``entity``, ``parents``, ``children``, ``ancestors``, ``ancestor_chain``,
``direct_annotations``, ``propagated_annotations``) with the same results, so chain code
runs on either. Evidence codes are not loaded (``Annotation.evidence`` is ``None``).

After ``fork()`` the view reopens its SQLite connection in the child (a connection must not
cross a fork); the arrays are shared copy-on-write.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instructprotein.errors import InputError, NotFoundError
from instructprotein.formats.records import GO_ROOTS, PROPAGATING_RELATIONS
from instructprotein.kg.schema import SCHEMA_VERSION
from instructprotein.kg.store import Annotation, Entity, Protein

# Annotation groups: GO by aspect, other entities by kind.
GROUPS: tuple[str, ...] = ("F", "P", "C", "interpro", "pfam", "prosite", "keyword", "location")
GO_ASPECTS: tuple[str, ...] = ("F", "P", "C")


@dataclass(frozen=True, slots=True)
class ProteinInfo:
    """The per-protein text fields, read lazily by shard."""

    pid: int
    accession: str
    sequence: str
    name: str | None
    function: str | None
    location: str | None


@dataclass(frozen=True, slots=True)
class ProteinTerms:
    """One protein's annotations as entity ids (eids).

    ``direct`` maps a group (``F``/``P``/``C`` for GO, else the entity kind) to the
    protein's direct eids, sorted. ``carried`` is every GO term the protein carries by the
    true-path rule (direct ones included, roots excluded); ``direct_go`` its direct GO terms.
    """

    pid: int
    direct: dict[str, tuple[int, ...]]
    direct_go: frozenset[int]
    carried: frozenset[int]


_PROTEIN_SQL = "SELECT pid, accession, sequence, name, function, location FROM protein"


def _info(row: tuple) -> ProteinInfo:
    return ProteinInfo(row[0], row[1], row[2], row[3] or None, row[4] or None, row[5] or None)


def _fromiter(cursor: Iterable[tuple[int, ...]], width: int, count: int) -> np.ndarray:
    """Rows of ints into an (n, width) array without building a list of tuples first."""
    flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.int64, count=count * width)
    return flat.reshape(count, width)


class KGView:
    """A read-only, in-memory view of a built knowledge graph (see the module docstring)."""

    def __init__(self, path: str | Path, *, shard_size: int = 4096):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError("knowledge graph not found; build it with `instructprotein kg build`", self.path)
        self.shard_size = shard_size
        self._con: sqlite3.Connection | None = None
        self._con_pid = -1
        con = self.con
        try:
            meta = dict(con.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a knowledge graph file ({exc})", self.path) from exc
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"schema version {meta.get('schema_version')} but this code reads {SCHEMA_VERSION}", self.path
            )
        self.meta = meta
        self._load_entities(con)
        self._load_edges(con)
        self._load_closure(con)
        self._load_proteins(con)
        self._load_annotations(con)
        self._anc_sets: dict[int, frozenset[int]] = {}
        self._chains: dict[int, tuple[tuple[int, str], ...]] = {}
        self._shard: dict[int, ProteinInfo] = {}
        self._shard_hi = 0

    # -- loading ---------------------------------------------------------------------------
    @property
    def con(self) -> sqlite3.Connection:
        """A read-only connection of this process (reopened after a fork)."""
        if self._con is None or self._con_pid != os.getpid():
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._con_pid = os.getpid()
        return self._con

    def _load_entities(self, con: sqlite3.Connection) -> None:
        n = con.execute("SELECT COALESCE(MAX(eid), 0) FROM entity").fetchone()[0]
        self.n_entities = n
        self.ids: list[str] = [""] * (n + 1)
        self.kinds: list[str] = [""] * (n + 1)
        self.aspects: list[str | None] = [None] * (n + 1)
        self.names: list[str] = [""] * (n + 1)
        self.definitions: list[str | None] = [None] * (n + 1)
        self.group: list[str] = [""] * (n + 1)  # F/P/C for GO, else the kind
        for eid, tid, kind, aspect, name, definition in con.execute(
            "SELECT eid, id, kind, aspect, name, definition FROM entity"
        ):
            self.ids[eid] = tid
            self.kinds[eid] = kind
            self.aspects[eid] = aspect
            self.names[eid] = name or tid
            self.definitions[eid] = definition
            self.group[eid] = aspect if kind == "go" else kind
        self.eid_of: dict[str, int] = {tid: e for e, tid in enumerate(self.ids) if tid}
        for alias, eid in con.execute("SELECT alias, eid FROM entity_alias"):
            self.eid_of.setdefault(alias, eid)
        self.roots: frozenset[int] = frozenset(self.eid_of[r] for r in GO_ROOTS if r in self.eid_of)
        self.frequency = np.zeros(n + 1, dtype=np.int64)  # propagated: proteins with the term or a descendant
        self.direct_frequency = np.zeros(n + 1, dtype=np.int64)
        for eid, direct, prop in con.execute("SELECT eid, direct, propagated FROM entity_stats"):
            self.direct_frequency[eid] = direct
            self.frequency[eid] = prop

    def _load_edges(self, con: sqlite3.Connection) -> None:
        parents: dict[int, list[tuple[int, str]]] = {}
        children: dict[int, list[tuple[int, str]]] = {}
        self.edge_relation: dict[tuple[int, int], str] = {}  # (child, parent) -> relation
        for child, parent, rel in con.execute("SELECT child, parent, relation FROM edge"):
            parents.setdefault(child, []).append((parent, rel))
            children.setdefault(parent, []).append((child, rel))
            self.edge_relation.setdefault((child, parent), rel)
        key = lambda pr: (pr[1], self.ids[pr[0]])  # noqa: E731 - as KnowledgeGraph orders them
        self.parents_of: dict[int, tuple[tuple[int, str], ...]] = {
            c: tuple(sorted(v, key=key)) for c, v in parents.items()
        }
        self.children_of: dict[int, tuple[tuple[int, str], ...]] = {
            p: tuple(sorted(v, key=key)) for p, v in children.items()
        }

    def _load_closure(self, con: sqlite3.Connection) -> None:
        count = con.execute("SELECT COUNT(*) FROM closure").fetchone()[0]
        rows = _fromiter(con.execute("SELECT eid, ancestor, distance FROM closure ORDER BY eid, ancestor"), 3, count)
        eid, anc, dist = rows[:, 0], rows[:, 1].astype(np.int32), rows[:, 2].astype(np.int32)
        self._clo_ptr = np.searchsorted(eid, np.arange(self.n_entities + 2)).astype(np.int64)
        self._clo_anc = anc
        self._clo_dist = dist
        # number of ancestors (self excluded): the "most specific" measure KnowledgeGraph uses
        self.n_ancestors = (np.diff(self._clo_ptr)[: self.n_entities + 1] - 1).clip(min=0)
        # shortest distance to the root of the term's own aspect (0 for roots, -1 for non-GO);
        # own aspect, because a cross-aspect part_of (MF part_of BP, in newer GO) puts the
        # other aspect's root in the closure too
        self.depth = np.full(self.n_entities + 1, -1, dtype=np.int32)
        aspect_code = np.array([ord(a) if a else 0 for a in self.aspects], dtype=np.int32)
        for root in self.roots:
            at = (anc == root) & (aspect_code[eid] == aspect_code[root])
            self.depth[eid[at]] = dist[at]

    def _load_proteins(self, con: sqlite3.Connection) -> None:
        n = con.execute("SELECT COALESCE(MAX(pid), 0) FROM protein").fetchone()[0]
        self.n_proteins = n
        self.accessions: list[str] = [""] * (n + 1)
        self.lengths = np.zeros(n + 1, dtype=np.int32)
        rows = con.execute("SELECT pid, accession, length FROM protein").fetchall()
        if rows:
            pids, accs, lengths = zip(*rows)
            for pid, acc in zip(pids, accs):
                self.accessions[pid] = acc
            self.lengths[np.array(pids)] = np.array(lengths, dtype=np.int32)
            self.pid_of: dict[str, int] = dict(zip(accs, pids))
        else:
            self.pid_of = {}
        del rows
        for alias, pid in con.execute("SELECT alias, pid FROM protein_alias"):
            self.pid_of.setdefault(alias, pid)

    def _load_annotations(self, con: sqlite3.Connection) -> None:
        # entity_pids holds the same direct annotations as the annotation table, packed per
        # entity: 38k blobs decode ~10x faster than 4.5M (pid, eid) rows become tuples.
        eid_parts: list[np.ndarray] = []
        pid_parts: list[np.ndarray] = []
        for eid, blob in con.execute("SELECT eid, pids FROM entity_pids"):
            pids = np.frombuffer(blob, dtype="<i4")
            pid_parts.append(pids)
            eid_parts.append(np.full(len(pids), eid, dtype=np.int32))
        pids = np.concatenate(pid_parts) if pid_parts else np.zeros(0, dtype=np.int32)
        eids = np.concatenate(eid_parts) if eid_parts else np.zeros(0, dtype=np.int32)
        expected = con.execute("SELECT COUNT(*) FROM annotation").fetchone()[0]
        if len(pids) != expected:  # a graph written without entity_pids: read the table itself
            count = expected
            rows = _fromiter(con.execute("SELECT pid, eid FROM annotation"), 2, count)
            pids, eids = rows[:, 0], rows[:, 1]
        order = np.lexsort((eids, pids))
        pids, eids = pids[order], eids[order]
        self._ann_ptr = np.searchsorted(pids, np.arange(self.n_proteins + 2)).astype(np.int64)
        self._ann_eid = eids.astype(np.int32)

    # -- bulk arrays (for sampling over all proteins at once) -------------------------------
    def annotation_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, eids): protein ``pid``'s direct entities are ``eids[indptr[pid]:indptr[pid+1]]``."""
        return self._ann_ptr, self._ann_eid

    def closure_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, ancestors): term ``eid``'s ancestors (itself included) over is_a + part_of."""
        return self._clo_ptr, self._clo_anc

    # -- per term (eids) -------------------------------------------------------------------
    def ancestor_set(self, eid: int) -> frozenset[int]:
        """The term and all its ancestors over is_a + part_of (roots included)."""
        got = self._anc_sets.get(eid)
        if got is None:
            got = frozenset(self._clo_anc[self._clo_ptr[eid] : self._clo_ptr[eid + 1]].tolist())
            self._anc_sets[eid] = got
        return got

    def ancestor_distances(self, eid: int) -> dict[int, int]:
        """Ancestor -> shortest distance (the term itself at 0)."""
        lo, hi = self._clo_ptr[eid], self._clo_ptr[eid + 1]
        return dict(zip(self._clo_anc[lo:hi].tolist(), self._clo_dist[lo:hi].tolist()))

    def propagating_parents(self, eid: int) -> list[int]:
        return [p for p, rel in self.parents_of.get(eid, ()) if rel in PROPAGATING_RELATIONS]

    def propagating_children(self, eid: int) -> list[int]:
        return [c for c, rel in self.children_of.get(eid, ()) if rel in PROPAGATING_RELATIONS]

    def _best_parent(self, options: list[tuple[int, str]]) -> tuple[int, str]:
        # as KnowledgeGraph.ancestor_chain: prefer is_a, then the most ancestors, then the id
        return max(options, key=lambda o: (o[1] == "is_a", int(self.n_ancestors[o[0]]), self.ids[o[0]]))

    def chain_eids(self, eid: int) -> tuple[tuple[int, str], ...]:
        """:meth:`ancestor_chain` on eids, cached: ((term, relation to next), ...) up to the root."""
        got = self._chains.get(eid)
        if got is not None:
            return got
        chain: list[tuple[int, str]] = []
        current, seen = eid, set()
        while current not in seen:
            seen.add(current)
            options = [(p, rel) for p, rel in self.parents_of.get(current, ()) if rel in PROPAGATING_RELATIONS]
            if not options:
                chain.append((current, ""))
                break
            best, rel = self._best_parent(options)
            chain.append((current, rel))
            current = best
        got = tuple(chain)
        self._chains[eid] = got
        return got

    def path_up(self, source: int, target: int) -> list[tuple[int, str]] | None:
        """A shortest is_a/part_of path from ``source`` up to its ancestor ``target``.

        Returns ``[(source, rel), ..., (target, "")]`` or ``None`` when ``target`` is not an
        ancestor. Among equally short paths, each step takes the parent
        :meth:`ancestor_chain` would prefer, so paths are deterministic.
        """
        if target not in self.ancestor_set(source):
            return None
        path: list[tuple[int, str]] = []
        current = source
        while current != target:
            options = [
                (p, rel)
                for p, rel in self.parents_of.get(current, ())
                if rel in PROPAGATING_RELATIONS and target in self.ancestor_set(p)
            ]
            if not options:  # cannot happen on a consistent closure; fail loudly rather than loop
                raise RuntimeError(
                    f"closure says {self.ids[target]} is above {self.ids[current]} but no edge leads there"
                )
            near = min(self.ancestor_distances(p)[target] for p, _ in options)
            best, rel = self._best_parent([o for o in options if self.ancestor_distances(o[0])[target] == near])
            path.append((current, rel))
            current = best
        path.append((target, ""))
        return path

    def most_specific(self, eids: Iterable[int]) -> list[int]:
        """Drop terms that are ancestors of another term in the list; deepest first, then by id."""
        unique = set(eids)
        covered: set[int] = set()
        for e in unique:
            covered.update(a for a in self.ancestor_set(e) if a != e)
        keep = [e for e in unique if e not in covered]
        keep.sort(key=lambda e: (-int(self.n_ancestors[e]), self.ids[e]))
        return keep

    # -- per protein -----------------------------------------------------------------------
    def pid(self, accession: str) -> int:
        try:
            return self.pid_of[accession]
        except KeyError:
            raise NotFoundError(f"protein {accession} is not in the knowledge graph") from None

    def eid(self, term_id: str) -> int:
        try:
            return self.eid_of[term_id]
        except KeyError:
            raise NotFoundError(f"term {term_id} is not in the knowledge graph") from None

    def direct_eids(self, pid: int) -> list[int]:
        return self._ann_eid[self._ann_ptr[pid] : self._ann_ptr[pid + 1]].tolist()

    def terms(self, pid: int) -> ProteinTerms:
        """The protein's direct annotations by group and its propagated GO terms."""
        groups: dict[str, list[int]] = {}
        go: list[int] = []
        for e in self.direct_eids(pid):
            g = self.group[e]
            groups.setdefault(g, []).append(e)
            if g in GO_ASPECTS:
                go.append(e)
        carried: set[int] = set()
        for e in go:
            carried.update(self.ancestor_set(e))
        carried.difference_update(self.roots)
        return ProteinTerms(pid, {g: tuple(v) for g, v in groups.items()}, frozenset(go), frozenset(carried))

    def protein_info(self, pid: int) -> ProteinInfo:
        """Sequence and text of a protein.

        A miss just past the cached shard (a worker walking its pids in order) loads the
        next ``shard_size`` pids with one query; any other miss reads the one row (random
        access must not read thousands of rows per protein). Call :meth:`prefetch` with a
        batch of pids to read them together.
        """
        got = self._shard.get(pid)
        if got is not None:
            return got
        if self._shard_hi < pid <= self._shard_hi + self.shard_size or not self._shard:
            self.load_shard(pid, pid + self.shard_size - 1)
            got = self._shard.get(pid)
        else:
            row = self.con.execute(_PROTEIN_SQL + " WHERE pid = ?", (pid,)).fetchone()
            got = _info(row) if row is not None else None
        if got is None:
            raise KeyError(f"no protein with pid {pid}")
        return got

    def load_shard(self, lo: int, hi: int) -> None:
        """Replace the cache with pids ``lo..hi`` (inclusive): one range query."""
        rows = self.con.execute(_PROTEIN_SQL + " WHERE pid BETWEEN ? AND ?", (lo, hi))
        self._shard = {r[0]: _info(r) for r in rows}
        self._shard_hi = hi

    def prefetch(self, pids: Iterable[int], batch: int = 500) -> None:
        """Replace the cache with exactly these pids (a sampled, unordered set), batched queries."""
        wanted = sorted(set(pids))
        shard: dict[int, ProteinInfo] = {}
        for i in range(0, len(wanted), batch):
            chunk = wanted[i : i + batch]
            marks = ",".join("?" * len(chunk))
            shard.update((r[0], _info(r)) for r in self.con.execute(_PROTEIN_SQL + f" WHERE pid IN ({marks})", chunk))
        self._shard = shard
        self._shard_hi = -(1 << 40)  # the next miss is not "sequential"

    # -- the KnowledgeGraph-compatible subset ------------------------------------------------
    def _entity(self, eid: int) -> Entity:
        return Entity(self.ids[eid], self.kinds[eid], self.aspects[eid], self.names[eid], self.definitions[eid])

    def entity(self, entity_id: str) -> Entity:
        return self._entity(self.eid(entity_id))

    def parents(self, entity_id: str) -> list[tuple[Entity, str]]:
        return [(self._entity(p), rel) for p, rel in self.parents_of.get(self.eid(entity_id), ())]

    def children(self, entity_id: str) -> list[tuple[Entity, str]]:
        return [(self._entity(c), rel) for c, rel in self.children_of.get(self.eid(entity_id), ())]

    def ancestors(self, entity_id: str) -> list[tuple[Entity, int]]:
        dist = self.ancestor_distances(self.eid(entity_id))
        rows = sorted(((d, self.ids[a], a) for a, d in dist.items() if d > 0))
        return [(self._entity(a), d) for d, _id, a in rows]

    def ancestor_chain(self, entity_id: str) -> list[tuple[Entity, str]]:
        return [(self._entity(e), rel) for e, rel in self.chain_eids(self.eid(entity_id))]

    def direct_annotations(
        self, accession: str, kind: str | None = None, aspect: str | None = None
    ) -> list[Annotation]:
        eids = self.direct_eids(self.pid(accession))
        eids.sort(key=lambda e: (self.kinds[e], self.aspects[e] or "", self.ids[e]))
        return [
            Annotation(self._entity(e), None)
            for e in eids
            if (kind is None or self.kinds[e] == kind) and (aspect is None or self.aspects[e] == aspect)
        ]

    def propagated_annotations(self, accession: str, aspect: str | None = None) -> list[Annotation]:
        best: dict[int, int] = {}
        for e in self.terms(self.pid(accession)).direct_go:
            for a, d in self.ancestor_distances(e).items():
                if a not in self.roots and d < best.get(a, 1 << 30):
                    best[a] = d
        order = sorted(best, key=lambda a: (self.aspects[a] or "", best[a], self.ids[a]))
        return [
            Annotation(self._entity(a), None, best[a]) for a in order if aspect is None or self.aspects[a] == aspect
        ]

    def protein(self, accession: str) -> Protein:
        row = self.con.execute(
            "SELECT accession, entry_name, name, organism, taxon_id, length, sequence, function, location"
            " FROM protein WHERE pid = ?",
            (self.pid(accession),),
        ).fetchone()
        return Protein(*row)

    def close(self) -> None:
        if self._con is not None and self._con_pid == os.getpid():
            self._con.close()
        self._con = None


__all__ = ["GO_ASPECTS", "GROUPS", "KGView", "ProteinInfo", "ProteinTerms"]
