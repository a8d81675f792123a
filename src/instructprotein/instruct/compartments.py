"""DeepLoc's ten location classes from GO cellular-component terms.

The location answer of the instructions, the homologs' locations in retrieval evidence, the
homology baseline on the DeepLoc sets and the held-out location task all need a location
class for a protein that has GO CC terms, not DeepLoc labels. The rule, in full:

1. Each DeepLoc class has one anchor GO term (:data:`ANCHORS`); a CC term belongs to a
   class when the anchor is the term itself or one of its ancestors over is_a + part_of:
   "mitochondrial inner membrane" -> mitochondrion, "Golgi membrane" -> golgi, "lysosome"
   (a lytic vacuole) -> vacuole, "cytosol" -> cytoplasm.
2. A protein's candidate classes are those of all its direct CC terms. Terms under
   :data:`IGNORED` (and their descendants) are left out: "extracellular exosome" comes from
   proteomics of vesicles and tags many cytoplasmic proteins, not secreted ones.
3. The most specific class wins: a class whose anchor is an ancestor of another candidate's
   anchor is dropped (mitochondrion, ER, Golgi, vacuole, peroxisome and chloroplast are all
   part_of cytoplasm, so "cytoplasm + mitochondrion" is mitochondrion).
4. Several classes left (nucleus and cytoplasm, say): all are kept, in :data:`PRIORITY`
   order (organelles first, then membrane, nucleus, cytoplasm, extracellular last); a single
   label takes the first, and the held-out location task keeps only proteins with exactly
   one class, as DeepLoc keeps single-location proteins.

:class:`Compartments` holds rules 1-4 for any kind of term key; :func:`view_compartments`
builds it from the in-memory graph view (instruction generation), :class:`LocationMapper`
from the SQLite graph (inference, evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from instructprotein.instruct.templates import join_list
from instructprotein.kg.store import KnowledgeGraph

if TYPE_CHECKING:
    from instructprotein.instruct.kgview import KGView

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
"""Order of classes in an answer and tie-break for a single label (first wins)."""

ANCHOR_NAMES = frozenset(
    {
        "plasma membrane",
        "cytoplasm",
        "endoplasmic reticulum",
        "golgi apparatus",
        "vacuole",
        "mitochondrion",
        "nucleus",
        "peroxisome",
        "chloroplast",
        "extracellular region",
    }
)
"""GO names of the anchors: a term named so adds nothing after its class word."""


class Compartments:
    """Cellular-component terms -> DeepLoc classes, for any kind of term key (GO id or eid).

    ``term_classes`` maps a CC term to the classes whose anchor is the term or one of its
    ancestors (ignored terms absent); ``more_general[c]`` holds the classes whose anchor is
    an ancestor of ``c``'s anchor (cytoplasm for mitochondrion).
    """

    def __init__(self, term_classes: Mapping[object, frozenset[str]], more_general: Mapping[str, set[str]]):
        self.term_classes = term_classes
        self.more_general = more_general

    @classmethod
    def build(
        cls,
        cc_terms: Iterable[object],
        ancestors: Callable[[object], Iterable[object]],
        anchor_key: Mapping[str, object],
        ignored_keys: Iterable[object] = (),
    ) -> Compartments:
        """From every CC term key, a function giving its ancestors (itself included), and the
        keys of the anchors and ignored terms as this graph spells them."""
        class_of = {key: c for c, key in anchor_key.items()}
        ignored = set(ignored_keys)
        term_classes: dict[object, frozenset[str]] = {}
        for term in cc_terms:
            anc = set(ancestors(term))
            if anc & ignored:
                continue
            found = frozenset(class_of[a] for a in anc if a in class_of)
            if found:
                term_classes[term] = found
        more_general: dict[str, set[str]] = {c: set() for c in ANCHORS}
        for c, key in anchor_key.items():
            more_general[c] = set(term_classes.get(key, frozenset())) - {c}
        return cls(term_classes, more_general)

    def of_terms(self, terms: Iterable[object]) -> list[str]:
        """The most specific classes of a protein's direct CC terms, in :data:`PRIORITY` order."""
        found: set[str] = set()
        for t in terms:
            found.update(self.term_classes.get(t, ()))
        general: set[str] = set()
        for c in found:
            general.update(self.more_general.get(c, ()))
        return [c for c in PRIORITY if c in found - general]


def location_text(classes: Sequence[str], names: Sequence[str], *, max_names: int = 3) -> str:
    """What the location answer says: the classes, then the specific GO names in brackets.

    ``["nucleus"], ["nucleolus", "nucleus"]`` -> ``nucleus (nucleolus)``; no class ->
    the names as a list (``integral component of membrane``); neither -> ``""``.
    """
    specific = [n for n in names if n.lower() not in ANCHOR_NAMES and n not in classes][:max_names]
    if not classes:
        return join_list(list(names)[:max_names])
    head = join_list(list(classes))
    return f"{head} ({', '.join(specific)})" if specific else head


def view_compartments(view: KGView) -> Compartments:
    """:class:`Compartments` keyed by the view's entity ids (eids); built once per view."""
    got = getattr(view, "_compartments", None)
    if got is None:
        cc = [e for e, a in enumerate(view.aspects) if a == "C"]
        anchors = {c: view.eid_of[t] for c, t in ANCHORS.items() if t in view.eid_of}
        ignored = [view.eid_of[t] for t in IGNORED if t in view.eid_of]
        got = Compartments.build(cc, view.ancestor_set, anchors, ignored)
        view._compartments = got  # type: ignore[attr-defined]
    return got


class LocationMapper:
    """GO CC terms of the SQLite graph's proteins -> DeepLoc classes and location texts."""

    def __init__(self, kg: KnowledgeGraph):
        self.kg = kg
        con = kg.con
        class_of_anchor = {v: k for k, v in ANCHORS.items()}
        marks = ",".join("?" * len(class_of_anchor))
        found: dict[str, set[str]] = {}
        for term, anchor in con.execute(
            "SELECT e.id, a.id FROM closure c JOIN entity e ON e.eid = c.eid JOIN entity a ON a.eid = c.ancestor"
            f" WHERE a.id IN ({marks})",
            list(class_of_anchor),
        ):
            found.setdefault(term, set()).add(class_of_anchor[anchor])
        marks = ",".join("?" * len(IGNORED))
        self.ignored = frozenset(
            t
            for (t,) in con.execute(
                "SELECT e.id FROM closure c JOIN entity e ON e.eid = c.eid JOIN entity a ON a.eid = c.ancestor"
                f" WHERE a.id IN ({marks})",
                list(IGNORED),
            )
        )
        term_classes = {t: frozenset(v) for t, v in found.items() if t not in self.ignored}
        more_general = {c: set(term_classes.get(a, frozenset())) - {c} for c, a in ANCHORS.items()}
        self.compartments = Compartments(term_classes, more_general)
        self.term_classes = term_classes
        self.missing_anchors = sorted(c for c, a in ANCHORS.items() if a not in term_classes)

    def classes_of_terms(self, terms: Iterable[str]) -> list[str]:
        """Rules 1-4 for a set of direct CC term ids: the most specific classes, in :data:`PRIORITY` order."""
        return self.compartments.of_terms(terms)

    def direct_cc(self, accessions: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Direct CC terms (id, name) of many proteins (one query per 500)."""
        out: dict[str, list[tuple[str, str]]] = {a: [] for a in accessions}
        acc_list = list(dict.fromkeys(accessions))
        for i in range(0, len(acc_list), 500):
            chunk = acc_list[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for acc, term, name in self.kg.con.execute(
                "SELECT p.accession, e.id, e.name FROM protein p JOIN annotation a ON a.pid = p.pid"
                f" JOIN entity e ON e.eid = a.eid WHERE e.kind = 'go' AND e.aspect = 'C' AND p.accession IN ({marks})",
                chunk,
            ):
                out[acc].append((term, name))
        return out

    def classes(self, accessions: Sequence[str]) -> dict[str, list[str]]:
        """Per protein: its most specific DeepLoc classes (may be empty or several)."""
        return {acc: self.classes_of_terms(t for t, _ in terms) for acc, terms in self.direct_cc(accessions).items()}

    def labels(self, accessions: Sequence[str], *, single: bool = False) -> dict[str, str | None]:
        """Per protein one class: the first by :data:`PRIORITY`; ``single``: None unless exactly one."""
        out: dict[str, str | None] = {}
        for acc, cls in self.classes(accessions).items():
            if not cls or (single and len(cls) > 1):
                out[acc] = None
            else:
                out[acc] = cls[0]
        return out
