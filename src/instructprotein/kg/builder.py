"""Build the knowledge graph store from either source through one builder.

Sources differ only in how they yield proteins and annotations; everything that decides
what a triple *means* (resolving alternative and obsolete ids, dropping root terms,
deduplicating, computing the closure and frequencies) happens here once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from instructprotein import __version__
from instructprotein.atomic import atomic_path
from instructprotein.errors import InputError
from instructprotein.formats.records import ASPECT_NAMESPACE, GO_ROOTS, TERM_RELATIONS, Ontology, ProteinEntry
from instructprotein.kg.ontology import TermGraph
from instructprotein.kg.schema import DDL, INDEXES, SCHEMA_VERSION
from instructprotein.progress import Progress


@dataclass
class BuildCounts:
    """What happened to the input, stored in the graph's meta table and printed by ``kg stats``."""

    proteins: int = 0
    annotations_in: int = 0
    annotations_kept: int = 0
    root_dropped: int = 0
    resolved_alt_or_obsolete: int = 0
    unresolved_dropped: int = 0
    duplicate_dropped: int = 0
    proteins_without_go: int = 0
    skipped_records: int = 0
    by_aspect_proteins: dict[str, int] = field(default_factory=dict)


class GraphBuilder:
    """Collects proteins and their direct annotations in compact arrays, then writes SQLite."""

    def __init__(self, ontology: Ontology, source: str):
        self.ontology = ontology
        self.source = source
        self.graph = TermGraph.from_ontology(ontology)
        self.counts = BuildCounts()
        # entities: GO terms first (eid = index + 1), others appended as met
        self.entity_ids: list[str] = list(self.graph.ids)
        self.entity_kind: list[str] = ["go"] * len(self.graph.ids)
        self.entity_name: list[str] = [ontology.terms[t].name for t in self.graph.ids]
        self.eid: dict[str, int] = {t: i + 1 for i, t in enumerate(self.graph.ids)}
        self._root_eids = {self.eid[r] for r in GO_ROOTS if r in self.eid}
        self.proteins: list[tuple] = []
        self.pid: dict[str, int] = {}
        self.aliases: dict[str, int] = {}
        self.ann_pid = array("i")
        self.ann_eid = array("i")
        self.ann_evidence: list[str | None] = []
        self._resolved_cache: dict[str, int | None] = {}

    # -- entities -------------------------------------------------------------------------
    def entity(self, entity_id: str, kind: str, name: str = "") -> int:
        eid = self.eid.get(entity_id)
        if eid is None:
            self.entity_ids.append(entity_id)
            self.entity_kind.append(kind)
            self.entity_name.append(name)
            eid = len(self.entity_ids)
            self.eid[entity_id] = eid
        elif name and not self.entity_name[eid - 1]:
            self.entity_name[eid - 1] = name
        return eid

    def go_eid(self, go_id: str) -> int | None:
        """eid of a live GO term for ``go_id`` (resolving alt and obsolete ids), else None."""
        if go_id in self.eid and self.entity_kind[self.eid[go_id] - 1] == "go":
            return self.eid[go_id]
        if go_id not in self._resolved_cache:
            live = self.ontology.resolve(go_id)
            self._resolved_cache[go_id] = self.eid.get(live) if live else None
        return self._resolved_cache[go_id]

    # -- proteins -------------------------------------------------------------------------
    def add_protein(
        self,
        accession: str,
        sequence: str,
        *,
        entry_name: str = "",
        name: str = "",
        organism: str = "",
        taxon_id: int | None = None,
        function: str | None = None,
        location: str | None = None,
        aliases: Iterable[str] = (),
        where: tuple[str, int] | None = None,
    ) -> int:
        if not accession:
            raise InputError("protein without accession", *(where or (None, None)))
        if accession in self.pid:
            raise InputError(f"duplicate accession {accession}", *(where or (None, None)))
        pid = len(self.proteins) + 1
        self.pid[accession] = pid
        self.proteins.append(
            (pid, accession, entry_name, name, organism, taxon_id, len(sequence), sequence, function, location)
        )
        for alias in aliases:
            self.aliases.setdefault(alias, pid)
        return pid

    def annotate_go(self, pid: int, go_ids: Iterable[str], evidence: Iterable[str | None] | None = None) -> None:
        seen: set[int] = set()
        evs = list(evidence) if evidence is not None else None
        for i, go_id in enumerate(go_ids):
            self.counts.annotations_in += 1
            eid = self.go_eid(go_id)
            if eid is None:
                self.counts.unresolved_dropped += 1
                continue
            if self.entity_ids[eid - 1] != go_id:
                self.counts.resolved_alt_or_obsolete += 1
            if eid in self._root_eids:
                self.counts.root_dropped += 1
                continue
            if eid in seen:
                self.counts.duplicate_dropped += 1
                continue
            seen.add(eid)
            self._append(pid, eid, evs[i] if evs else None)

    def annotate(self, pid: int, eid: int, evidence: str | None = None) -> None:
        self._append(pid, eid, evidence)

    def _append(self, pid: int, eid: int, evidence: str | None) -> None:
        self.ann_pid.append(pid)
        self.ann_eid.append(eid)
        self.ann_evidence.append(evidence)
        self.counts.annotations_kept += 1

    # -- writing --------------------------------------------------------------------------
    def write(self, out: str | Path, progress: Progress | None = None, extra_meta: dict | None = None) -> Path:
        progress = progress or Progress()
        out = Path(out)
        self.counts.proteins = len(self.proteins)
        with progress.step("closure over is_a + part_of"):
            closure = self.graph.closure(source=self.source)
        if not self.proteins:  # an empty graph is no graph: every later stage would fail on it, or worse, not
            raise InputError(f"no proteins to write (source {self.source}): nothing written", out)
        with atomic_path(out, suffix=".sqlite") as tmp:
            con = sqlite3.connect(tmp)
            con.executescript(
                "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY;"
                " PRAGMA cache_size=-400000; PRAGMA locking_mode=EXCLUSIVE;"
            )
            con.executescript(DDL)
            with progress.step("write terms and edges"):
                self._write_terms(con, closure)
            with progress.step("write proteins", total=len(self.proteins)) as bar:
                chunk = 50_000
                for start in range(0, len(self.proteins), chunk):
                    con.executemany(
                        "INSERT INTO protein VALUES (?,?,?,?,?,?,?,?,?,?)", self.proteins[start : start + chunk]
                    )
                    bar.advance(min(chunk, len(self.proteins) - start))
                con.executemany("INSERT OR IGNORE INTO protein_alias VALUES (?,?)", self.aliases.items())
            with progress.step("write annotations", total=len(self.ann_pid)) as bar:
                pids = np.frombuffer(self.ann_pid, dtype=np.int32)
                eids = np.frombuffer(self.ann_eid, dtype=np.int32)
                order = np.lexsort((eids, pids))
                evid = self.ann_evidence
                chunk = 500_000
                for start in range(0, len(order), chunk):
                    idx = order[start : start + chunk]
                    rows = zip(pids[idx].tolist(), eids[idx].tolist(), [evid[i] for i in idx.tolist()])
                    con.executemany("INSERT INTO annotation VALUES (?,?,?)", rows)
                    bar.advance(len(idx))
            with progress.step("pack proteins per term"):
                by_entity = np.lexsort((pids, eids))
                e_sorted, p_sorted = eids[by_entity], pids[by_entity].astype("<i4")
                bounds = np.flatnonzero(np.diff(e_sorted)) + 1
                starts = np.concatenate(([0], bounds))
                ends = np.concatenate((bounds, [len(e_sorted)]))
                con.executemany(
                    "INSERT INTO entity_pids VALUES (?,?)",
                    ((int(e_sorted[a]), p_sorted[a:b].tobytes()) for a, b in zip(starts, ends) if b > a),
                )
            with progress.step("term frequencies (direct and propagated)"):
                self._write_stats(con, pids, eids, closure)
            with progress.step("indexes"):
                con.executescript(INDEXES)
                con.execute("ANALYZE")
            meta = {
                "schema_version": SCHEMA_VERSION,
                "instructprotein_version": __version__,
                "source": self.source,
                "ontology_source": self.ontology.source,
                "ontology_version": self.ontology.version or "",
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_counts": json.dumps(self.counts.__dict__),
                "content_hash": self._content_hash(pids, eids),
            }
            meta.update(extra_meta or {})
            con.executemany("INSERT INTO meta VALUES (?,?)", meta.items())
            con.commit()
            con.execute("PRAGMA journal_mode=DELETE")
            con.close()
        return out

    def _write_terms(self, con: sqlite3.Connection, closure: list[dict[int, int]]) -> None:
        onto = self.ontology
        rows = []
        for eid, (eid_str, kind, name) in enumerate(zip(self.entity_ids, self.entity_kind, self.entity_name), 1):
            if kind == "go":
                term = onto.terms[eid_str]
                rows.append((eid, eid_str, kind, term.aspect, term.name, term.definition))
            else:
                rows.append((eid, eid_str, kind, None, name, None))
        con.executemany("INSERT INTO entity VALUES (?,?,?,?,?,?)", rows)
        aliases = {}
        for term in onto.terms.values():
            for alt in term.alt_ids:
                live = onto.resolve(alt)
                if live in self.eid and alt not in self.eid:
                    aliases[alt] = (self.eid[live], "alt_id")
            if term.is_obsolete and term.id not in self.eid:
                live = onto.resolve(term.id)
                if live in self.eid:
                    aliases[term.id] = (self.eid[live], "replaced_by")
        con.executemany("INSERT INTO entity_alias VALUES (?,?,?)", ((a, e, w) for a, (e, w) in aliases.items()))
        con.executemany(
            "INSERT INTO synonym VALUES (?,?,?)",
            ((self.eid[t], text, scope) for t in self.graph.ids for text, scope in onto.terms[t].synonyms),
        )
        edges = set()
        for child, parents in enumerate(self.graph.parents):
            for parent, rel in parents:
                if rel in TERM_RELATIONS:
                    edges.add((child + 1, parent + 1, rel))
        con.executemany("INSERT INTO edge VALUES (?,?,?)", sorted(edges))
        con.executemany(
            "INSERT INTO closure VALUES (?,?,?)",
            ((i + 1, a + 1, d) for i, anc in enumerate(closure) for a, d in sorted(anc.items())),
        )
        # Families, keywords and locations have no hierarchy here; a self row keeps every
        # "term or its descendants" query uniform across entity kinds.
        first_other = len(self.graph.ids) + 1
        con.executemany(
            "INSERT INTO closure VALUES (?,?,0)", ((e, e) for e in range(first_other, len(self.entity_ids) + 1))
        )

    def _write_stats(
        self, con: sqlite3.Connection, pids: np.ndarray, eids: np.ndarray, closure: list[dict[int, int]]
    ) -> None:
        n_ent = len(self.entity_ids) + 1
        n_prot = len(self.proteins) + 1
        direct = np.bincount(eids, minlength=n_ent)
        propagated = direct.copy()
        go = eids <= len(self.graph.ids)
        if go.any():
            ann = sp.csr_matrix((np.ones(int(go.sum()), dtype=np.float32), (pids[go], eids[go])), shape=(n_prot, n_ent))
            ci = [i + 1 for i, anc in enumerate(closure) for _ in anc]
            ca = [a + 1 for anc in closure for a in anc]
            clo = sp.csr_matrix((np.ones(len(ci), dtype=np.float32), (ci, ca)), shape=(n_ent, n_ent))
            prop = ann @ clo
            prop.data[:] = 1
            go_counts = np.asarray(prop.sum(axis=0)).ravel().astype(np.int64)
            ngo = len(self.graph.ids)
            propagated[1 : ngo + 1] = go_counts[1 : ngo + 1]
            propagated[list(self._root_eids)] = 0  # roots carry no information, as in annotations
            # proteins with at least one (non-root) GO annotation per aspect
            for aspect in ASPECT_NAMESPACE:
                cols = np.array([self.eid[t] for t in self.graph.ids if self.ontology.terms[t].aspect == aspect])
                if len(cols):
                    has = np.asarray(ann[:, cols].sum(axis=1)).ravel() > 0
                    self.counts.by_aspect_proteins[aspect] = int(has.sum())
            with_go = np.zeros(n_prot, dtype=bool)
            with_go[pids[go]] = True
            self.counts.proteins_without_go = int(len(self.proteins) - with_go[1:].sum())
        con.executemany(
            "INSERT INTO entity_stats VALUES (?,?,?)",
            ((e, int(direct[e]), int(propagated[e])) for e in range(1, n_ent)),
        )

    def _content_hash(self, pids: np.ndarray, eids: np.ndarray) -> str:
        """A digest of entities, proteins and triples: two builds of the same input match."""
        h = hashlib.sha256()
        h.update("\n".join(self.entity_ids).encode())
        for row in self.proteins:
            h.update(f"{row[1]}\t{row[7]}\n".encode())
        order = np.lexsort((eids, pids))
        h.update(pids[order].tobytes())
        h.update(eids[order].tobytes())
        return h.hexdigest()


def add_uniprot_entry(builder: GraphBuilder, entry: ProteinEntry, source: str) -> None:
    """Everything a UniProt entry says that the graph keeps: GO, signatures, keywords, locations."""
    pid = builder.add_protein(
        entry.accession,
        entry.sequence,
        entry_name=entry.entry_name,
        name=entry.protein_name,
        organism=entry.organism,
        taxon_id=entry.taxon_id,
        function=entry.function,
        location=entry.subcellular_location,
        aliases=entry.secondary_accessions,
        where=(source, entry.line),
    )
    builder.annotate_go(pid, [g.go_id for g in entry.go], [g.evidence for g in entry.go])
    seen: set[int] = set()
    for kind, refs in (("interpro", entry.interpro), ("pfam", entry.pfam), ("prosite", entry.prosite)):
        for ref in refs:
            eid = builder.entity(ref.id, kind, ref.name)
            if eid not in seen:
                seen.add(eid)
                builder.annotate(pid, eid)
    for kw in entry.keywords:
        eid = builder.entity(f"KW:{kw}", "keyword", kw)
        if eid not in seen:
            seen.add(eid)
            builder.annotate(pid, eid)
    for loc in entry.locations:
        eid = builder.entity(f"LOC:{loc}", "location", loc)
        if eid not in seen:
            seen.add(eid)
            builder.annotate(pid, eid)
