"""DeepLoc's 10 locations from GO cellular-component annotations.

Homology transfer on the DeepLoc sets needs a location class for a knowledge-graph protein,
and the held-out location task needs one for a test protein; both have GO CC terms, not
DeepLoc labels. The rule, in full:

1. Each DeepLoc class has one anchor GO term (:data:`ANCHORS`); a CC term belongs to a
   class when the anchor is the term itself or one of its ancestors over is_a + part_of
   (the graph's closure): "mitochondrial inner membrane" -> mitochondrion, "Golgi membrane"
   -> golgi, "lysosome" (a lytic vacuole) -> vacuole, "cytosol" -> cytoplasm.
2. A protein's candidate classes are those of all its direct CC terms. Terms under
   :data:`IGNORED` (and their descendants) are left out: "extracellular exosome" comes from
   proteomics of vesicles and tags many cytoplasmic proteins, not secreted ones.
3. The most specific class wins: a class whose anchor is an ancestor of another candidate's
   anchor is dropped (mitochondrion, ER, Golgi, vacuole, peroxisome and chloroplast are all
   part_of cytoplasm, so "cytoplasm + mitochondrion" is mitochondrion).
4. Several classes left (nucleus and cytoplasm, say): :func:`LocationMapper.classes` returns
   them all; :func:`LocationMapper.label` picks by :data:`PRIORITY` (organelles first, then
   membrane, nucleus, cytoplasm, and extracellular last), and the held-out location task
   keeps only proteins with exactly one class (``single=True``), as DeepLoc keeps
   single-location proteins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from instructprotein.kg.store import KnowledgeGraph

ANCHORS: dict[str, str] = {
    "plasma membrane": "GO:0005886",
    "cytoplasm": "GO:0005737",
    "endoplasmic reticulum": "GO:0005783",
    "golgi": "GO:0005794",
    "vacuole": "GO:0005773",
    "mitochondrion": "GO:0005739",
    "nucleus": "GO:0005634",
    "peroxisome": "GO:0005777",
    "chloroplast": "GO:0009507",
    "extracellular": "GO:0005576",
}
"""DeepLoc class -> GO anchor term (class names as the paper's candidates, label order 0..9)."""

IGNORED: tuple[str, ...] = ("GO:0070062", "GO:1903561")
"""Extracellular exosome / extracellular vesicle: proteomics of vesicles, not secretion."""

PRIORITY: tuple[str, ...] = (
    "peroxisome",
    "chloroplast",
    "mitochondrion",
    "vacuole",
    "golgi",
    "endoplasmic reticulum",
    "plasma membrane",
    "nucleus",
    "cytoplasm",
    "extracellular",
)
"""Tie-break among classes left after rule 3 (first wins)."""


class LocationMapper:
    """GO CC terms of a graph's proteins -> DeepLoc classes (see the module docstring)."""

    def __init__(self, kg: KnowledgeGraph):
        self.kg = kg
        con = kg.con
        anchor_ids = list(ANCHORS.values())
        class_of_anchor = {v: k for k, v in ANCHORS.items()}
        marks = ",".join("?" * len(anchor_ids))
        self.term_classes: dict[str, frozenset[str]] = {}
        rows = con.execute(
            "SELECT e.id, a.id FROM closure c JOIN entity e ON e.eid = c.eid JOIN entity a ON a.eid = c.ancestor"
            f" WHERE a.id IN ({marks})",
            anchor_ids,
        ).fetchall()
        acc: dict[str, set[str]] = {}
        for term, anchor in rows:
            acc.setdefault(term, set()).add(class_of_anchor[anchor])
        ignored: set[str] = set()
        present = [t for t in IGNORED if con.execute("SELECT 1 FROM entity WHERE id = ?", (t,)).fetchone()]
        if present:
            marks2 = ",".join("?" * len(present))
            ignored = {
                t
                for (t,) in con.execute(
                    "SELECT e.id FROM closure c JOIN entity e ON e.eid = c.eid JOIN entity a ON a.eid = c.ancestor"
                    f" WHERE a.id IN ({marks2})",
                    present,
                )
            }
        self.ignored = frozenset(ignored)
        self.term_classes = {t: frozenset(v) for t, v in acc.items() if t not in ignored}
        # anchor A is more general than B when A is an ancestor of B
        self.more_general: dict[str, set[str]] = {c: set() for c in ANCHORS}
        for cls, anchor in ANCHORS.items():
            for other in self.term_classes.get(anchor, frozenset()):
                if other != cls:
                    self.more_general[cls].add(other)  # `other`'s anchor is an ancestor of `cls`'s
        self.missing_anchors = sorted(c for c, a in ANCHORS.items() if a not in self.term_classes)

    def classes_of_terms(self, terms: Iterable[str]) -> list[str]:
        """Rules 1-3 for a set of direct CC term ids: the most specific classes, in :data:`PRIORITY` order."""
        found: set[str] = set()
        for t in terms:
            found.update(self.term_classes.get(t, ()))
        general: set[str] = set()
        for c in found:
            general.update(self.more_general.get(c, ()))
        specific = found - general
        return [c for c in PRIORITY if c in specific]

    def direct_cc(self, accessions: Sequence[str]) -> dict[str, list[str]]:
        """Direct CC term ids of many proteins (one query per 500)."""
        out: dict[str, list[str]] = {a: [] for a in accessions}
        acc_list = list(dict.fromkeys(accessions))
        for i in range(0, len(acc_list), 500):
            chunk = acc_list[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for acc, term in self.kg.con.execute(
                "SELECT p.accession, e.id FROM protein p JOIN annotation a ON a.pid = p.pid"
                f" JOIN entity e ON e.eid = a.eid WHERE e.kind = 'go' AND e.aspect = 'C' AND p.accession IN ({marks})",
                chunk,
            ):
                out[acc].append(term)
        return out

    def classes(self, accessions: Sequence[str]) -> dict[str, list[str]]:
        """Per protein: its most specific DeepLoc classes (may be empty or several)."""
        return {acc: self.classes_of_terms(terms) for acc, terms in self.direct_cc(accessions).items()}

    def labels(self, accessions: Sequence[str], *, single: bool = False) -> dict[str, str | None]:
        """Per protein one class: the first by :data:`PRIORITY`; ``single``: None unless exactly one."""
        out: dict[str, str | None] = {}
        for acc, cls in self.classes(accessions).items():
            if not cls or (single and len(cls) > 1):
                out[acc] = None
            else:
                out[acc] = cls[0]
        return out
