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
and the prompts a trained model is asked are written by the same functions.
"""

from __future__ import annotations

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


# -- fitting a protein into a short context -----------------------------------------------------------------


def answer_room(context_len: int) -> int:
    """Tokens a prompt leaves free for its answer when its protein must be cut to fit.

    Training and inference cut to the same budget, ``context - answer_room``, whatever the
    answer: were examples cut just enough to fit prompt + answer, a long answer would put
    the prompt's end early and a short one late, and a model with learned positions reads
    the answer off the position (measured: "no", a short answer, won the yes/no questions at
    p = 0.99 from the position of a cut prompt alone).
    """
    return max(16, min(128, context_len // 4))

GAP = "X"
"""What stands for the residues left out of a protein too long for the model: one unknown residue."""


def fit_residues(sequence: str, n: int, *, head: float = 0.75) -> str:
    """``sequence`` in at most ``n`` residue tokens: unchanged if it fits, else its first residues,
    one ``X`` for the gap, and its last residues.

    Why both ends: sorting signals sit there (signal and transit peptides at the N terminus,
    PTS1 and KDEL at the C terminus), and training and inference cut the same way, so the
    model has seen such joined sequences. ``head`` is the share of the N-terminal part.
    """
    if n < 1:
        raise ValueError(f"at least one residue must fit, got {n}")
    if len(sequence) <= n:
        return sequence
    if n < 3:
        return sequence[:n]
    room = n - 1
    first = max(1, round(room * head))
    last = room - first
    return sequence[:first] + GAP + (sequence[-last:] if last else "")
