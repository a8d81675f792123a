"""GO terms for a described protein, verified (ProtEx's idea) and ranked with a confidence each.

Generating GO terms as text makes a tiny model write digits that look like GO ids. Instead,
every candidate term of a protein (its homologs' terms of the aspect, and the aspect's most
frequent terms) is asked as a yes/no question with the homologs' evidence about that term in
the prompt, exactly as the held-out GO yes/no tasks ask it, and the model's p(yes) is combined
with the homologs' identity-weighted vote (:mod:`instructprotein.infer.combine`, kind
``describe_F`` / ``_P`` / ``_C``, fit on the validation split's described proteins). Only the
``MAX_SCORED`` best-voted candidates of a protein are put to the model; the rest keep an
uninformative model score (0.5), so the combination ranks them by the homologs alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence  # noqa: F401
from typing import Any

import numpy as np

from instructprotein.evaluate import generation as gen
from instructprotein.evaluate.data import Item
from instructprotein.infer.verify import (  # noqa: F401 (ASPECTS, FREQUENT, frequent_terms: for the runner)
    ASPECTS,
    FREQUENT,
    MAX_SCORED,
    aspect_lookup,
    candidate_terms,
    frequent_terms,
)

ASPECT_TASK = {"F": "heldout_go_mf", "P": "heldout_go_bp", "C": "heldout_go_cc"}
SEP = "|"


def candidates(
    side: Any, items: Sequence[Item], aspect: str, k: int, frequent: Sequence[str]
) -> list[list[tuple[str, float]]]:
    """Per protein: (term, homology vote share), best voted first, then the frequent terms
    (the candidates ``describe`` verifies, :func:`~instructprotein.infer.verify.candidate_terms`)."""
    get = aspect_lookup(side.kg)
    return [candidate_terms(side.hits.get(i.sequence, []), side.propagated, get, aspect, frequent, k) for i in items]


def pair_items(
    items: Sequence[Item],
    cands: Sequence[Sequence[tuple[str, float]]],
    names: Callable[[str], str],
    truth: Sequence[set[str]],
) -> list[Item]:
    """One yes/no question per (protein, candidate term), labelled by the protein's true terms."""
    out = []
    for item, terms, true in zip(items, cands, truth):
        for term, _ in terms:
            out.append(
                Item(
                    f"{item.id}{SEP}{term}",
                    item.sequence,
                    "yes" if term in true else "no",
                    term,
                    names(term),
                    accession=item.accession,
                )
            )
    return out


def scored_mask(cands: Sequence[Sequence[tuple[str, float]]]) -> list[bool]:
    """Which pairs (in :func:`pair_items` order) the model verifies."""
    return [j < MAX_SCORED for terms in cands for j in range(len(terms))]


def model_yes(scored: Sequence[bool], probs: np.ndarray) -> np.ndarray:
    """Pairs x [no, yes]: the model's distribution where it verified the pair, else uninformative."""
    out = np.full((len(scored), 2), 0.5)
    rows = [i for i, s in enumerate(scored) if s]
    out[rows] = probs
    return out


def by_protein(pairs: Sequence[Item], scores: Sequence[float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for item, s in zip(pairs, scores):
        pid, term = item.id.rsplit(SEP, 1)
        out.setdefault(pid, {})[term] = float(s)
    return out


def fmax_threshold(
    pairs: Sequence[Item], scores: Sequence[float], items: Sequence[Item], truth: Sequence[set[str]]
) -> dict[str, Any]:
    """CAFA F-max of the pair scores against the proteins' true terms (every true term counts,
    candidate or not), with the threshold that reaches it."""
    return gen.go_fmax(by_protein(pairs, scores), {i.id: t for i, t in zip(items, truth)})


def f1_at(
    pairs: Sequence[Item], scores: Sequence[float], items: Sequence[Item], truth: Sequence[set[str]], threshold: float
) -> dict[str, Any]:
    """Precision, recall and F1 at one threshold (the one validation chose)."""
    r = gen.go_fmax(by_protein(pairs, scores), {i.id: t for i, t in zip(items, truth)}, thresholds=[threshold])
    return {"f1": r["f_max"], "precision": r["precision"], "recall": r["recall"]}


def naive_fmax(scores: dict[str, float], items: Sequence[Item], truth: Sequence[set[str]]) -> dict[str, Any]:
    """CAFA F-max of the naive predictor: the same term scores for every protein."""
    return gen.go_fmax({i.id: scores for i in items}, {i.id: t for i, t in zip(items, truth)})


def pooled_aupr(pairs: Sequence[Item], scores: Sequence[float], truth: Sequence[set[str]]) -> float:
    """Average precision over every (protein, term) pair; true terms no candidate holds count
    as never retrieved (recall cannot reach 1)."""
    from instructprotein.evaluate import stats

    y = np.array([p.label == "yes" for p in pairs])
    if not y.any():
        return float("nan")
    total = sum(len(t) for t in truth)
    ap = stats.average_precision(np.asarray(scores, dtype=float), y)
    return float(ap * y.sum() / max(total, 1))
