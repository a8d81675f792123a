"""Reader of OBO 1.2 / 1.4 ontology files (GO's ``go.obo``, ChEBI's ``chebi.obo``).

Only ``[Term]`` stanzas become records; ``[Typedef]`` and ``[Instance]`` stanzas are read
past, because the knowledge graph needs terms and their parents, not the definitions of the
relations themselves.

Parents kept (``TermRecord.parents``) are ``is_a`` and the ``relationship:`` types in
:data:`~instructprotein.formats.records.TERM_RELATIONS` (part_of and the three regulates).
Other relationship types are dropped on purpose:

- ``has_part`` points the wrong way for propagation: "A has_part B" means every A contains
  a B, not that a protein annotated to A is annotated to B's ancestors (the inverse,
  B part_of A, does not hold in general), so following it would invent annotations;
- ``occurs_in``, ``results_in`` and ChEBI's chemical relations (has_role,
  is_conjugate_acid_of, ...) cross into other ontologies or are not a hierarchy at all.

``intersection_of`` (logical definitions) is ignored too: in GO its genus repeats an
``is_a`` the term already states.

Structural problems are reported as :class:`~instructprotein.errors.InputError` with the
file and line: a file that is empty or has no terms, a stanza without ``id``, a duplicate
term id, an ``is_a`` / relationship to an id the file does not define, and a cycle in
``is_a`` + ``part_of`` (propagation over a cycle would never end, or would make every term
on it an ancestor of itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from instructprotein.errors import InputError, SkipLog, report
from instructprotein.formats.records import PROPAGATING_RELATIONS, TERM_RELATIONS, Ontology, TermRecord
from instructprotein.formats.textio import numbered_lines

__all__ = ["read_obo", "find_cycle", "check_cycles"]

_KEPT_RELATIONSHIPS = frozenset(TERM_RELATIONS) - {"is_a"}
_SCOPES = frozenset({"EXACT", "BROAD", "NARROW", "RELATED"})
# OBO 1.0 synonym tags, still accepted by OBO 1.2 parsers; the tag names the scope.
_LEGACY_SYNONYM_TAGS = {
    "exact_synonym": "EXACT",
    "broad_synonym": "BROAD",
    "narrow_synonym": "NARROW",
    "related_synonym": "RELATED",
}
# A quoted OBO string: anything but an unescaped closing quote, then the rest of the line.
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(.*)', re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "W": " "}
# Tags of a [Term] stanza that _read_tag uses; the rest (xref, subset, comment, ...) are
# passed over before the call, which is most of what makes reading GO fast.
_TERM_TAGS = frozenset(
    {
        "id",
        "name",
        "namespace",
        "def",
        "synonym",
        "is_obsolete",
        "alt_id",
        "replaced_by",
        "consider",
        "is_a",
        "relationship",
        *_LEGACY_SYNONYM_TAGS,
    }
)


def _unescape(text: str) -> str:
    r"""Undo OBO backslash escapes (``\"`` -> ``"``, ``\n`` -> newline, ``\\`` -> ``\``)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(_ESCAPES.get(nxt, nxt))
        else:
            out.append(ch)
    return "".join(out)


def _quoted(value: str) -> tuple[str, str] | None:
    """Split ``"text" rest`` into (unescaped text, rest); ``None`` if the quote is unclosed."""
    match = _QUOTED.match(value)
    if match is None:
        return None
    return _unescape(match.group(1)), match.group(2).strip()


def _strip_comment(value: str) -> str:
    """Drop a trailing ``! comment`` and OBO 1.4 ``{modifiers}`` from an unquoted value."""
    bang = value.find("!")
    while bang > 0 and value[bang - 1] == "\\":
        bang = value.find("!", bang + 1)
    if bang >= 0:
        value = value[:bang]
    value = value.strip()
    if value.endswith("}"):
        brace = value.rfind("{")
        if brace >= 0:
            value = value[:brace].strip()
    return value


class _Stanza:
    """A [Term] stanza while it is being read: the record plus where each parent was named."""

    __slots__ = ("record", "header_line", "parent_lines")

    def __init__(self, header_line: int):
        self.record = TermRecord(id="", name="", line=header_line)
        self.header_line = header_line
        self.parent_lines: dict[tuple[str, str], int] = {}  # (relation, parent) -> line

    def add_parent(self, relation: str, parent: str, line: int) -> None:
        edge = (relation, parent)
        if edge not in self.parent_lines:  # a repeated edge adds nothing
            self.parent_lines[edge] = line
            self.record.parents.append(edge)


def read_obo(
    path: str | Path,
    skip: SkipLog | None = None,
    namespaces: Iterable[str] | None = None,
) -> Ontology:
    """Read an OBO file into an :class:`Ontology` (obsolete terms included, flagged).

    ``namespaces`` keeps only terms of those namespaces (``None`` keeps all); edges to terms
    that were filtered out are dropped so the result is closed under ``parents``. A term
    without a ``namespace:`` tag gets the header's ``default-namespace``.

    With ``skip`` a bad stanza or edge is logged and left out instead of raising; a cycle is
    then broken by dropping the edge that closes it.
    """
    path = Path(path)
    header: dict[str, str] = {}
    stanzas: list[_Stanza] = []
    current: _Stanza | None = None
    in_header = True
    seen_anything = False

    for number, raw in numbered_lines(path):
        line = raw.strip()
        if number == 1:
            line = line.lstrip("\ufeff")  # a byte-order mark left by some Windows editors
        if not line or line.startswith("!"):
            continue
        seen_anything = True
        if line.startswith("["):
            in_header = False
            if not line.endswith("]"):
                report(InputError(f"malformed stanza header {line!r}", path, number), skip)
                current = None
                continue
            current = _Stanza(number) if line == "[Term]" else None
            if current is not None:
                stanzas.append(current)
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            report(InputError(f"expected 'tag: value', got {line[:60]!r}", path, number), skip)
            continue
        tag = tag.strip()
        value = value.strip()
        if in_header:
            header.setdefault(tag, value)
            continue
        if current is None or tag not in _TERM_TAGS:  # [Typedef] / [Instance], or a tag not kept
            continue
        _read_tag(current, tag, value, path, number, skip)

    if not seen_anything:
        raise InputError("empty file: no OBO header or stanzas", path, 1)
    if not stanzas:
        raise InputError("no [Term] stanza in file", path, 1)

    default_ns = header.get("default-namespace")
    terms: dict[str, TermRecord] = {}
    lines_of: dict[str, dict[tuple[str, str], int]] = {}
    for st in stanzas:
        rec = st.record
        if not rec.id:
            report(InputError("[Term] stanza without an id", path, st.header_line), skip)
            continue
        if rec.id in terms:
            first = terms[rec.id].line
            report(InputError(f"duplicate term id {rec.id} (first defined at line {first})", path, rec.line), skip)
            continue
        if rec.namespace is None:
            rec.namespace = default_ns
        terms[rec.id] = rec
        lines_of[rec.id] = st.parent_lines

    # References are checked against every term of the file, before the namespace filter:
    # a BP term part_of an MF term is fine in the file even if only BP is kept.
    for term_id, rec in terms.items():
        if all(parent in terms for _, parent in rec.parents):
            continue
        kept: list[tuple[str, str]] = []
        for rel, parent in rec.parents:
            if parent not in terms:
                at = lines_of[term_id][(rel, parent)]
                report(InputError(f"{term_id} {rel} {parent}: {parent} is not defined in this file", path, at), skip)
                continue
            kept.append((rel, parent))
        rec.parents = kept

    if namespaces is not None:
        wanted = set(namespaces)
        terms = {k: t for k, t in terms.items() if t.namespace in wanted}
        for rec in terms.values():
            rec.parents = [(rel, p) for rel, p in rec.parents if p in terms]

    ontology = Ontology(terms=terms, source=str(path), version=header.get("data-version") or header.get("date"))
    check_cycles(ontology, lines_of, path, skip)
    return ontology


def _read_tag(st: _Stanza, tag: str, value: str, path: Path, number: int, skip: SkipLog | None) -> None:
    """Apply one ``tag: value`` line of a [Term] stanza to its record."""
    rec = st.record
    if tag == "id":
        ident = _strip_comment(value)
        if rec.id and rec.id != ident:
            report(InputError(f"second id {ident} in the stanza of {rec.id}", path, number), skip)
            return
        rec.id = ident
        rec.line = number
    elif tag == "name":
        rec.name = _unescape(_strip_comment(value))
    elif tag == "namespace":
        rec.namespace = _strip_comment(value)
    elif tag == "def":
        split = _quoted(value)
        if split is None:
            report(InputError("def: expected a quoted definition", path, number), skip)
            return
        rec.definition = split[0]
    elif tag == "synonym" or tag in _LEGACY_SYNONYM_TAGS:
        split = _quoted(value)
        if split is None:
            report(InputError(f"{tag}: expected a quoted synonym", path, number), skip)
            return
        text, rest = split
        scope = _LEGACY_SYNONYM_TAGS.get(tag, "RELATED")  # RELATED is OBO's default scope
        first = rest.split(None, 1)[0] if rest else ""
        if first in _SCOPES:
            scope = first
        rec.synonyms.append((text, scope))
    elif tag == "is_obsolete":
        rec.is_obsolete = _strip_comment(value).lower() == "true"
    elif tag == "alt_id":
        rec.alt_ids.append(_strip_comment(value))
    elif tag == "replaced_by":
        rec.replaced_by.append(_strip_comment(value))
    elif tag == "consider":
        rec.consider.append(_strip_comment(value))
    elif tag == "is_a":
        parent = _strip_comment(value)
        if not parent or " " in parent:
            report(InputError(f"is_a: expected one term id, got {value!r}", path, number), skip)
            return
        st.add_parent("is_a", parent, number)
    elif tag == "relationship":
        parts = _strip_comment(value).split()
        if len(parts) < 2:
            report(InputError(f"relationship: expected 'type id', got {value!r}", path, number), skip)
            return
        if parts[0] in _KEPT_RELATIONSHIPS:
            st.add_parent(parts[0], parts[1], number)


def find_cycle(ontology: Ontology, relations: Iterable[str] = PROPAGATING_RELATIONS) -> list[str] | None:
    """A cycle over ``relations`` as term ids ``[a, b, ..., z]`` with a->b->...->z->a, or None.

    Edges go child -> parent; parents that are not in ``ontology.terms`` are ignored. The
    depth-first search keeps its own stack (GO is 40k terms deep in places of the call
    graph, far past Python's recursion limit), and visits terms in file order so the cycle
    reported for a given file is always the same.
    """
    rels = frozenset(relations)
    terms = ontology.terms

    def parents_of(term_id: str) -> Iterator[str]:
        for rel, parent in terms[term_id].parents:
            if rel in rels and parent in terms:
                yield parent

    done: set[str] = set()
    for start in terms:
        if start in done:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, parents_of(start))]
        on_stack: dict[str, int] = {start: 0}
        while stack:
            node, pending = stack[-1]
            for nxt in pending:
                if nxt in done:
                    continue
                at = on_stack.get(nxt)
                if at is not None:
                    return [n for n, _ in stack[at:]]
                on_stack[nxt] = len(stack)
                stack.append((nxt, parents_of(nxt)))
                break
            else:
                stack.pop()
                del on_stack[node]
                done.add(node)
    return None


def check_cycles(
    ontology: Ontology,
    lines_of: dict[str, dict[tuple[str, str], int]],
    path: str | Path,
    skip: SkipLog | None = None,
) -> None:
    """Report every is_a + part_of cycle as an :class:`InputError` at the closing edge's line.

    ``lines_of[child][(relation, parent)]`` is the line that states an edge (the term's own
    line where absent). With ``skip`` each cycle is logged and broken by dropping its
    closing edge, so the ontology that comes back is a DAG either way.
    """
    while (cycle := find_cycle(ontology)) is not None:
        last, first = cycle[-1], cycle[0]
        rec = ontology.terms[last]
        closing = [(rel, p) for rel, p in rec.parents if p == first and rel in PROPAGATING_RELATIONS]
        where = lines_of.get(last, {}).get(closing[0], rec.line) if closing else rec.line
        shown = " -> ".join(cycle + [first])
        report(InputError(f"cycle in is_a/part_of: {shown}", path, where), skip)
        # Only reached with a skip log: drop the edge that closes the cycle and look again.
        rec.parents = [e for e in rec.parents if e not in closing]
