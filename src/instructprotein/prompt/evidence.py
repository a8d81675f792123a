"""Evidence about a protein's homologs, written before the question (retrieval augmentation).

On CPU budgets the best evidence a small model can get is what is known about similar
sequences (a 4M-parameter model alone learns only the class prior; with the best homolog's
annotation in its prompt it reaches 40-80 %). The model's
job is then to weigh several homologs by their identity, and its own reading of the
sequence, instead of copying the best hit blindly.

The block depends on the question, because evidence is only useful when the model can
connect it to what is asked:

- **location** questions get each homolog's location in the words of the location answer
  (``nucleus (nucleolus)``; see :func:`location_text`), so that agreeing with a homolog is
  a copy, not a translation from GO names;
- **yes/no** questions about a term get, per homolog, whether it carries the term (by
  propagation: a homolog with zinc ion binding carries metal ion binding), or ``unknown``
  when the homolog has no annotation of the term's aspect;
- every other question gets each homolog's GO terms (functions, processes, locations).

Formats (identity as a whole percent; homologs best first)::

    Homologs: 62% identical: nucleus (nucleolus). 41% identical: cytoplasm.
    Homologs with metal ion binding? 62% identical: yes. 41% identical: unknown.
    Homologs: 62% identical: zinc ion binding, DNA repair, nucleus.
    Homologs: none found.

Accessions are left out on purpose: they cost tokens and tell the model nothing; the
commands show them to people beside the answer.

This module is pure text and small rules: the instruction generator feeds it from the
in-memory graph view, inference and evaluation from the SQLite graph, so training prompts
and the prompts a trained model is asked are written by the same functions. When a block
does not leave the protein room in a short context, :func:`shorter_block` takes it apart
again (fewer homologs, then a shorter line), so a request is never refused for its evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

HEADER = "Homologs"
NONE_FOUND = f"{HEADER}: none found."

# -- the blocks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HomologFacts:
    """What the block says about one homolog; which field is read depends on the question."""

    identity: float
    terms: tuple[str, ...] = ()  # GO names, functions then processes then locations (general questions)
    location: str = ""  # location_text of the homolog ("" when it has no CC annotation)
    carries: bool | None = None  # carries the asked term; None: no annotation in the term's aspect


KINDS = ("general", "location", "term")


def _pct(identity: float) -> str:
    return f"{int(identity * 100 + 1e-9)}% identical"


def evidence_block(kind: str, facts: Sequence[HomologFacts], term: str | None = None) -> str:
    """The block written before the question (see the module notes for the three formats)."""
    if kind not in KINDS:
        raise ValueError(f"evidence kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "term" and not term:
        raise ValueError("a term question's evidence needs the term's name")
    if not facts:
        return NONE_FOUND
    parts = []
    for f in facts:
        if kind == "location":
            what = f.location or "location unknown"
        elif kind == "term":
            what = "unknown" if f.carries is None else ("yes" if f.carries else "no")
        else:
            what = ", ".join(f.terms) if f.terms else "no GO annotation"
        parts.append(f"{_pct(f.identity)}: {what}.")
    head = f"{HEADER} with {term}?" if kind == "term" else f"{HEADER}:"
    return f"{head} {' '.join(parts)}"


def with_evidence(question: str, block: str | None) -> str:
    """The question with its evidence block on the line before it."""
    return f"{block}\n{question}" if block else question


# -- shortening a block that does not fit ---------------------------------------------------------------

_PART = re.compile(r"(?:^| )(\d+% identical: )")


def block_parts(block: str) -> tuple[str, list[str]] | None:
    """``(head, parts)`` of a block written by :func:`evidence_block` (one part a homolog, best
    first), or None for text that is not such a block (it is then kept or dropped whole)."""
    first = _PART.search(block)
    if first is None or first.start() == 0:
        return None
    head = block[: first.start()]
    if head != f"{HEADER}:" and not (head.startswith(f"{HEADER} with ") and head.endswith("?")):
        return None
    body = block[len(head) :]
    starts = [m.start(1) for m in _PART.finditer(body)]
    parts = [body[a:b].rstrip(" ") for a, b in zip(starts, starts[1:] + [len(body)])]
    if not all(p.endswith(".") for p in parts):
        return None
    return head, parts


def shorter_block(block: str | None) -> str | None:
    """The block one step shorter, the way a prompt that does not fit gives way: its last
    (least similar) homolog dropped; with one homolog left, the last item of its line
    (``, ``-separated); then nothing (None: no retrieval rather than a refused request, and
    never ``none found``, which would be untrue). Each step keeps what training showed: blocks
    of fewer homologs and of fewer terms are ordinary instruction text."""
    if not block:
        return None
    split = block_parts(block)
    if split is None:
        return None
    head, parts = split
    if len(parts) > 1:
        return f"{head} {' '.join(parts[:-1])}"
    if not parts:
        return None
    label, _, what = parts[0].partition(": ")
    items = what[:-1].split(", ")
    if len(items) < 2:
        return None
    return f"{head} {label}: {', '.join(items[:-1])}."
