"""The homology side of an evaluation: one training graph searched once for every test
sequence, decontaminated; its hits feed the homology-transfer baseline and the evidence
blocks a model with retrieval is shown.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`), which builds one
:class:`_HomologySide` per training graph.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError
from instructprotein.evaluate.baselines import homology_predictions
from instructprotein.evaluate.data import Item
from instructprotein.evaluate.tasks import TaskSpec


class _HomologySide:
    """One training graph searched for homology transfer, with its exclusions."""

    def __init__(
        self, kg: Any, exclude: frozenset[str], max_identity: float | None, settings: dict[str, Any], index: Any = None
    ):
        from instructprotein.infer.retrieval import ProteinIndex

        self.kg = kg
        self.index = index if index is not None else ProteinIndex(kg)
        self.exclude = exclude
        self.max_identity = max_identity
        self.settings = settings
        self.hits: dict[str, list[Any]] = {}
        self._loc = None
        self._carriers: dict[str, frozenset[str]] = {}
        self._aspect_of: dict[str, str | None] = {}
        self._has_aspect: dict[tuple[str, str], bool] = {}
        self.seconds = 0.0

    def search(self, sequences: Sequence[str]) -> None:
        todo = sorted({s for s in sequences if s not in self.hits})
        if not todo:
            return
        start = time.perf_counter()
        found = self.index.search(
            {str(i): s for i, s in enumerate(todo)},
            top_k=self.settings["top_k"],
            exclude=self.exclude,
            max_identity=self.max_identity,
            sensitivity=self.settings["sensitivity"],
            max_seqs=self.settings["max_seqs"],
        )
        for i, s in enumerate(todo):
            self.hits[s] = found[str(i)]
        self.seconds += time.perf_counter() - start

    # labels of a hit
    def location(self, accessions: Sequence[str]) -> dict[str, str | None]:
        from instructprotein.instruct.compartments import LocationMapper

        if self._loc is None:
            self._loc = (LocationMapper(self.kg), {})
        mapper, cache = self._loc
        todo = [a for a in dict.fromkeys(accessions) if a not in cache]
        if todo:
            cache.update(mapper.labels(todo))
        return {a: cache[a] for a in accessions}

    def carriers(self, term: str) -> frozenset[str]:
        if term not in self._carriers:
            try:
                self._carriers[term] = frozenset(self.kg.proteins_with(term))
            except KeyError:
                self._carriers[term] = frozenset()
        return self._carriers[term]

    def aspect(self, term: str) -> str | None:
        if term not in self._aspect_of:
            try:
                self._aspect_of[term] = self.kg.entity(term).aspect
            except KeyError:  # a term newer than the graph: its aspect from GO.sqlite, where there is one
                from instructprotein.evaluate.data import go_sqlite_aspect

                self._aspect_of[term] = go_sqlite_aspect(term)
        return self._aspect_of[term]

    def has_aspect(self, accessions: Sequence[str], aspect: str) -> dict[str, bool]:
        from instructprotein.evaluate.heldout import _direct_terms

        todo = [a for a in dict.fromkeys(accessions) if (a, aspect) not in self._has_aspect]
        if todo:
            for a, terms in _direct_terms(self.kg, todo, aspect).items():
                self._has_aspect[(a, aspect)] = bool(terms)
        return {a: self._has_aspect[(a, aspect)] for a in accessions}

    def propagated(self, accession: str) -> frozenset[str]:
        """GO ids the protein carries by propagation (the facts the evidence blocks are written from)."""
        from instructprotein.infer.retrieval import graph_facts

        return graph_facts(self.index).carried(accession)


def _reuse_decontamination_hits(
    side: _HomologySide,
    folder: str | Path,
    parameters: dict[str, Any],
    sequences: Sequence[str],
    settings: dict[str, Any],
) -> int:
    """Hand the decontamination search's hits (the same benchmark sequences against the same
    graph, every identity kept) to the homology index when its settings are the evaluation's,
    so those sequences are not searched again. Returns how many sequences were reused."""
    from instructprotein.instruct.decontaminate import HITS_TSV, load_hits
    from instructprotein.instruct.splits import sequence_digest

    same = (
        parameters.get("sensitivity") == settings["sensitivity"]
        and parameters.get("max_seqs") == settings["max_seqs"]
        and parameters.get("evalue", 1e-3) == settings["evalue"]
    )
    if not same or not (Path(folder) / HITS_TSV).is_file():
        return 0
    found = load_hits(folder)
    mine = {}
    for seq in set(sequences):
        got = found.get(sequence_digest(seq).hex())
        if got is not None:
            mine[seq] = got
    return side.index.preload(
        mine, sensitivity=settings["sensitivity"], evalue=settings["evalue"], max_seqs=settings["max_seqs"]
    )


def _hit_labels(spec: TaskSpec, items: Sequence[Item], side: _HomologySide) -> tuple[list[list[Any]], Any]:
    """Each item's decontaminated hits, and ``label_of(item index, accession)``: the class a hit
    gives the item under the task's homology rule, or None when the hit has no annotation of the kind."""
    rule = spec.homology
    assert rule is not None
    hits = [side.hits.get(i.sequence, []) for i in items]
    accs = sorted({h.accession for hs in hits for h in hs})
    if rule.rule == "location":
        loc = side.location(accs)

        def label_of(_i: int, acc: str) -> str | None:
            c = loc.get(acc)
            if c is None:
                return None
            return rule.class_of[c] if rule.class_of else c

    elif rule.rule == "carries_term":
        term = str(rule.term)
        aspect = side.aspect(term) or "F"
        carriers = side.carriers(term)
        annotated = side.has_aspect(accs, aspect)

        def label_of(_i: int, acc: str) -> str | None:
            if not annotated.get(acc):
                return None
            return rule.yes if acc in carriers else rule.no

    else:  # item_term
        aspects = {i.term: side.aspect(str(i.term)) for i in items if i.term}
        annotated_by = {a: side.has_aspect(accs, a) for a in set(aspects.values()) if a}

        def label_of(i: int, acc: str) -> str | None:
            term = items[i].term
            aspect = aspects.get(term)
            if not term or not aspect or not annotated_by[aspect].get(acc):
                return None
            return rule.yes if term in side.propagated(acc) else rule.no

    return hits, label_of


def _homology_baseline(spec: TaskSpec, items: Sequence[Item], side: _HomologySide, fallback: str) -> dict[str, Any]:
    assert spec.homology is not None
    hits, label_of = _hit_labels(spec, items, side)
    return homology_predictions(hits, label_of, k=spec.homology.k, fallback=fallback)


def _evidence(spec: TaskSpec, items: Sequence[Item], side: _HomologySide) -> list[Any]:
    """Per item, what its labelled homologs say (:class:`~instructprotein.infer.combine.Evidence`),
    with the asked GO term's frequency as the prior of a yes/no question."""
    from instructprotein.infer.combine import Evidence, term_prior
    from instructprotein.infer.verify import term_frequency

    assert spec.homology is not None
    hits, label_of = _hit_labels(spec, items, side)
    rule = spec.homology
    priors: list[dict[str, float] | None] = [None] * len(items)
    if rule.rule in ("carries_term", "item_term") and rule.yes is not None and rule.no is not None:
        for i, item in enumerate(items):
            term = str(rule.term) if rule.rule == "carries_term" else item.term
            if term:
                priors[i] = term_prior(term_frequency(side.kg, term, side.aspect(term)), rule.yes, rule.no)
    out = []
    for i, found in enumerate(hits):
        labelled = []
        for h in found:
            lab = label_of(i, h.accession)
            if lab is not None:
                labelled.append((lab, float(h.identity)))
            if len(labelled) >= spec.homology.k:
                break
        out.append(Evidence(labelled, priors[i]))
    return out


RETRIEVAL_TOP_K = 3


def evidence_blocks(spec: TaskSpec, items: Sequence[Item], side: _HomologySide, top_k: int = 3) -> list[str]:
    """Each item's homolog block, of the kind the task declares (``evidence``), from its top
    decontaminated homologs: the words the instruction generator trained the model on."""
    from instructprotein.infer.retrieval import homolog_block

    out = []
    for i in items:
        hits = side.hits.get(i.sequence, [])[:top_k]
        if spec.evidence == "term":
            term = spec.evidence_term or i.term
            if not term:
                raise InputError(f"task {spec.name}, item {i.id}: evidence about a term, but the item has none")
            name = i.term_name if not spec.evidence_term else None
            if name is None:
                try:
                    name = side.kg.entity(term).name
                except KeyError:
                    from instructprotein.evaluate.data import go_sqlite_names

                    name = go_sqlite_names().get(term, term)
            out.append(homolog_block(side.index, hits, "term", term, term_name=name, aspect=side.aspect(term)))
        else:
            out.append(homolog_block(side.index, hits, spec.evidence))
    return out
