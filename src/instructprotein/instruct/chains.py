"""Knowledge causal chains: the "why" attached to an instruction (the paper's KCM).

Two kinds of chain, both plain data (:class:`Chain` of :class:`ChainStep`) rendered to
English by :func:`chain_text`:

- **hierarchy**: a GO term up its is_a / part_of ancestors, stopping before the root
  ("zinc ion binding is a kind of transition metal ion binding, which is a kind of metal
  ion binding"). It explains why a protein that binds zinc answers "yes" to "metal ion
  binding", the benchmark's own question. :func:`go_chain` follows
  ``ancestor_chain`` (the most specific parent at each step); :func:`go_path_chain`
  takes the shortest path between a term and one given ancestor.
- **cross_aspect**: domain -> function -> process -> location for one protein, from its
  most specific direct annotation of each aspect ("Its Znf_C2H2_type domain lets it bind
  zinc ion, which takes part in regulation of transcription, in the nuclear lumen."). GO
  relations between the chosen terms (part_of, regulates) are used where the graph has
  them; the Swiss-Prot 2014 graph has none across aspects (its GO predates MF -> BP
  part_of links), so there the link is the generic "contributes to".

Everything takes either a :class:`~instructprotein.kg.store.KnowledgeGraph` (for printing
chains of any protein) or a :class:`~instructprotein.instruct.kgview.KGView` (for
generating at scale; same answers, from memory).
"""

from __future__ import annotations

import random
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

from instructprotein.formats.records import GO_ROOTS, PROPAGATING_RELATIONS
from instructprotein.instruct.templates import function_phrase
from instructprotein.kg.store import Annotation, Entity


class ChainGraph(Protocol):
    """What chains need from a graph; both KnowledgeGraph and KGView provide it."""

    def entity(self, entity_id: str) -> Entity: ...
    def parents(self, entity_id: str) -> list[tuple[Entity, str]]: ...
    def ancestors(self, entity_id: str) -> list[tuple[Entity, int]]: ...
    def ancestor_chain(self, entity_id: str) -> list[tuple[Entity, str]]: ...
    def direct_annotations(
        self, accession: str, kind: str | None = None, aspect: str | None = None
    ) -> list[Annotation]: ...


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One link: the term, and its relation to the *next* step ("" on the last one).

    ``kind`` is the GO aspect (F/P/C) or the entity kind (interpro, pfam, ...): the
    renderer needs it to pick verbs.
    """

    term_id: str
    term_name: str
    relation: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Chain:
    steps: list[ChainStep] = field(default_factory=list)
    kind: Literal["hierarchy", "cross_aspect"] = "hierarchy"

    @property
    def term_ids(self) -> list[str]:
        return [s.term_id for s in self.steps]

    def __len__(self) -> int:
        return len(self.steps)


def _kind_of(entity: Entity) -> str:
    return entity.aspect if entity.kind == "go" and entity.aspect else entity.kind


def _n_ancestors(kg: ChainGraph, term_id: str) -> int:
    """How specific a term is (ancestor count, as KnowledgeGraph.ancestor_chain measures it)."""
    n_anc = getattr(kg, "n_ancestors", None)
    if n_anc is not None and hasattr(kg, "eid"):  # a KGView: from memory
        return int(n_anc[kg.eid(term_id)])  # type: ignore[attr-defined]
    return len(kg.ancestors(term_id))


# -- hierarchy chains -------------------------------------------------------------------------


def go_chain(kg: ChainGraph, term_id: str, max_steps: int = 4) -> Chain:
    """The term and up to ``max_steps - 1`` ancestors along ``ancestor_chain``, root excluded."""
    steps: list[ChainStep] = []
    chain_eids = getattr(kg, "chain_eids", None)
    if chain_eids is not None and hasattr(kg, "eid"):  # KGView: from memory, no Entity objects
        v = kg
        for e, rel in chain_eids(v.eid(term_id)):  # type: ignore[attr-defined]
            if v.ids[e] in GO_ROOTS or len(steps) >= max_steps:  # type: ignore[attr-defined]
                break
            steps.append(ChainStep(v.ids[e], v.names[e], rel, v.group[e]))  # type: ignore[attr-defined]
    else:
        for entity, rel in kg.ancestor_chain(term_id):
            if entity.id in GO_ROOTS or len(steps) >= max_steps:
                break
            steps.append(ChainStep(entity.id, entity.name, rel, _kind_of(entity)))
    if steps:
        last = steps[-1]
        steps[-1] = ChainStep(last.term_id, last.term_name, "", last.kind)
    return Chain(steps, "hierarchy")


def go_path_chain(kg: ChainGraph, source_id: str, target_id: str) -> Chain | None:
    """The shortest is_a / part_of path from a term up to one of its ancestors, or None.

    Explains a propagated annotation: the protein is annotated ``source``, the question
    asks about ``target``.
    """
    path_up = getattr(kg, "path_up", None)
    if path_up is not None and hasattr(kg, "eid"):  # KGView: from memory
        path = path_up(kg.eid(source_id), kg.eid(target_id))  # type: ignore[attr-defined]
        if path is None:
            return None
        ents = [(kg._entity(e), rel) for e, rel in path]  # type: ignore[attr-defined]
    else:
        ents_opt = _bfs_path(kg, source_id, target_id)
        if ents_opt is None:
            return None
        ents = ents_opt
    return Chain([ChainStep(e.id, e.name, rel, _kind_of(e)) for e, rel in ents], "hierarchy")


def _bfs_path(kg: ChainGraph, source_id: str, target_id: str) -> list[tuple[Entity, str]] | None:
    start = kg.entity(source_id)
    if start.id == target_id:
        return [(start, "")]
    came: dict[str, tuple[Entity, str, str] | None] = {start.id: None}
    ents = {start.id: start}
    queue = deque([start.id])
    while queue:
        cur = queue.popleft()
        for parent, rel in kg.parents(cur):
            if rel not in PROPAGATING_RELATIONS or parent.id in came:
                continue
            came[parent.id] = (ents[cur], rel, cur)
            ents[parent.id] = parent
            if parent.id == target_id:
                out: list[tuple[Entity, str]] = [(parent, "")]
                node = parent.id
                while came[node] is not None:
                    child, r, child_id = came[node]  # type: ignore[misc]
                    out.append((child, r))
                    node = child_id
                return out[::-1]
            queue.append(parent.id)
    return None


# -- cross-aspect chains ----------------------------------------------------------------------


def _most_specific(kg: ChainGraph, annotations: list[Annotation]) -> list[Entity]:
    """Direct terms that are no other direct term's ancestor, deepest first."""
    ents = {a.entity.id: a.entity for a in annotations}
    if hasattr(kg, "most_specific") and hasattr(kg, "eid"):  # KGView: from memory
        keep_eids = kg.most_specific(kg.eid(t) for t in ents)  # type: ignore[attr-defined]
        return [ents[kg.ids[e]] for e in keep_eids]  # type: ignore[attr-defined]
    covered: set[str] = set()
    if len(ents) > 1:
        for tid in ents:
            covered.update(e.id for e, _d in kg.ancestors(tid) if e.id in ents)
    keep = [e for tid, e in ents.items() if tid not in covered]
    keep.sort(key=lambda e: (-_n_ancestors(kg, e.id), e.id))
    return keep


_STORE_FREQUENCIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _frequency(kg: ChainGraph, term_id: str) -> int:
    """Proteins carrying the term (propagated): the rarer, the more a term says."""
    freq = getattr(kg, "frequency", None)
    if freq is not None and hasattr(kg, "eid"):  # KGView
        return int(freq[kg.eid(term_id)])  # type: ignore[attr-defined]
    table = _STORE_FREQUENCIES.get(kg)
    if table is None:
        table = kg.frequencies("go", propagated=True) if hasattr(kg, "frequencies") else {}  # type: ignore[attr-defined]
        _STORE_FREQUENCIES[kg] = table
    return table.get(term_id, 0)


def _most_informative(kg: ChainGraph, terms: list[Entity]) -> list[Entity]:
    """Order a protein's most specific terms rarest first (ties: deepest, then id).

    Depth alone compares badly across branches: "ATP binding" sits deep in the binding
    hierarchy yet annotates tens of thousands of proteins, while "isoleucine-tRNA ligase
    activity" is shallower and says far more; the chain should start from the latter.
    """
    return sorted(terms, key=lambda e: (_frequency(kg, e.id), -_n_ancestors(kg, e.id), e.id))


def _relation_between(kg: ChainGraph, child_id: str, parent_id: str) -> str | None:
    """The GO relation of a direct edge child -> parent (any relation, regulates included)."""
    edges = getattr(kg, "edge_relation", None)
    if edges is not None and hasattr(kg, "eid"):  # KGView
        return edges.get((kg.eid(child_id), kg.eid(parent_id)))  # type: ignore[attr-defined]
    for parent, rel in kg.parents(child_id):
        if parent.id == parent_id:
            return rel
    return None


def _pick_linked(kg: ChainGraph, lower: list[Entity], upper: list[Entity]) -> tuple[Entity, Entity, str | None]:
    """The deepest (lower, upper) pair joined by a GO edge, else the deepest of each."""
    for lo in lower:
        for up in upper:
            rel = _relation_between(kg, lo.id, up.id)
            if rel is not None:
                return lo, up, rel
    return lower[0], upper[0], None


def cross_aspect_chain(kg: ChainGraph, accession: str) -> Chain | None:
    """Domain -> function -> process -> location from the protein's direct annotations.

    Each aspect contributes one of its most specific direct terms (no other direct term
    below it): the rarest in the graph, ties to the deepest (see :func:`_most_informative`);
    a (function, process) or (process, location) pair joined by a GO edge wins over that
    order. The domain is an InterPro entry (Pfam where there is no InterPro). Returns None
    unless at least two links exist.
    """
    direct = kg.direct_annotations(accession)
    by: dict[str, list[Annotation]] = {}
    for a in direct:
        by.setdefault(_kind_of(a.entity), []).append(a)
    mf = _most_informative(kg, _most_specific(kg, by.get("F", [])))
    bp = _most_informative(kg, _most_specific(kg, by.get("P", [])))
    cc = _most_informative(kg, _most_specific(kg, by.get("C", [])))
    domains = by.get("interpro") or by.get("pfam") or []
    steps: list[ChainStep] = []
    if domains:
        d = sorted((a.entity for a in domains), key=lambda e: e.id)[0]
        steps.append(ChainStep(d.id, d.name, "enables" if mf else ("takes_part_in" if bp else "found_in"), _kind_of(d)))
    f: Entity | None = mf[0] if mf else None
    p: Entity | None = bp[0] if bp else None
    c: Entity | None = cc[0] if cc else None
    f_to_p: str | None = None
    p_to_c: str | None = None
    if mf and bp:
        f, p, f_to_p = _pick_linked(kg, mf, bp)
    if p is not None and cc:
        p, c, p_to_c = _pick_linked(kg, [p], cc)
    if f is not None:
        rel = (f_to_p or "contributes_to") if p is not None else ("occurs_in" if c is not None else "")
        steps.append(ChainStep(f.id, f.name, rel, "F"))
    if p is not None:
        steps.append(ChainStep(p.id, p.name, (p_to_c or "occurs_in") if c is not None else "", "P"))
    if c is not None:
        steps.append(ChainStep(c.id, c.name, "", "C"))
    return Chain(steps, "cross_aspect") if len(steps) >= 2 else None


def chains_for_protein(kg: ChainGraph, accession: str, max_steps: int = 4) -> list[Chain]:
    """Every chain of a protein: the hierarchy chain of its most specific term per aspect,
    then its cross-aspect chain (if it has two or more aspects / a domain)."""
    out: list[Chain] = []
    for aspect in ("F", "P", "C"):
        terms = _most_specific(kg, kg.direct_annotations(accession, kind="go", aspect=aspect))
        if terms:
            chain = go_chain(kg, terms[0].id, max_steps)
            if len(chain) >= 2:
                out.append(chain)
    cross = cross_aspect_chain(kg, accession)
    if cross is not None:
        out.append(cross)
    return out


# -- English ------------------------------------------------------------------------------------

_HIERARCHY_LINKS: dict[str, tuple[str, ...]] = {
    "is_a": ("is a kind of", "is a type of", "is a subtype of"),
    "part_of": ("is part of", "forms part of", "is a component of"),
}
_DEFAULT_LINK = ("is related to",)


def _pick(options: tuple[str, ...] | list[str], rng: random.Random | None) -> str:
    return options[0] if rng is None else options[rng.randrange(len(options))]


def chain_text(chain: Chain, rng: random.Random | None = None) -> str:
    """The chain in English, no final full stop for hierarchy chains (they are clauses).

    Without ``rng`` the first (canonical) wording is used, so tests and printed chains are
    stable; with a seeded ``rng`` each link picks one of several wordings.
    """
    if len(chain.steps) < 2:
        return ""
    if chain.kind == "cross_aspect":
        return _cross_text(chain, rng)
    parts = [chain.steps[0].term_name]
    for i, step in enumerate(chain.steps[:-1]):
        link = _pick(_HIERARCHY_LINKS.get(step.relation, _DEFAULT_LINK), rng)
        nxt = chain.steps[i + 1].term_name
        parts.append(f" {link} {nxt}" if i == 0 else f", which {link} {nxt}")
    return "".join(parts)


_PROCESS_AFTER_FUNCTION: dict[str, tuple[str, ...]] = {
    "contributes_to": (", which takes part in {p}", "; this activity contributes to {p}", ", an activity used in {p}"),
    "part_of": (", as part of {p}", ", which is part of {p}", ", one step of {p}"),
    "regulates": (", which regulates {p}", ", and so regulates {p}", ", an activity that regulates {p}"),
    "positively_regulates": (
        ", which promotes {p}",
        ", and so positively regulates {p}",
        ", an activity that promotes {p}",
    ),
    "negatively_regulates": (
        ", which inhibits {p}",
        ", and so negatively regulates {p}",
        ", an activity that represses {p}",
    ),
}


def _cross_text(chain: Chain, rng: random.Random | None) -> str:
    by = {s.kind: s for s in chain.steps}
    dom = next((s for s in chain.steps if s.kind not in ("F", "P", "C")), None)
    f, p, c = by.get("F"), by.get("P"), by.get("C")
    text = ""
    if dom is not None and f is not None:
        text = _pick(
            (
                "Its {d} domain lets it {fb}",
                "Through its {d} domain the protein {ft}",
                "The {d} domain enables the protein to {fb}",
            ),
            rng,
        ).format(d=dom.term_name, fb=function_phrase(f.term_name, "base"), ft=function_phrase(f.term_name))
    elif dom is not None:
        text = _pick(
            ("It has a {d} domain", "The protein carries a {d} domain", "It contains the {d} domain"), rng
        ).format(d=dom.term_name)
    elif f is not None:
        text = _pick(("It {ft}", "The protein {ft}", "This protein {ft}"), rng).format(ft=function_phrase(f.term_name))
    if p is not None:
        if f is not None:
            rel = f.relation if f.relation in _PROCESS_AFTER_FUNCTION else "contributes_to"
            text += _pick(_PROCESS_AFTER_FUNCTION[rel], rng).format(p=p.term_name)
        elif text:
            text += _pick(
                (", and it takes part in {p}", " and is involved in {p}", ", taking part in {p}"), rng
            ).format(p=p.term_name)
        else:
            text = _pick(
                ("It takes part in {p}", "The protein takes part in {p}", "This protein is involved in {p}"), rng
            ).format(p=p.term_name)
    if c is not None:
        if text:
            text += _pick((", in the {l}", ", working in the {l}", "; it does so in the {l}"), rng).format(
                l=c.term_name
            )
        else:
            text = _pick(("It is located in the {l}", "The protein is found in the {l}"), rng).format(l=c.term_name)
    return text + "."
