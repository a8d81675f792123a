"""Metrics of generated text and generated proteins.

Describe (protein -> text), against held-out reference texts:

- :func:`bleu`: corpus BLEU-4 (Papineni et al. 2002: clipped n-gram precisions, geometric
  mean, brevity penalty), with add-one smoothing of the 2- to 4-gram counts (Lin & Och 2004)
  so a short answer with no 4-gram match does not score 0; :func:`sentence_bleu` per pair;
- :func:`rouge_l`: ROUGE-L F1 (longest common subsequence of tokens), averaged over pairs;
- :func:`go_fmax`: the entity-level view the field asks for: GO terms named in the answer
  against the protein's true terms, CAFA's protein-centric precision / recall over score
  thresholds and their best F (F-max); terms should be closed under the ontology on both
  sides first (:func:`~instructprotein.infer.terms.TermIndex` does for predictions).

Tokens for BLEU and ROUGE: lower-cased words and single punctuation marks.

Design (text -> protein):

- :func:`validity`: only the 20 standard residues, a length in range, not low-complexity
  (no residue above half the sequence, no run of one residue longer than ``max_run``);
- :func:`novelty`: 1 - identity of the closest training protein (MMseqs2, through
  :class:`~instructprotein.infer.retrieval.ProteinIndex`); a design with no hit is fully novel;
- :func:`diversity`: 1 - mean pairwise identity among the designs (global alignment,
  BLOSUM62; identity = identical aligned pairs / length of the shorter sequence);
- :func:`annotation_consistency`: does the closest known protein of each design carry the
  requested GO terms (propagated);
- :func:`describe_consistency`: does the model's own description of each design give back
  the requested terms (share of designs with all of them, and mean recall).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")


def tokens(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


# -- BLEU ---------------------------------------------------------------------------------------------------


def _ngrams(toks: Sequence[str], n: int) -> Counter:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def _bleu_counts(
    hyp: Sequence[str], refs: Sequence[Sequence[str]], max_n: int
) -> tuple[list[int], list[int], int, int]:
    matches, totals = [], []
    for n in range(1, max_n + 1):
        h = _ngrams(hyp, n)
        best: Counter = Counter()
        for r in refs:
            best |= _ngrams(r, n)
        matches.append(sum(min(c, best[g]) for g, c in h.items()))
        totals.append(max(len(hyp) - n + 1, 0))
    # closest reference length (ties: the shorter), as in the original BLEU
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1] if refs else 0
    return matches, totals, len(hyp), ref_len


def _bleu_from(matches: Sequence[int], totals: Sequence[int], hyp_len: int, ref_len: int, smooth: bool) -> float:
    if hyp_len == 0:
        return 0.0
    logs = []
    for n, (m, t) in enumerate(zip(matches, totals), start=1):
        if smooth and n > 1:
            m, t = m + 1, t + 1
        if m == 0 or t == 0:
            return 0.0
        logs.append(math.log(m / t))
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(sum(logs) / len(logs))


def _refs(references: Sequence[str | Sequence[str]]) -> list[list[list[str]]]:
    return [[tokens(r)] if isinstance(r, str) else [tokens(x) for x in r] for r in references]


def bleu(
    hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], *, max_n: int = 4, smooth: bool = True
) -> float:
    """Corpus BLEU (0..1) of hypotheses against one reference each (or several: a list per item)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    m_sum, t_sum = [0] * max_n, [0] * max_n
    h_len = r_len = 0
    for hyp, refs in zip(hypotheses, _refs(references)):
        m, t, h, r = _bleu_counts(tokens(hyp), refs, max_n)
        m_sum = [a + b for a, b in zip(m_sum, m)]
        t_sum = [a + b for a, b in zip(t_sum, t)]
        h_len += h
        r_len += r
    return _bleu_from(m_sum, t_sum, h_len, r_len, smooth)


def sentence_bleu(hypothesis: str, reference: str | Sequence[str], *, max_n: int = 4, smooth: bool = True) -> float:
    return bleu([hypothesis], [reference], max_n=max_n, smooth=smooth)


# -- ROUGE-L ---------------------------------------------------------------------------------------------------


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len(a) * len(b)))."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_pair(hypothesis: str, reference: str) -> dict[str, float]:
    h, r = tokens(hypothesis), tokens(reference)
    lcs = lcs_length(h, r)
    p = lcs / len(h) if h else 0.0
    rec = lcs / len(r) if r else 0.0
    f = 2 * p * rec / (p + rec) if p + rec else 0.0
    return {"precision": p, "recall": rec, "f1": f}


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 (0..1) over pairs."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not hypotheses:
        return float("nan")
    return sum(rouge_l_pair(h, r)["f1"] for h, r in zip(hypotheses, references)) / len(hypotheses)


# -- GO terms ------------------------------------------------------------------------------------------------


def set_precision_recall(predicted: Collection[str], true: Collection[str]) -> dict[str, float]:
    """Precision, recall and F1 of one protein's predicted term set against its true set."""
    p_set, t_set = set(predicted), set(true)
    hit = len(p_set & t_set)
    p = hit / len(p_set) if p_set else 0.0
    r = hit / len(t_set) if t_set else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def go_fmax(
    predictions: Mapping[str, Mapping[str, float] | Collection[str]],
    truth: Mapping[str, Collection[str]],
    *,
    thresholds: Iterable[float] | None = None,
) -> dict[str, Any]:
    """CAFA protein-centric F-max.

    ``predictions``: protein -> {term: score in [0, 1]} (or a set of terms, each scored 1);
    ``truth``: protein -> true terms. Proteins are those of ``truth`` (a protein with no
    prediction counts with recall 0). At threshold t, precision is averaged over proteins
    with at least one term scored >= t, recall over all proteins; F-max is the best
    ``2PR / (P + R)``. Returns f_max, its threshold, precision and recall, and coverage (share
    of proteins with any prediction at that threshold).
    """
    ts = list(thresholds) if thresholds is not None else [i / 100 for i in range(1, 101)]
    scored = {p: (dict(v) if isinstance(v, Mapping) else {t: 1.0 for t in v}) for p, v in predictions.items()}
    proteins = [p for p in truth if truth[p]]
    if not proteins:
        raise ValueError("no protein with true terms")
    best = {"f_max": 0.0, "threshold": None, "precision": 0.0, "recall": 0.0, "coverage": 0.0}
    for t in ts:
        precisions, recalls = [], []
        for p in proteins:
            pred = {term for term, s in scored.get(p, {}).items() if s >= t}
            true = set(truth[p])
            hit = len(pred & true)
            recalls.append(hit / len(true))
            if pred:
                precisions.append(hit / len(pred))
        if not precisions:
            continue
        prec = sum(precisions) / len(precisions)
        rec = sum(recalls) / len(recalls)
        f = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if f > best["f_max"]:
            best = {
                "f_max": f,
                "threshold": t,
                "precision": prec,
                "recall": rec,
                "coverage": len(precisions) / len(proteins),
            }
    best["proteins"] = len(proteins)
    return best


# -- design -----------------------------------------------------------------------------------------------------


def validity(
    sequence: str, *, min_length: int = 30, max_length: int = 2000, max_fraction: float = 0.5, max_run: int = 10
) -> dict[str, Any]:
    """Checks of one designed sequence; ``valid`` when all pass."""
    seq = sequence.strip().upper()
    counts = Counter(seq)
    run = longest = 0
    last = ""
    for ch in seq:
        run = run + 1 if ch == last else 1
        last = ch
        longest = max(longest, run)
    checks = {
        "standard_residues": bool(seq) and set(seq) <= STANDARD,
        "length_in_range": min_length <= len(seq) <= max_length,
        "not_dominated": bool(seq) and max(counts.values()) / len(seq) <= max_fraction,
        "no_long_run": longest <= max_run,
    }
    return {"valid": all(checks.values()), "length": len(seq), "longest_run": longest, **checks}


def pairwise_identity(a: str, b: str) -> float:
    """Identical aligned pairs of a global alignment (BLOSUM62, gap open -10, extend -0.5) over
    the shorter sequence's length."""
    from Bio.Align import PairwiseAligner, substitution_matrices

    if not a or not b:
        return 0.0
    aligner = PairwiseAligner()
    aligner.mode = "global"
    aligner.substitution_matrix = substitution_matrices.load("BLOSUM62")
    aligner.open_gap_score = -10
    aligner.extend_gap_score = -0.5
    aln = aligner.align(a.upper(), b.upper())[0]
    same = 0
    for (s1, e1), (s2, e2) in zip(*aln.aligned):
        same += sum(1 for x, y in zip(a[s1:e1].upper(), b[s2:e2].upper()) if x == y)
    return same / min(len(a), len(b))


def diversity(sequences: Sequence[str], *, identity: Callable[[str, str], float] = pairwise_identity) -> dict[str, Any]:
    """1 - mean pairwise identity among the designs (and the mean identity itself)."""
    pairs = list(combinations(range(len(sequences)), 2))
    if not pairs:
        return {"diversity": float("nan"), "mean_identity": float("nan"), "pairs": 0}
    ids = [identity(sequences[i], sequences[j]) for i, j in pairs]
    mean = sum(ids) / len(ids)
    return {"diversity": 1 - mean, "mean_identity": mean, "max_identity": max(ids), "pairs": len(pairs)}


def novelty(closest_identity: Sequence[float | None], *, novel_below: float = 0.7) -> dict[str, Any]:
    """From each design's identity to its closest training protein (None: no hit): mean novelty
    (1 - identity) and the share of designs below ``novel_below`` identity."""
    vals = [0.0 if x is None else float(x) for x in closest_identity]
    if not vals:
        return {"novelty": float("nan"), "novel_fraction": float("nan"), "designs": 0}
    return {
        "novelty": sum(1 - v for v in vals) / len(vals),
        "novel_fraction": sum(v < novel_below for v in vals) / len(vals),
        "no_hit": sum(x is None for x in closest_identity),
        "designs": len(vals),
    }


def annotation_consistency(
    closest: Sequence[str | None], requested: Sequence[Collection[str]], terms_of: Callable[[str], Collection[str]]
) -> dict[str, Any]:
    """Share of designs whose closest known protein (accession, or None) carries every requested term.

    ``terms_of``: an accession's GO terms, propagated (e.g. :func:`~instructprotein.infer.retrieval.go_labels`).
    """
    if len(closest) != len(requested):
        raise ValueError("one request per design")
    ok = 0
    recall = 0.0
    for acc, want in zip(closest, requested):
        have = set(terms_of(acc)) if acc else set()
        want = set(want)
        ok += bool(want) and want <= have
        recall += len(want & have) / len(want) if want else 0.0
    n = len(closest)
    return {
        "consistent_fraction": ok / n if n else float("nan"),
        "mean_recall": recall / n if n else float("nan"),
        "designs": n,
    }


def describe_consistency(requested: Sequence[Collection[str]], described: Sequence[Collection[str]]) -> dict[str, Any]:
    """Does describing each design give back its request: share with all requested terms, mean recall."""
    if len(requested) != len(described):
        raise ValueError("one description per design")
    full = 0
    recall = 0.0
    for want, got in zip(requested, described):
        want, got = set(want), set(got)
        full += bool(want) and want <= got
        recall += len(want & got) / len(want) if want else 0.0
    n = len(requested)
    return {
        "consistent_fraction": full / n if n else float("nan"),
        "mean_recall": recall / n if n else float("nan"),
        "designs": n,
    }
