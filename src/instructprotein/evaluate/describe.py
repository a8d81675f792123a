"""Metrics and baselines of a describe task (the model writes a function text per protein).

Text: corpus BLEU-4 (smoothed) and mean ROUGE-L F1 of the greedy answer against the
reference text (:mod:`.generation`). Entities: the GO terms the answer names, mapped to ids
and closed under the ontology by :class:`~instructprotein.infer.terms.TermIndex`, against the
protein's true terms (propagated), both restricted to the task's aspect (``go_aspect``);
per-protein precision / recall / F1 averaged, and CAFA's F-max (one threshold: the model's
terms carry no score).

Baselines, CAFA's usual two:

- **homology** (``rule: go_terms``): the best decontaminated hit's propagated terms
  (precision / recall / F1), and the identity-weighted share of the top-k hits carrying each
  term as a score (F-max over thresholds);
- **naive** (``term_frequency``): every protein gets the same scores, each term's share of
  the training graph's proteins (the 300 most frequent terms of the aspect), F-max.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructprotein.evaluate import generation as gen
from instructprotein.evaluate.baselines import TermFrequency
from instructprotein.evaluate.data import TaskData
from instructprotein.evaluate.results import entry_head, write_predictions
from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.formats.records import GO_ROOTS
from instructprotein.infer.retrieval import transfer


def _aspect_filter(kg: Any, aspect: str | None):
    cache: dict[str, str | None] = {}

    def keep(term: str) -> bool:
        if aspect is None:
            return term not in GO_ROOTS
        if term not in cache:
            try:
                cache[term] = kg.entity(term).aspect
            except KeyError:
                cache[term] = None
        return cache[term] == aspect and term not in GO_ROOTS

    return keep


def _set_scores(pred: Sequence[set[str]], truth: Sequence[set[str]]) -> dict[str, Any]:
    rows = [gen.set_precision_recall(p, t) for p, t in zip(pred, truth) if t]
    n = len(rows)
    if not n:
        return {"proteins": 0}
    return {
        "precision": sum(r["precision"] for r in rows) / n,
        "recall": sum(r["recall"] for r in rows) / n,
        "f1": sum(r["f1"] for r in rows) / n,
        "proteins": n,
        "with_any_term": sum(1 for p, t in zip(pred, truth) if t and p),
    }


def finish_describe(
    spec: TaskSpec,
    td: TaskData,
    prep: dict[str, Any],
    side: Any,
    kg: Any,
    homology: bool,
    pred_dir: Path,
    *,
    verified: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results entry of a describe task (same layout as a choice task's, ``model`` -> ``generated``)."""
    items = td.items
    answers: list[str] = prep["answers"]
    refs = [i.label for i in items]
    model: dict[str, Any] = {}
    if "bleu" in spec.metrics:
        model["bleu"] = gen.bleu(answers, refs)
    if "rouge_l" in spec.metrics:
        model["rouge_l"] = gen.rouge_l(answers, refs)
    base: dict[str, Any] = {}
    found_terms: list[list[str]] = [[] for _ in items]
    if "go" in spec.metrics and kg is not None:
        from instructprotein.infer.terms import TermIndex

        keep = _aspect_filter(kg, spec.go_aspect)
        index = TermIndex(kg)
        truth = [{t for t in (i.terms or ()) if keep(t)} for i in items]
        found_terms = [[t for t in index.find(a).ids if keep(t)] for a in answers]
        pred = [set(f) for f in found_terms]
        model["go"] = _set_scores(pred, truth)
        model["go"]["f_max"] = gen.go_fmax(
            {str(n): p for n, p in enumerate(pred)}, {str(n): t for n, t in enumerate(truth)}, thresholds=[1.0]
        )["f_max"]
        model["go"]["aspect"] = spec.go_aspect
        if homology and spec.homology is not None and side is not None:
            best_sets, vote_scores, covered = [], {}, 0
            for n, item in enumerate(items):
                hits = side.hits.get(item.sequence, [])[: spec.homology.k]
                labelled = {h.accession: [t for t in side.propagated(h.accession) if keep(t)] for h in hits}
                hits = [h for h in hits if labelled[h.accession]]
                if hits:
                    covered += 1
                    t = transfer(hits, labelled, k=spec.homology.k)
                    best_sets.append(set(t.best_labels))
                    vote_scores[str(n)] = t.votes
                else:
                    best_sets.append(set())
            truth_map = {str(n): t for n, t in enumerate(truth)}
            r = _set_scores(best_sets, truth)
            r["coverage"] = covered / len(items) if items else float("nan")
            base["homology_best"] = r
            base["homology_vote"] = {**gen.go_fmax(vote_scores, truth_map), "coverage": r["coverage"]}
        if spec.term_frequency and side is not None:
            tf = TermFrequency(side.kg, side.exclude)
            n_train = max(1, side.kg.count("protein") - len(side.exclude))
            freq = {
                t: c for t, c in side.kg.frequencies("go", spec.go_aspect, propagated=True).items() if t not in GO_ROOTS
            }
            top = sorted(freq, key=lambda t: -freq[t])[:300]
            scores = {t: min(1.0, tf(t) / n_train) for t in top}
            base["naive"] = gen.go_fmax(
                {str(n): scores for n in range(len(items))}, {str(n): t for n, t in enumerate(truth)}
            )
    rows = []
    for n, (item, answer) in enumerate(zip(items, answers)):
        row = {
            "id": item.id,
            "reference": item.label,
            "answer": answer,
            "rouge_l": round(gen.rouge_l_pair(answer, item.label)["f1"], 4),
        }
        if found_terms[n]:
            row["go_terms"] = found_terms[n]
        if prep.get("contexts"):
            row["evidence"] = prep["contexts"][n]
        if verified is not None:
            row["go_verified"] = verified["terms"][n]
        rows.append(row)
    write_predictions(pred_dir, spec, rows)
    return {
        **entry_head(spec, td, prep),
        "generated": model,
        **({"system_go": verified["aspects"]} if verified else {}),
        "baselines": base,
        "paper": spec.paper,
        "prompts_scored": prep.get("prompts_scored", len(items)),
        "prompts_reused": 0,
        "seconds": dict(prep["seconds"]),
        "examples": [
            {"id": items[n].id, "reference": refs[n], "answer": answers[n]} for n in range(min(5, len(items)))
        ],
    }
