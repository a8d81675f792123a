"""GO terms named in free text, mapped to real GO ids and closed under the ontology.

A model writes names ("The protein binds zinc ion and DNA binding ..."), sometimes ids
("GO:0008270 zinc ion binding"), and sometimes things that are neither. This module turns
such text into terms the knowledge graph knows, and never invents an id:

1. **Ids**: ``GO:nnnnnnn`` written in the text is taken only if the graph knows it
   (directly or as an alternative id). When a name follows it on the same line and that
   name is another term's, the name wins (a model copies names far more reliably than
   seven digits) and the disagreement is noted.
2. **Names**: the text is cut into sentences and list items (``, `` ``; `` `` and ``; items
   are re-joined where a name itself contains a comma or "and"). An item matches when,
   after dropping words from its start (the lead-in: "The protein", "It", "Its molecular
   function:"), the rest is a term's name or EXACT synonym: exact spelling first, then
   case-insensitive. Verb phrases of the answer templates are undone first ("binds zinc
   ion" -> "zinc ion binding", "has kinase activity" -> "kinase activity", "is located in
   nucleus" -> "nucleus", "takes part in DNA repair" -> "DNA repair").
3. **Fuzzy** (off by default): an item that matched nothing is compared with every name by
   :func:`difflib.get_close_matches` (ratio >= ``cutoff``, 0.9 by default): catches a
   misspelt name, at the risk of picking a neighbour ("zinc ion binding" ~ "iron ion
   binding" is 0.88), hence the high cut-off and the ``matched_by`` field saying so.
4. **Closure**: every ancestor over is_a + part_of of a named term is implied (the
   knowledge graph's closure table); roots are left out. :class:`TermSet` keeps the named
   (``direct``) and ``implied`` terms apart, and lists what named nothing (``unmatched``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from instructprotein.formats.records import GO_ROOTS
from instructprotein.kg.store import KnowledgeGraph

SYNONYM_SCOPES = ("EXACT", "")
"""Synonym scopes that name the same term (GO's EXACT; ``''`` where the source gave none).
BROAD / NARROW / RELATED synonyms name a different, neighbouring concept and are not used."""

_GO_ID = re.compile(r"\bGO:\d{7}\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_SEPARATOR = re.compile(
    r"(,\s+|;\s+|\s+and\s+|\s+or\s+"
    # the links of instruct.chains' hierarchy chains ("X is a kind of Y, which is part of Z")
    r"|\s+(?:is|are)\s+(?:an?\s+(?:kind|type|subtype|component)\s+of|part\s+of)\s+|\s+forms\s+part\s+of\s+"
    # the links of a request ("a protein with X located in Y", "one that has X"); a GO name that
    # holds such words still matches, as a run of pieces joined by them is tried first
    r"|\s+(?:located|found|localized|localised|resides|residing)\s+in\s+(?:the\s+)?|\s+in\s+the\s+|\s+with\s+|\s+that\s+)"
)
_FILLER = frozenset(
    "which that this these those it its they and or also so then as well the a an "
    "protein proteins sequence design generate create make write propose give me one new".split()
)
"""Words that make up list pieces which are no attempt at a term ("..., which is a kind of ...")."""
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.I)
_TRAILING = " \t.,;:!?\"'()[]"
_PLACE_ADJECTIVES = {
    "nuclear": "nucleus",
    "mitochondrial": "mitochondrion",
    "cytoplasmic": "cytoplasm",
    "cytosolic": "cytosol",
    "peroxisomal": "peroxisome",
    "vacuolar": "vacuole",
    "chloroplastic": "chloroplast",
    "secreted": "extracellular region",
    "extracellular": "extracellular region",
    "membrane": "membrane",
}
"""How people name a protein by where it lives ("a nuclear protein") -> the GO name of the place."""
_BINDING_ADJECTIVE = re.compile(r"^(\S+)-binding(?:\s+(?:proteins?|domains?|sites?))?$", re.I)
# Verb phrases of instruct.templates (function_phrase, location_phrase, process_phrase) undone, and
# the adjectives of a request ("a zinc-binding protein", "a small nuclear protein").
_VERB_FORMS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_BINDING_ADJECTIVE, r"\1 binding"),  # zinc-binding -> the synonym "zinc binding"
    (_BINDING_ADJECTIVE, r"\1 ion binding"),  # calcium-binding -> "calcium ion binding" (no such synonym)
    (
        re.compile(rf"^({'|'.join(_PLACE_ADJECTIVES)})\s+proteins?$", re.I),
        lambda m: _PLACE_ADJECTIVES[m.group(1).lower()],
    ),
    (re.compile(r"^binds?\s+(.+)$", re.I), r"\1 binding"),
    (re.compile(r"^(?:is|be|are)\s+located\s+in\s+(.+)$", re.I), r"\1"),
    (re.compile(r"^(?:located|localized|localizes|found|resides)\s+(?:in|to|at)\s+(.+)$", re.I), r"\1"),
    (re.compile(r"^(?:takes?|taking)\s+part\s+in\s+(.+)$", re.I), r"\1"),
    (re.compile(r"^(?:has|have|with)\s+(.+)$", re.I), r"\1"),
    (re.compile(r"^(?:enables?|involved\s+in|is|are|be)\s+(?:an?\s+|the\s+)?(.+)$", re.I), r"\1"),
)


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    aspect: str | None


@dataclass(frozen=True)
class TermMatch:
    """A term the text names: the words that named it and how they were matched."""

    phrase: str
    term: Term
    matched_by: str  # id | name | synonym | name (case-insensitive) | synonym (case-insensitive) | fuzzy 0.93
    source: str = ""  # which answer named it (function, location, go_F, ...)
    note: str = ""


@dataclass
class TermSet:
    """Named terms, the terms they imply, and the parts of the text that named nothing."""

    direct: list[TermMatch] = field(default_factory=list)
    implied: list[tuple[Term, str]] = field(default_factory=list)  # (ancestor, id of a named term implying it)
    unmatched: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """Every term id carried: named ones first, then implied ones."""
        return [m.term.id for m in self.direct] + [t.id for t, _ in self.implied]

    @property
    def most_specific(self) -> list[TermMatch]:
        """Named terms that no other named term implies."""
        implied = {t.id for t, _ in self.implied} | self._named_ancestors
        return [m for m in self.direct if m.term.id not in implied]

    _named_ancestors: set[str] = field(default_factory=set, repr=False)

    def summary(self) -> str:
        if not self.direct:
            return "names no GO term known to the knowledge graph"
        return f"{len(self.direct)} GO term(s) named, {len(self.implied)} implied by the ontology"

    def to_dict(self) -> dict[str, Any]:
        specific = {m.term.id for m in self.most_specific}
        return {
            "direct": [
                {
                    "id": m.term.id,
                    "name": m.term.name,
                    "aspect": m.term.aspect,
                    "phrase": m.phrase,
                    "matched_by": m.matched_by,
                    "source": m.source,
                    "most_specific": m.term.id in specific,
                    **({"note": m.note} if m.note else {}),
                }
                for m in self.direct
            ],
            "implied": [{"id": t.id, "name": t.name, "aspect": t.aspect, "implied_by": by} for t, by in self.implied],
            "unmatched": list(self.unmatched),
            "summary": self.summary(),
        }


class TermIndex:
    """Names and EXACT synonyms of a graph's GO terms, for mapping text to ids."""

    def __init__(self, kg: KnowledgeGraph, *, scopes: Sequence[str] = SYNONYM_SCOPES):
        self.kg = kg
        self.by_eid: dict[int, Term] = {}
        self.exact: dict[str, tuple[int, str]] = {}
        self.folded: dict[str, tuple[int, str]] = {}
        for eid, tid, name, aspect in kg.con.execute(
            "SELECT eid, id, name, aspect FROM entity WHERE kind = 'go' AND name IS NOT NULL ORDER BY eid"
        ):
            self.by_eid[eid] = Term(tid, name, aspect)
            self.exact.setdefault(name, (eid, "name"))
            self.folded.setdefault(name.lower(), (eid, "name (case-insensitive)"))
        marks = ",".join("?" * len(scopes))
        for eid, text in kg.con.execute(
            f"SELECT s.eid, s.text FROM synonym s WHERE COALESCE(s.scope, '') IN ({marks}) ORDER BY s.eid, s.text",
            tuple(scopes),
        ):
            if eid in self.by_eid:
                self.exact.setdefault(text, (eid, "synonym"))
                self.folded.setdefault(text.lower(), (eid, "synonym (case-insensitive)"))
        self._keys: list[str] | None = None

    # -- single lookups -------------------------------------------------------------------------------
    def by_id(self, term_id: str) -> Term | None:
        """The term of an id or alternative id, or None if the graph does not know it."""
        try:
            e = self.kg.entity(term_id)
        except KeyError:
            return None
        return Term(e.id, e.name, e.aspect) if e.kind == "go" else None

    def lookup(self, phrase: str, *, fuzzy: bool = False, cutoff: float = 0.9) -> TermMatch | None:
        """The term ``phrase`` names exactly (then case-insensitively, then fuzzily if asked)."""
        phrase = phrase.strip(_TRAILING)
        if not phrase:
            return None
        for text in _variants(phrase):
            hit = self.exact.get(text)
            if hit is None:
                folded = self.folded.get(text.lower())
                hit = folded
            if hit is not None:
                return TermMatch(phrase, self.by_eid[hit[0]], hit[1])
        if fuzzy:
            if self._keys is None:
                self._keys = list(self.folded)
            for text in _variants(phrase):
                close = difflib.get_close_matches(text.lower(), self._keys, n=1, cutoff=cutoff)
                if close:
                    eid, _ = self.folded[close[0]]
                    ratio = difflib.SequenceMatcher(None, text.lower(), close[0]).ratio()
                    return TermMatch(phrase, self.by_eid[eid], f"fuzzy {ratio:.2f}")
        return None

    # -- text -----------------------------------------------------------------------------------------
    def find(self, text: str, *, source: str = "", fuzzy: bool = False, cutoff: float = 0.9) -> TermSet:
        """The terms ``text`` names (ids and names), closed under the ontology."""
        matches: list[TermMatch] = []
        unmatched: list[str] = []
        for line in text.splitlines():
            if _GO_ID.search(line):
                m, miss = self._id_line(line, source, fuzzy, cutoff)
                matches += m
                unmatched += miss
                continue
            for sentence in _SENTENCE.split(line):
                m, miss = self._sentence(sentence, source, fuzzy, cutoff)
                matches += m
                unmatched += miss
        return self.close(matches, unmatched)

    def _id_line(self, line: str, source: str, fuzzy: bool, cutoff: float) -> tuple[list[TermMatch], list[str]]:
        out: list[TermMatch] = []
        miss: list[str] = []
        pieces = _GO_ID.split(line)
        ids = _GO_ID.findall(line)
        for gid, after in zip(ids, pieces[1:]):
            name = after.strip(_TRAILING + "-:")
            by_name = self.lookup(name, fuzzy=fuzzy, cutoff=cutoff) if name else None
            term = self.by_id(gid)
            if by_name is not None:
                note = ""
                if term is None:
                    note = f"{gid} is not a GO id the graph knows; mapped by the name"
                elif term.id != by_name.term.id:
                    note = f"written as {gid} ({term.name}); the name was taken"
                out.append(TermMatch(f"{gid} {name}", by_name.term, by_name.matched_by, source, note))
            elif term is not None:
                note = f"the name {name!r} is not this term's" if name and name.lower() != term.name.lower() else ""
                out.append(TermMatch(f"{gid} {name}".strip(), term, "id", source, note))
            else:
                miss.append(f"{gid} {name}".strip())
        return out, miss

    def _sentence(self, sentence: str, source: str, fuzzy: bool, cutoff: float) -> tuple[list[TermMatch], list[str]]:
        parts = _SEPARATOR.split(sentence.strip().rstrip(".!?"))
        items = parts[0::2]
        seps = parts[1::2]
        out: list[TermMatch] = []
        miss: list[str] = []
        i = 0
        while i < len(items):
            found = None
            for j in range(len(items), i, -1):  # longest run of items first: names with commas / "and"
                candidate = items[i]
                for k in range(i + 1, j):
                    candidate += seps[k - 1] + items[k]
                # lead-in words may only be dropped from the first item of the run
                found = self._item(candidate, fuzzy=False, cutoff=cutoff, max_start=len(items[i].split()))
                if found is not None:
                    break
            if found is None and fuzzy:
                found = self._item(items[i], fuzzy=True, cutoff=cutoff)
                j = i + 1
            if found is None:
                piece = items[i].strip(_TRAILING)
                if piece and not set(piece.lower().split()) <= _FILLER:
                    miss.append(piece)
                i += 1
                continue
            out.append(TermMatch(found.phrase, found.term, found.matched_by, source))
            i = j
        return out, miss

    def _item(self, item: str, *, fuzzy: bool, cutoff: float, max_start: int | None = None) -> TermMatch | None:
        """Match the item, or its end after dropping lead-in words one at a time (at most ``max_start``)."""
        words = item.strip(_TRAILING).split()
        for start in range(min(len(words), max_start if max_start is not None else len(words))):
            hit = self.lookup(" ".join(words[start:]), fuzzy=fuzzy and start == 0, cutoff=cutoff)
            if hit is not None:
                return hit
        return None

    # -- ontology -------------------------------------------------------------------------------------
    def close(self, matches: Iterable[TermMatch], unmatched: Iterable[str] = ()) -> TermSet:
        """Named terms (each id once, first mention kept) plus every non-root ancestor they imply."""
        direct: list[TermMatch] = []
        seen: set[str] = set()
        for m in matches:
            if m.term.id not in seen:
                seen.add(m.term.id)
                direct.append(m)
        implied: list[tuple[Term, str]] = []
        named_ancestors: set[str] = set()
        implied_seen: set[str] = set()
        for m in direct:
            for ent, _dist in self.kg.ancestors(m.term.id):
                if ent.id in GO_ROOTS:
                    continue
                if ent.id in seen:
                    named_ancestors.add(ent.id)
                    continue
                if ent.id not in implied_seen:
                    implied_seen.add(ent.id)
                    implied.append((Term(ent.id, ent.name, ent.aspect), m.term.id))
        result = TermSet(direct, implied, _dedupe(unmatched))
        result._named_ancestors = named_ancestors
        return result

    def carried_by(self, accession: str) -> set[str]:
        """GO ids a protein of the graph carries, propagated (direct terms and all their ancestors)."""
        return {a.entity.id for a in self.kg.propagated_annotations(accession)}


def merge(sets: Iterable[TermSet], index: TermIndex) -> TermSet:
    """One closed set from several answers' sets (each term once, first answer's mention kept)."""
    matches: list[TermMatch] = []
    unmatched: list[str] = []
    for s in sets:
        matches += s.direct
        unmatched += s.unmatched
    return index.close(matches, unmatched)


def _variants(phrase: str) -> list[str]:
    """The phrase, without a leading article, and with a template verb phrase undone."""
    out = [phrase]
    bare = _ARTICLE.sub("", phrase)
    if bare != phrase:
        out.append(bare)
    for pattern, repl in _VERB_FORMS:
        if pattern.match(bare):
            undone = _ARTICLE.sub("", pattern.sub(repl, bare)).strip(_TRAILING)
            if undone and undone not in out:
                out.append(undone)
    return out


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        if x and x not in seen:
            seen.add(x)
            out.append(x)
    return out
