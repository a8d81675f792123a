"""What an evidence block says about a homolog, read from either form of the graph.

Training prompts are written from the in-memory :class:`~instructprotein.instruct.kgview.KGView`
(:class:`ViewFacts`), the prompts of a trained model from the SQLite
:class:`~instructprotein.kg.store.KnowledgeGraph` (:class:`GraphFacts`). Both follow one
rule, so a model is asked in the words it was trained on:

- GO terms: per aspect (functions, processes, locations) the protein's most specific
  direct terms, deepest first, then by id, at most ``per_aspect`` each;
- location: :func:`~instructprotein.instruct.compartments.location_text` of its direct
  cellular-component terms;
- a term: carried by propagation, or unknown when the protein has no direct term of the
  term's aspect (the graph says nothing either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from instructprotein.formats.records import GO_ROOTS
from instructprotein.instruct.compartments import Compartments, LocationMapper, location_text, view_compartments
from instructprotein.instruct.kgview import KGView
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.prompt.evidence import HomologFacts

ASPECT_ORDER = ("F", "P", "C")
PER_ASPECT = 3


class ViewFacts:
    """Homolog facts from the in-memory view; proteins and terms are the view's pids and eids."""

    def __init__(self, view: KGView, per_aspect: int = PER_ASPECT):
        self.view = view
        self.per_aspect = per_aspect

    @property
    def compartments(self) -> Compartments:
        return view_compartments(self.view)

    def location(self, pid: int) -> str:
        v = self.view
        cc = v.terms(pid).direct.get("C", ())
        return location_text(self.compartments.of_terms(cc), [v.names[e] for e in v.most_specific(cc)])

    def facts(self, homologs: Sequence[tuple[int, float]], kind: str, term: int | None = None) -> list[HomologFacts]:
        """:class:`HomologFacts` of ``(pid, identity)`` pairs for a question of ``kind``."""
        v = self.view
        out = []
        for pid, identity in homologs:
            t = v.terms(pid)
            if kind == "location":
                out.append(HomologFacts(identity, location=self.location(pid)))
            elif kind == "term":
                assert term is not None
                known = bool(t.direct.get(v.aspects[term] or ""))
                out.append(HomologFacts(identity, carries=(term in t.carried) if known else None))
            else:
                names: list[str] = []
                for a in ASPECT_ORDER:
                    specific = [e for e in v.most_specific(t.direct.get(a, ())) if v.ids[e] not in GO_ROOTS]
                    names += [v.names[e] for e in specific[: self.per_aspect]]
                out.append(HomologFacts(identity, terms=tuple(names)))
        return out


class GraphFacts:
    """Homolog facts from the SQLite graph; proteins are accessions, terms GO ids."""

    def __init__(self, kg: KnowledgeGraph, per_aspect: int = PER_ASPECT):
        self.kg = kg
        self.per_aspect = per_aspect
        self._mapper: LocationMapper | None = None
        self._anc: dict[str, frozenset[str]] = {}
        self._direct: dict[str, list[tuple[str, str, str | None]]] = {}
        self._carried: dict[str, frozenset[str]] = {}

    @property
    def mapper(self) -> LocationMapper:
        if self._mapper is None:
            self._mapper = LocationMapper(self.kg)
        return self._mapper

    def _ancestors(self, term: str) -> frozenset[str]:
        if term not in self._anc:
            self._anc[term] = frozenset(e.id for e, _ in self.kg.ancestors(term))
        return self._anc[term]

    def direct(self, accession: str) -> list[tuple[str, str, str | None]]:
        """(id, name, aspect) of the protein's direct GO terms (empty if not in the graph)."""
        if accession not in self._direct:
            try:
                anns = self.kg.direct_annotations(accession, kind="go")
            except KeyError:
                anns = []
            self._direct[accession] = [
                (a.entity.id, a.entity.name, a.entity.aspect) for a in anns if a.entity.id not in GO_ROOTS
            ]
        return self._direct[accession]

    def most_specific(self, terms: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Drop terms that are ancestors of another; deepest first, then by id (as the view orders them)."""
        unique = dict(terms)
        covered: set[str] = set()
        for t in unique:
            covered.update(self._ancestors(t))
        keep = [(t, n) for t, n in unique.items() if t not in covered]
        keep.sort(key=lambda tn: (-len(self._ancestors(tn[0])), tn[0]))
        return keep

    def carried(self, accession: str) -> frozenset[str]:
        if accession not in self._carried:
            try:
                self._carried[accession] = frozenset(a.entity.id for a in self.kg.propagated_annotations(accession))
            except KeyError:
                self._carried[accession] = frozenset()
        return self._carried[accession]

    def location(self, accession: str) -> str:
        cc = [(t, n) for t, n, a in self.direct(accession) if a == "C"]
        classes = self.mapper.classes_of_terms(t for t, _ in cc)
        return location_text(classes, [n for _, n in self.most_specific(cc)])

    def terms(self, accession: str) -> tuple[str, ...]:
        d = self.direct(accession)
        names: list[str] = []
        for aspect in ASPECT_ORDER:
            names += [n for _, n in self.most_specific((t, n) for t, n, a in d if a == aspect)][: self.per_aspect]
        return tuple(names)

    def facts(
        self, homologs: Sequence[tuple[str, float]], kind: str, term: str | None = None, aspect: str | None = None
    ) -> list[HomologFacts]:
        """:class:`HomologFacts` of ``(accession, identity)`` pairs for a question of ``kind``;
        ``aspect``: the asked term's (found in the graph when not given)."""
        if kind == "term":
            assert term is not None
            if aspect is None:
                try:
                    aspect = self.kg.entity(term).aspect
                except KeyError:
                    aspect = None
        out = []
        for acc, identity in homologs:
            if kind == "location":
                out.append(HomologFacts(identity, location=self.location(acc)))
            elif kind == "term":
                known = any(a == aspect for _, _, a in self.direct(acc)) if aspect else False
                out.append(HomologFacts(identity, carries=(term in self.carried(acc)) if known else None))
            else:
                out.append(HomologFacts(identity, terms=self.terms(acc)))
        return out
