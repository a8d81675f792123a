"""The system's answers for one protein: its location and GO terms, model and homologs combined.

``describe`` asks the model free-text questions; these are the answers a user can rely on,
computed as the evaluation computes them (:mod:`instructprotein.infer.combine`, weights from
the model folder's ``combination.json``):

- **location**: the model's likelihood of each of DeepLoc's 10 classes with the homologs'
  locations in its prompt, the same without them, and the homologs' identity-weighted vote;
- **GO terms** (ProtEx's idea): every candidate term (the homologs' terms of the aspect, and
  the aspect's most frequent terms) is put to the model as a yes/no question with the
  homologs' evidence about that term, and its p(yes) is combined with the homologs' vote.
  Only the :data:`MAX_SCORED` best-voted candidates are asked; the rest keep an
  uninformative model score, so they rank by the homologs alone. A term is named when its
  confidence reaches the threshold that gave the best F-max on the validation split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from instructprotein.formats.records import GO_ROOTS
from instructprotein.infer.combine import Combination, Evidence, term_prior
from instructprotein.infer.retrieval import Homolog, graph_facts, homolog_block, transfer

if TYPE_CHECKING:
    from instructprotein.kg.homologs import ProteinIndex

ASPECTS = ("F", "P", "C")
MAX_SCORED = 20
"""Candidates per protein and aspect the model verifies (the best voted first)."""
FREQUENT = 5
"""The aspect's most frequent terms added to every protein's candidates."""
VOTE_K = 5
"""Labelled homologs a vote reads (the homology baselines' k)."""
SEARCH_K = 20
"""Hits searched per protein, from which the first VOTE_K labelled ones vote."""


def _term_counts(kg: Any, aspect: str | None) -> tuple[dict[str, int], int]:
    """Proteins carrying each GO term of ``aspect`` (with descendants), and all proteins: read
    once per graph and aspect (kept on the graph object, as the index keeps its facts), since
    every describe call and every verified pair asks for them."""
    cache = getattr(kg, "_term_counts", None)
    if cache is None:
        cache = {}
        kg._term_counts = cache
    if aspect not in cache:
        cache[aspect] = (kg.frequencies("go", aspect, propagated=True), max(1, kg.count("protein")))
    return cache[aspect]


def frequent_terms(kg: Any, aspect: str, n: int = FREQUENT) -> list[str]:
    """The aspect's ``n`` terms carried (with descendants) by the most proteins of the graph."""
    counts = _term_counts(kg, aspect)[0]
    freq = {t: c for t, c in counts.items() if t not in GO_ROOTS}
    return sorted(freq, key=lambda t: (-freq[t], t))[:n]


def term_frequency(kg: Any, term: str, aspect: str | None) -> float:
    """The share of the graph's proteins that carry ``term`` (with its descendants)."""
    counts, n = _term_counts(kg, aspect)
    return counts.get(term, 0) / n


def aspect_lookup(kg: Any) -> Callable[[str], str | None]:
    cache: dict[str, str | None] = {}

    def get(term: str) -> str | None:
        if term not in cache:
            try:
                cache[term] = kg.entity(term).aspect
            except KeyError:
                cache[term] = None
        return cache[term]

    return get


def candidate_terms(
    hits: Sequence[Homolog],
    carried: Callable[[str], Iterable[str]],
    aspect_of: Callable[[str], str | None],
    aspect: str,
    frequent: Sequence[str],
    k: int = VOTE_K,
) -> list[tuple[str, float]]:
    """(term, identity-weighted vote share) of the aspect's terms the top ``k`` annotated hits
    carry, best voted first; then the frequent terms no hit carries (share 0)."""
    labelled = {
        h.accession: [t for t in carried(h.accession) if t not in GO_ROOTS and aspect_of(t) == aspect] for h in hits
    }
    annotated = [h for h in hits if labelled[h.accession]][:k]
    votes = transfer(annotated, labelled, k=k).votes if annotated else {}
    ranked = sorted(votes, key=lambda t: (-votes[t], t))
    return [(t, votes[t]) for t in ranked] + [(t, 0.0) for t in frequent if t not in votes]


def term_evidence(
    hits: Sequence[Homolog],
    term: str,
    carried: Callable[[str], Iterable[str]],
    annotated_in_aspect: Callable[[str], bool],
    k: int = VOTE_K,
    frequency: float | None = None,
) -> Evidence:
    """What the first ``k`` hits annotated in the term's aspect say: yes (they carry it) or no;
    ``frequency``: the term's share of the graph's proteins, the question's prior."""
    labelled = []
    for h in hits:
        if not annotated_in_aspect(h.accession):
            continue
        labelled.append(("yes" if term in carried(h.accession) else "no", float(h.identity)))
        if len(labelled) >= k:
            break
    return Evidence(labelled, None if frequency is None else term_prior(frequency))


@dataclass
class VerifiedTerm:
    id: str
    name: str
    aspect: str
    confidence: float
    vote: float
    model_yes: float | None  # the model's p(yes) with the evidence; None: not asked (ranked by the homologs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "aspect": self.aspect,
            "confidence": round(self.confidence, 4),
            "homolog_vote": round(self.vote, 4),
            "model_yes": None if self.model_yes is None else round(self.model_yes, 4),
        }


def location_answer(
    combination: Combination,
    model_probs: Sequence[float],
    alone_probs: Sequence[float] | None,
    hits: Sequence[Homolog],
    index: ProteinIndex,
    classes: Sequence[str],
    sequence: str | None = None,
) -> list[tuple[str, float]] | None:
    """The system's location distribution (best first), or None without location weights
    (``sequence``: the protein's, for weights that also read it)."""
    kw = combination.get("location")
    if kw is None or list(kw.classes) != list(classes):
        return None
    facts = graph_facts(index)
    labels = facts.mapper.labels([h.accession for h in hits])
    labelled = [(labels[h.accession], float(h.identity)) for h in hits if labels.get(h.accession)][: kw.k]
    read = kw.read([sequence])[0] if sequence is not None else None
    p = kw.probabilities(
        np.asarray(model_probs),
        None if alone_probs is None else np.asarray(alone_probs),
        Evidence(labelled, read=read),
        classes,
    )
    return sorted(zip(classes, (float(x) for x in p)), key=lambda cp: -cp[1])


def go_candidates(
    index: ProteinIndex,
    hits: Sequence[Homolog],
    aspects: Sequence[str] = ASPECTS,
) -> dict[str, list[tuple[str, float]]]:
    facts = graph_facts(index)
    get = aspect_lookup(index.kg)
    return {a: candidate_terms(hits, facts.carried, get, a, frequent_terms(index.kg, a)) for a in aspects}


def verification_questions(
    index: ProteinIndex, hits: Sequence[Homolog], cands: dict[str, list[tuple[str, float]]], top_k: int = 3
) -> list[tuple[str, str, str, str]]:
    """(aspect, term, term name, evidence block) of every candidate the model is asked about."""
    shown = list(hits)[:top_k]
    out = []
    for a, terms in cands.items():
        for term, _ in terms[:MAX_SCORED]:
            name = _name(index.kg, term)
            out.append((a, term, name, homolog_block(index, shown, "term", term, term_name=name, aspect=a)))
    return out


def _name(kg: Any, term: str) -> str:
    try:
        return kg.entity(term).name
    except KeyError:
        return term


def ranked_terms(
    combination: Combination,
    index: ProteinIndex,
    hits: Sequence[Homolog],
    cands: dict[str, list[tuple[str, float]]],
    model_yes: dict[tuple[str, str], float],
) -> dict[str, list[VerifiedTerm]]:
    """Per aspect, the candidates the system names (confidence at or above the validation
    threshold), most confident first; aspects without weights are left out."""
    facts = graph_facts(index)
    out: dict[str, list[VerifiedTerm]] = {}
    for a, terms in cands.items():
        kw = combination.get(f"describe_{a}")
        if kw is None:
            continue
        threshold = float(kw.fit.get("threshold") or 0.5)

        def annotated(acc: str, a: str = a) -> bool:
            return any(x == a for _, _, x in facts.direct(acc))

        got = []
        for term, vote in terms:
            p = model_yes.get((a, term))
            model = np.array([1 - p, p]) if p is not None else np.array([0.5, 0.5])
            ev = term_evidence(hits, term, facts.carried, annotated, kw.k, term_frequency(index.kg, term, a))
            conf = float(kw.probabilities(model, None, ev)[1])
            if conf >= threshold:
                got.append(VerifiedTerm(term, _name(index.kg, term), a, conf, vote, p))
        out[a] = sorted(got, key=lambda v: -v.confidence)
    return out
