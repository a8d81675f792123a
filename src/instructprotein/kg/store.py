"""Read-only queries on a built knowledge graph.

Any number of processes may open the same file at once (SQLite read-only URI); nothing
here writes. Direct and propagated annotations are separate methods on purpose: the
instruction generator asks for one or the other, never a mix.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instructprotein.errors import InputError, NotFoundError
from instructprotein.kg.schema import PROTEIN_RELATIONS, SCHEMA_VERSION


@dataclass(frozen=True)
class Protein:
    accession: str
    entry_name: str
    name: str
    organism: str
    taxon_id: int | None
    length: int
    sequence: str
    function: str | None
    location: str | None


@dataclass(frozen=True)
class Entity:
    id: str
    kind: str
    aspect: str | None
    name: str
    definition: str | None

    @property
    def relation(self) -> str:
        """Name of the protein -> entity relation (enables, involved_in, located_in, ...)."""
        return PROTEIN_RELATIONS[(self.kind, self.aspect if self.kind == "go" else None)]


@dataclass(frozen=True)
class Annotation:
    entity: Entity
    evidence: str | None
    distance: int = 0  # 0 for direct; steps up the DAG for propagated


class KnowledgeGraph:
    """A built graph, opened read-only."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError("knowledge graph not found; build it with `instructprotein kg build`", self.path)
        try:
            self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self.con.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a knowledge graph file ({exc})", self.path) from exc
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"schema version {meta.get('schema_version')} but this code reads {SCHEMA_VERSION}; rebuild it",
                self.path,
            )
        self.meta = meta

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups --------------------------------------------------------------------------
    def _pid(self, accession: str) -> int:
        row = self.con.execute("SELECT pid FROM protein WHERE accession = ?", (accession,)).fetchone()
        if row is None:
            row = self.con.execute("SELECT pid FROM protein_alias WHERE alias = ?", (accession,)).fetchone()
        if row is None:
            raise NotFoundError(f"protein {accession} is not in the knowledge graph")
        return row[0]

    def _eid(self, entity_id: str) -> int:
        row = self.con.execute("SELECT eid FROM entity WHERE id = ?", (entity_id,)).fetchone()
        if row is None:
            row = self.con.execute("SELECT eid FROM entity_alias WHERE alias = ?", (entity_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"term {entity_id} is not in the knowledge graph")
        return row[0]

    def protein(self, accession: str) -> Protein:
        row = self.con.execute(
            "SELECT accession, entry_name, name, organism, taxon_id, length, sequence, function, location"
            " FROM protein WHERE pid = ?",
            (self._pid(accession),),
        ).fetchone()
        return Protein(*row)

    def entity(self, entity_id: str) -> Entity:
        row = self.con.execute(
            "SELECT id, kind, aspect, name, definition FROM entity WHERE eid = ?", (self._eid(entity_id),)
        ).fetchone()
        return Entity(*row)

    def synonyms(self, entity_id: str) -> list[tuple[str, str | None]]:
        return self.con.execute(
            "SELECT text, scope FROM synonym WHERE eid = ? ORDER BY text", (self._eid(entity_id),)
        ).fetchall()

    # -- annotations ----------------------------------------------------------------------
    def direct_annotations(
        self, accession: str, kind: str | None = None, aspect: str | None = None
    ) -> list[Annotation]:
        """What the source states for the protein, nothing inferred."""
        rows = self.con.execute(
            "SELECT e.id, e.kind, e.aspect, e.name, e.definition, a.evidence FROM annotation a"
            " JOIN entity e ON e.eid = a.eid WHERE a.pid = ? ORDER BY e.kind, e.aspect, e.id",
            (self._pid(accession),),
        ).fetchall()
        out = [Annotation(Entity(*r[:5]), r[5]) for r in rows]
        return [
            a for a in out if (kind is None or a.entity.kind == kind) and (aspect is None or a.entity.aspect == aspect)
        ]

    def propagated_annotations(self, accession: str, aspect: str | None = None) -> list[Annotation]:
        """GO terms the protein carries by the true-path rule (direct ones at distance 0).

        Roots are never included. ``distance`` is the shortest path from any direct term.
        """
        rows = self.con.execute(
            "SELECT e.id, e.kind, e.aspect, e.name, e.definition, MIN(c.distance) FROM annotation a"
            " JOIN closure c ON c.eid = a.eid JOIN entity e ON e.eid = c.ancestor"
            " WHERE a.pid = ? AND e.kind = 'go' AND e.id NOT IN ('GO:0003674','GO:0008150','GO:0005575')"
            " GROUP BY c.ancestor ORDER BY e.aspect, MIN(c.distance), e.id",
            (self._pid(accession),),
        ).fetchall()
        out = [Annotation(Entity(*r[:5]), None, r[5]) for r in rows]
        return [a for a in out if aspect is None or a.entity.aspect == aspect]

    def proteins_with(self, entity_id: str, descendants: bool = True) -> list[str]:
        """Accessions annotated with the term, or (default) with it or any descendant."""
        eid = self._eid(entity_id)
        if descendants:
            sql = "SELECT p.pids FROM closure c JOIN entity_pids p ON p.eid = c.eid WHERE c.ancestor = ?"
        else:
            sql = "SELECT pids FROM entity_pids WHERE eid = ?"
        blobs = [np.frombuffer(b, dtype="<i4") for (b,) in self.con.execute(sql, (eid,))]
        pids = np.unique(np.concatenate(blobs)) if blobs else np.array([], dtype=np.int32)
        if len(pids) == 0:
            return []
        accessions = self.accessions()
        return [accessions[p] for p in pids.tolist()]

    def accessions(self) -> list[str]:
        """Accession by pid (index 0 unused); cached, since it is the key of every bulk query."""
        cached = getattr(self, "_accessions", None)
        if cached is None:
            cached = [""] * (self.count("protein") + 1)
            for pid, acc in self.con.execute("SELECT pid, accession FROM protein"):
                cached[pid] = acc
            self._accessions = cached
        return cached

    # -- the ontology ---------------------------------------------------------------------
    def ancestors(self, entity_id: str) -> list[tuple[Entity, int]]:
        """Every ancestor over is_a + part_of with its shortest distance, nearest first."""
        rows = self.con.execute(
            "SELECT e.id, e.kind, e.aspect, e.name, e.definition, c.distance FROM closure c"
            " JOIN entity e ON e.eid = c.ancestor WHERE c.eid = ? AND c.distance > 0 ORDER BY c.distance, e.id",
            (self._eid(entity_id),),
        ).fetchall()
        return [(Entity(*r[:5]), r[5]) for r in rows]

    def parents(self, entity_id: str) -> list[tuple[Entity, str]]:
        rows = self.con.execute(
            "SELECT e.id, e.kind, e.aspect, e.name, e.definition, g.relation FROM edge g"
            " JOIN entity e ON e.eid = g.parent WHERE g.child = ? ORDER BY g.relation, e.id",
            (self._eid(entity_id),),
        ).fetchall()
        return [(Entity(*r[:5]), r[5]) for r in rows]

    def children(self, entity_id: str) -> list[tuple[Entity, str]]:
        rows = self.con.execute(
            "SELECT e.id, e.kind, e.aspect, e.name, e.definition, g.relation FROM edge g"
            " JOIN entity e ON e.eid = g.child WHERE g.parent = ? ORDER BY g.relation, e.id",
            (self._eid(entity_id),),
        ).fetchall()
        return [(Entity(*r[:5]), r[5]) for r in rows]

    def ancestor_chain(self, entity_id: str) -> list[tuple[Entity, str]]:
        """One path from the term up to its root, each step (term, relation to the next).

        At each step the parent is the one with the most specific meaning: the is_a parent
        farthest from the root (ties broken by id), so a chain reads from specific to
        general ("zinc ion binding -> transition metal ion binding -> metal ion binding").
        """
        chain: list[tuple[Entity, str]] = []
        current = entity_id
        seen = set()
        while current not in seen:
            seen.add(current)
            options = [(p, rel) for p, rel in self.parents(current) if rel in ("is_a", "part_of")]
            if not options:
                chain.append((self.entity(current), ""))
                break
            depth = {p.id: len(self.ancestors(p.id)) for p, _ in options}
            best, rel = max(options, key=lambda o: (o[1] == "is_a", depth[o[0].id], o[0].id))
            chain.append((self.entity(current), rel))
            current = best.id
        return chain

    # -- statistics -----------------------------------------------------------------------
    def count(self, table: str) -> int:
        if table not in {
            "protein",
            "entity",
            "annotation",
            "edge",
            "closure",
            "synonym",
            "entity_alias",
            "protein_alias",
        }:
            raise ValueError(table)
        return self.con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def frequencies(self, kind: str = "go", aspect: str | None = None, propagated: bool = False) -> dict[str, int]:
        """Number of proteins per entity (direct, or with descendants), zero counts omitted."""
        col = "s.propagated" if propagated else "s.direct"
        sql = f"SELECT e.id, {col} FROM entity_stats s JOIN entity e ON e.eid = s.eid WHERE e.kind = ? AND {col} > 0"
        args: list[object] = [kind]
        if aspect is not None:
            sql += " AND e.aspect = ?"
            args.append(aspect)
        return dict(self.con.execute(sql, args))

    def build_counts(self) -> dict:
        return json.loads(self.meta.get("build_counts", "{}"))
