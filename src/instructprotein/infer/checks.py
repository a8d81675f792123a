"""What is checked on a designed sequence, and the rule behind each flag.

- **alphabet**: every residue one of the 20 standard amino acids (constrained decoding
  guarantees it; the check makes the guarantee visible and catches a foreign sequence);
- **length** within the requested ``[min_len, max_len]``;
- **low complexity / repeats**, three numbers and one flag:

  - ``low_complexity_fraction``: the fraction of residues covered by at least one window of
    :data:`WINDOW` (12) residues whose Shannon entropy is below :data:`ENTROPY_BITS` (2.2
    bits): SEG's trigger window and threshold (Wootton & Federhen 1993). A random sequence
    over 20 letters has ~3.4 bits in 12 residues; ``AAAAAAAAAAAA`` has 0;
  - ``longest_homopolymer``: the longest run of one residue;
  - ``repeat_fraction``: the fraction of residues inside an exact tandem repeat, a unit of
    2-10 residues repeated back to back over at least ``max(3 x unit, 8)`` residues
    (``PGPGPGPG``, ``GPPGPPGPP``);
  - flagged ``low_complexity`` when ``low_complexity_fraction`` > :data:`MAX_LOW_COMPLEXITY`
    or ``longest_homopolymer`` >= :data:`MAX_HOMOPOLYMER` or ``repeat_fraction`` >
    :data:`MAX_REPEAT`. The cut-offs (0.45, 10, 0.05) sit just above the 99th percentiles
    over the 5,155 Swiss-Prot proteins of the 1 % graph sample (0.42, 9, 0.008; run
    ``python -m instructprotein.infer.checks KG.sqlite``; measured 2026-11-25): 1.6 % of
    natural proteins are flagged, while collapsed generations (``AAAA...``,
    ``KEKEKE...``) always are;
- **closest known protein** and its identity: MMseqs2 against the knowledge graph's
  proteins (:class:`~instructprotein.infer.retrieval.ProteinIndex`); none within E-value
  1e-3 says the design resembles nothing known;
- **requested annotations carried**: the GO terms named in the request, mapped like
  ``describe`` maps answers (:class:`~instructprotein.infer.terms.TermIndex`), each checked
  against the closest protein's propagated annotations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from instructprotein.infer.retrieval import Homolog, ProteinIndex
from instructprotein.infer.terms import TermIndex, TermSet

STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")
WINDOW = 12
ENTROPY_BITS = 2.2
MAX_LOW_COMPLEXITY = 0.45
MAX_HOMOPOLYMER = 10
MAX_REPEAT = 0.05
MAX_REPEAT_UNIT = 10


def shannon_entropy(text: str) -> float:
    """Entropy in bits of the letter frequencies of ``text`` (0 for one repeated letter)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def low_complexity_mask(sequence: str, window: int = WINDOW, threshold: float = ENTROPY_BITS) -> list[bool]:
    """Per residue: is it inside some ``window`` whose entropy is below ``threshold`` bits?

    A sequence shorter than the window is one window. Sliding counts keep this linear.
    """
    n = len(sequence)
    mask = [False] * n
    if n == 0:
        return mask
    w = min(window, n)
    counts: Counter[str] = Counter(sequence[:w])

    def entropy() -> float:
        return -sum(c / w * math.log2(c / w) for c in counts.values() if c)

    for start in range(0, n - w + 1):
        if start:
            old, new = sequence[start - 1], sequence[start + w - 1]
            counts[old] -= 1
            if counts[old] == 0:
                del counts[old]
            counts[new] += 1
        if entropy() < threshold:
            for i in range(start, start + w):
                mask[i] = True
    return mask


def longest_homopolymer(sequence: str) -> tuple[int, str, int]:
    """(length, residue, 0-based start) of the longest run of one residue; (0, '', 0) if empty."""
    best = (0, "", 0)
    run_start = 0
    for i in range(1, len(sequence) + 1):
        if i == len(sequence) or sequence[i] != sequence[run_start]:
            if i - run_start > best[0]:
                best = (i - run_start, sequence[run_start], run_start)
            run_start = i
    return best


def tandem_repeat_mask(sequence: str, max_unit: int = MAX_REPEAT_UNIT) -> list[bool]:
    """Per residue: is it inside an exact tandem repeat (unit 2..``max_unit``, span >= max(3 x unit, 8))?

    Runs of one residue are :func:`longest_homopolymer`'s business, not counted here."""
    n = len(sequence)
    mask = [False] * n
    for p in range(2, max_unit + 1):
        need = max(3 * p, 8)
        i = p
        while i < n:
            if sequence[i] != sequence[i - p]:
                i += 1
                continue
            j = i
            while j < n and sequence[j] == sequence[j - p]:
                j += 1
            # residues i-p .. j-1 are the repeat: j - i matches after the first unit
            if j - (i - p) >= need and len(set(sequence[i - p : j])) > 1:  # not a homopolymer
                for k in range(i - p, j):
                    mask[k] = True
            i = j + 1
    return mask


@dataclass
class SequenceChecks:
    """The numbers of :func:`check_sequence` and what they flag."""

    length: int
    valid_alphabet: bool
    invalid_residues: str
    length_ok: bool | None
    low_complexity_fraction: float
    longest_homopolymer: int
    homopolymer_residue: str
    repeat_fraction: float
    low_complexity: bool
    closest: Homolog | None = None
    closest_searched: bool = False
    requested: list[dict[str, Any]] = field(default_factory=list)  # {id, name, carried}

    @property
    def passed(self) -> bool:
        """Valid alphabet, length in range, not low complexity (similarity is reported, not judged)."""
        return self.valid_alphabet and self.length_ok is not False and not self.low_complexity

    def to_dict(self) -> dict[str, Any]:
        return {
            "length": self.length,
            "length_ok": self.length_ok,
            "valid_alphabet": self.valid_alphabet,
            "invalid_residues": self.invalid_residues,
            "low_complexity_fraction": round(self.low_complexity_fraction, 4),
            "longest_homopolymer": self.longest_homopolymer,
            "homopolymer_residue": self.homopolymer_residue,
            "repeat_fraction": round(self.repeat_fraction, 4),
            "low_complexity": self.low_complexity,
            "closest": self.closest.accession if self.closest else None,
            "closest_identity": round(self.closest.identity, 4) if self.closest else None,
            "closest_evalue": self.closest.evalue if self.closest else None,
            "closest_searched": self.closest_searched,
            "requested": self.requested,
            "passed": self.passed,
        }


def check_sequence(sequence: str, *, min_len: int | None = None, max_len: int | None = None) -> SequenceChecks:
    """Alphabet, length and low-complexity checks of one sequence (no search)."""
    n = len(sequence)
    bad = "".join(sorted(set(sequence) - STANDARD))
    lc = low_complexity_mask(sequence)
    rep = tandem_repeat_mask(sequence)
    run, residue, _ = longest_homopolymer(sequence)
    length_ok = None
    if min_len is not None or max_len is not None:
        length_ok = (min_len is None or n >= min_len) and (max_len is None or n <= max_len)
    lc_fraction = sum(lc) / n if n else 0.0
    rep_fraction = sum(rep) / n if n else 0.0
    flagged = lc_fraction > MAX_LOW_COMPLEXITY or run >= MAX_HOMOPOLYMER or rep_fraction > MAX_REPEAT
    return SequenceChecks(n, not bad and n > 0, bad, length_ok, lc_fraction, run, residue, rep_fraction, flagged)


def check_designs(
    sequences: Sequence[str],
    *,
    min_len: int | None = None,
    max_len: int | None = None,
    index: ProteinIndex | None = None,
    requested: TermSet | None = None,
    terms: TermIndex | None = None,
    sensitivity: float = 4.0,
) -> list[SequenceChecks]:
    """:func:`check_sequence` for each design, plus (with ``index``) the closest graph protein
    from one batched MMseqs2 search, and whether it carries each ``requested`` term."""
    out = [check_sequence(s, min_len=min_len, max_len=max_len) for s in sequences]
    if index is None:
        return out
    queries = {f"design{i + 1}": s for i, s in enumerate(sequences) if s}
    found = index.search(queries, top_k=1, sensitivity=sensitivity) if queries else {}
    for i, c in enumerate(out):
        hits = found.get(f"design{i + 1}", [])
        c.closest_searched = True
        c.closest = hits[0] if hits else None
        if requested is not None and requested.direct:
            carried = terms.carried_by(c.closest.accession) if (terms is not None and c.closest) else set()
            c.requested = [
                {"id": m.term.id, "name": m.term.name, "carried": (m.term.id in carried) if c.closest else None}
                for m in requested.direct
            ]
    return out


def _calibrate(kg_path: str) -> None:  # pragma: no cover - a measurement, run by hand
    """Print the percentiles behind the cut-offs, over every protein of a graph."""
    import numpy as np

    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(kg_path) as kg:
        rows = [s for (s,) in kg.con.execute("SELECT sequence FROM protein")]
    lc = np.array([sum(low_complexity_mask(s)) / len(s) for s in rows])
    hp = np.array([longest_homopolymer(s)[0] for s in rows])
    rp = np.array([sum(tandem_repeat_mask(s)) / len(s) for s in rows])
    for name, values in (("low_complexity_fraction", lc), ("longest_homopolymer", hp), ("repeat_fraction", rp)):
        q = np.percentile(values, [50, 90, 95, 99, 99.9])
        print(f"{name}: median {q[0]:.3g}, 90% {q[1]:.3g}, 95% {q[2]:.3g}, 99% {q[3]:.3g}, 99.9% {q[4]:.3g}")
    flagged = (lc > MAX_LOW_COMPLEXITY) | (hp >= MAX_HOMOPOLYMER) | (rp > MAX_REPEAT)
    print(f"flagged with the current cut-offs: {flagged.mean():.2%} of {len(rows):,} proteins")


if __name__ == "__main__":  # pragma: no cover
    import sys

    _calibrate(sys.argv[1])
