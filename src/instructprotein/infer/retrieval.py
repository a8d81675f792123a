"""Retrieval: homologs from the knowledge graph, their evidence in the prompt, homology transfer.

On small compute the model's best evidence is what is known about similar sequences
(a 4M-parameter model learns only the class prior alone, and reaches 40-80 % with the best
homolog's annotation in its prompt). This module gives:

- :func:`homolog_block`: the evidence block written before the question, in the same words
  the instruction generator used in training (:mod:`~instructprotein.prompt.evidence`:
  the homologs' locations for a location question, whether they carry the asked term for a
  yes/no question, their GO terms otherwise);
- :func:`homolog_contexts`: per query, the homologs and the block that still fits the model;
- :func:`transfer`: the homology-transfer baseline, labels of the best hit and an
  identity-weighted vote over the top k.

The search itself is :class:`~instructprotein.kg.homologs.ProteinIndex` (re-exported here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from instructprotein.formats.records import GO_ROOTS
from instructprotein.infer.inputs import Query
from instructprotein.instruct.facts import GraphFacts
from instructprotein.kg.homologs import Homolog, ProteinIndex
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.prompt.evidence import evidence_block

__all__ = ["Homolog", "ProteinIndex", "Transfer", "go_labels", "homolog_block", "homolog_contexts", "transfer"]

# -- the prompt block ---------------------------------------------------------------------------------


def graph_facts(index: ProteinIndex) -> GraphFacts:
    """The :class:`GraphFacts` of an index's graph, made once per index (it caches lookups)."""
    facts = getattr(index, "_facts", None)
    if facts is None:
        facts = GraphFacts(index.kg)
        index._facts = facts  # type: ignore[attr-defined]
    return facts


def homolog_block(
    index: ProteinIndex,
    homologs: Sequence[Homolog],
    kind: str = "general",
    term: str | None = None,
    *,
    term_name: str | None = None,
    aspect: str | None = None,
) -> str:
    """The evidence block about ``homologs`` for a question of ``kind`` (``general``,
    ``location``, or ``term``: a yes/no question about GO ``term``, named ``term_name``, of
    ``aspect``, both looked up in the graph when not given). No homolog: ``Homologs: none found.``
    """
    facts = graph_facts(index)
    pairs = [(h.accession, h.identity) for h in homologs]
    if kind == "term":
        if term is None:
            raise ValueError("a term question's evidence needs the term")
        if term_name is None:
            term_name = index.kg.entity(term).name
    return evidence_block(kind, facts.facts(pairs, kind, term, aspect), term_name)


def homolog_contexts(
    index: ProteinIndex,
    queries: Sequence[Query],
    *,
    top_k: int = 3,
    fits: Callable[[Query, str], bool] | None = None,
    kind: str = "general",
    term: str | None = None,
    **search: Any,
) -> dict[str, tuple[list[Homolog], str | None]]:
    """Per query: the homologs used and the block to put before the question.

    ``fits(query, block)`` says whether the prompts built with ``block`` still fit the
    model; while they do not, the last homolog is dropped (a long protein leaves room for
    fewer). With no homolog left that fits, the block is ``None``: no retrieval for that
    query rather than a refused request.
    """
    found = index.search(queries, top_k=top_k, **search)
    out: dict[str, tuple[list[Homolog], str | None]] = {}
    for q in queries:
        hits = found[q.id]
        chosen: tuple[list[Homolog], str | None] = ([], None)
        for k in range(len(hits), -1, -1):
            if k == 0 and hits:
                break  # "none found" would be untrue: leave retrieval out instead
            block = homolog_block(index, hits[:k], kind, term)
            if fits is None or fits(q, block):
                chosen = (hits[:k], block)
                break
        out[q.id] = chosen
    return out


# -- homology transfer --------------------------------------------------------------------------------


@dataclass
class Transfer:
    """Labels predicted from homologs: the best hit's, and an identity-weighted top-k vote."""

    best: Homolog | None
    best_labels: list[str]
    votes: dict[str, float] = field(default_factory=dict)  # label -> share of identity-weighted votes (0..1)
    k: int = 0

    @property
    def label(self) -> str | None:
        """The vote's winner (ties: the best hit's label first, then by name); None without hits."""
        if not self.votes:
            return None
        order = {lab: i for i, lab in enumerate(self.best_labels)}
        return max(self.votes, key=lambda lab: (self.votes[lab], -order.get(lab, len(order)), lab))

    def labels(self, threshold: float = 0.5) -> list[str]:
        """Every label whose vote share reaches ``threshold`` (multi-label use, e.g. GO terms)."""
        return sorted((lab for lab, v in self.votes.items() if v >= threshold), key=lambda lab: -self.votes[lab])

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.to_dict() if self.best else None,
            "best_labels": self.best_labels,
            "label": self.label,
            "votes": {k: round(v, 4) for k, v in sorted(self.votes.items(), key=lambda kv: -kv[1])},
            "k": self.k,
        }


def transfer(
    homologs: Sequence[Homolog],
    labels_of: Callable[[str], Iterable[str]] | Mapping[str, Iterable[str]],
    *,
    k: int = 5,
) -> Transfer:
    """Homology transfer: the best hit's labels, and each label's identity-weighted share among the top ``k``.

    ``homologs`` best first (as :meth:`ProteinIndex.search` returns them). ``labels_of``
    gives an accession's labels (a class, or GO ids): a mapping or a function. A homolog
    without labels still counts in the denominator (it votes for nothing).
    """
    get = labels_of.get if isinstance(labels_of, Mapping) else labels_of
    top = list(homologs)[:k]
    if not top:
        return Transfer(None, [], {}, k)

    def labels(acc: str) -> list[str]:
        value = get(acc)  # type: ignore[operator]
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return list(dict.fromkeys(value))

    best_labels = labels(top[0].accession)
    weight = sum(max(h.identity, 1e-6) for h in top)
    votes: dict[str, float] = {}
    for h in top:
        for lab in labels(h.accession):
            votes[lab] = votes.get(lab, 0.0) + max(h.identity, 1e-6) / weight
    return Transfer(top[0], best_labels, votes, k)


def go_labels(kg: KnowledgeGraph, aspect: str | None = None, *, propagated: bool = True) -> Callable[[str], list[str]]:
    """``labels_of`` for GO: a protein's terms (propagated by default, so a vote for zinc ion
    binding is also one for metal ion binding), optionally of one aspect."""
    cache: dict[str, list[str]] = {}

    def labels(acc: str) -> list[str]:
        if acc not in cache:
            with contextlib.suppress(KeyError):
                if propagated:
                    anns = kg.propagated_annotations(acc, aspect)
                else:
                    anns = kg.direct_annotations(acc, "go", aspect)
                cache[acc] = [a.entity.id for a in anns if a.entity.id not in GO_ROOTS]
        return cache.get(acc, [])

    return labels
