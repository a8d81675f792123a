"""A choice task's results: accuracy and its intervals under both scoring rules, the model alone and
the system beside them, the baselines on the same items, and its predictions file.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`), as describe, design and rank keep
theirs in :mod:`.describe`, :mod:`.design` and :mod:`.rank`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructprotein.evaluate import stats
from instructprotein.evaluate.baselines import CompositionModel, TermFrequency, majority_class
from instructprotein.evaluate.data import TaskData
from instructprotein.evaluate.homology_side import _evidence, _homology_baseline, _HomologySide
from instructprotein.evaluate.results import entry_head, write_predictions
from instructprotein.evaluate.tasks import TaskSpec

RULES = ("first_token", "sum")
RULE_NAMES = {"first_token": "first token (paper)", "sum": "full option"}
_COMPOSITION: dict[bytes, CompositionModel] = {}


# -- the metrics of one prediction set ---------------------------------------------------------------------


def summarise(
    spec: TaskSpec, true: Sequence[str], pred: Sequence[str], probs: np.ndarray | None, *, seed: int = 0
) -> dict[str, Any]:
    """Accuracy [Wilson 95 %], per class, confusion, prediction counts; with ``probs`` (items x classes)
    also calibration and, where the task asks, AUPR [bootstrap 95 %]."""
    classes = spec.classes
    t = [classes.index(x) for x in true]
    p = [classes.index(x) for x in pred]
    correct = [a == b for a, b in zip(t, p)]
    out = stats.accuracy_summary(correct)
    matrix = stats.confusion(t, p, len(classes))
    out["per_class"] = stats.per_class(matrix, classes)
    out["confusion"] = matrix.tolist()
    out["predicted"] = {c: int(v) for c, v in zip(classes, matrix.sum(axis=0))}
    if probs is not None:
        conf = probs[np.arange(len(p)), p]
        out["calibration"] = stats.calibration(conf, correct)
        if "aupr" in spec.metrics and spec.positive is not None:
            pos = classes.index(spec.positive)
            y = [x == pos for x in t]
            out["aupr"] = stats.average_precision(probs[:, pos], y)
            out["aupr_ci95"] = list(stats.bootstrap_average_precision(probs[:, pos], y, seed=seed))
    return out


def _finish(
    spec: TaskSpec,
    td: TaskData,
    prep: dict[str, Any],
    side: _HomologySide | None,
    homology: bool,
    seed: int,
    pred_dir: Path,
    *,
    alone: dict[str, Any] | None = None,
    combination: Any = None,
) -> dict[str, Any]:
    from instructprotein.evaluate.system import class_probabilities, system_probabilities

    items = td.items
    cands = prep["candidates"]
    scores = prep["scores"]
    seqs_read = prep["read"]
    true = [i.label for i in items]
    model_res: dict[str, Any] = {}
    per_item: dict[str, Any] = {}
    for rule in RULES:
        probs = class_probabilities(spec, cands, scores, rule)
        best = [s.best(rule) for s in scores]
        pred = [spec.candidates[cands[b]] for b in best]
        ties = sum(1 for s, b in zip(scores, best) if sum(1 for x in s.scores(rule) if x == s.scores(rule)[b]) > 1)
        r = summarise(spec, true, pred, probs, seed=seed)
        r["ties"] = ties
        model_res[rule] = r
        per_item[rule] = (pred, probs)
    if model_res["first_token"]["ties"]:
        model_res["first_token"]["tie_note"] = (
            "candidates that share their first token tie under the first-token rule; the first in the task's "
            "candidate order wins"
        )

    # what the sequence alone gives, and the system's answer (model + homologs, fit on validation)
    extra: dict[str, Any] = {}
    alone_probs = class_probabilities(spec, cands, alone["scores"], "sum") if alone is not None else None
    if alone_probs is not None:
        pred = [spec.classes[j] for j in alone_probs.argmax(axis=1)]
        extra["model_alone"] = summarise(spec, true, pred, alone_probs, seed=seed)
        per_item["model_alone"] = (pred, alone_probs)
    weights = combination.get(spec.combine.kind) if (combination is not None and spec.combine) else None
    if weights is not None and side is not None and spec.homology is not None and weights.classes == spec.classes:
        sys_probs = system_probabilities(
            weights, spec, per_item["sum"][1], alone_probs, _evidence(spec, items, side), items
        )
        pred = [spec.classes[j] for j in sys_probs.argmax(axis=1)]
        r = summarise(spec, true, pred, sys_probs, seed=seed)
        r.update(
            {
                "kind": weights.kind,
                "recipe": weights.recipe,
                "weights": weights.weights,
                "alpha": weights.alpha,
                "sharpness": weights.sharpness,
                "fit": weights.fit,
            }
        )
        extra["system"] = r
        per_item["system"] = (pred, sys_probs)

    # baselines
    base: dict[str, Any] = {}
    train_labels = [i.label for i in td.train] if td.train else None
    maj_from = "train" if train_labels else "test"
    fallback = majority_class(train_labels or true, spec.classes)
    if spec.majority:
        r = summarise(spec, true, [fallback] * len(items), None)
        r.update({"class": fallback, "source": maj_from})
        base["majority"] = r
    baseline_preds: dict[str, list[str]] = {}
    if spec.composition and td.train:
        key = hashlib.blake2b(
            repr(([i.sequence for i in td.train], [i.label for i in td.train], spec.classes, seed)).encode(),
            digest_size=16,
        ).digest()
        if key not in _COMPOSITION:
            _COMPOSITION.clear()  # one at a time: tasks sharing a train split come in a row
            _COMPOSITION[key] = CompositionModel(
                [i.sequence for i in td.train], [i.label for i in td.train], spec.classes, seed=seed
            )
        comp = _COMPOSITION[key]
        pred, probs = comp.predict([i.sequence for i in items])
        r = summarise(spec, true, pred, probs, seed=seed)
        r.pop("calibration", None)
        r.update(comp.info)
        base["composition"] = r
        baseline_preds["composition"] = pred
    if spec.term_frequency and side is not None and spec.positive is not None:
        tf = TermFrequency(side.kg, side.exclude)
        freq = np.array([tf(str(i.term)) for i in items], dtype=float)
        y = np.array([x == spec.positive for x in true])
        acc, thr = stats.best_threshold_accuracy(freq, y)
        lo, hi = stats.wilson(round(acc * len(items)), len(items))
        base["term_frequency"] = {
            "accuracy": acc,
            "ci95": [lo, hi],
            "n": len(items),
            "threshold": thr,
            "threshold_note": "threshold chosen on the test items themselves (an upper bound)",
            "aupr": stats.average_precision(freq, y),
            "aupr_ci95": list(stats.bootstrap_average_precision(freq, y, seed=seed)),
            "excluded_proteins": len(side.exclude),
        }
    if homology and spec.homology is not None and side is not None:
        h = _homology_baseline(spec, items, side, fallback)
        covered = np.array(h["covered"], dtype=bool)
        for kind in ("best", "vote"):
            r = summarise(spec, true, h[kind], None)
            r["coverage"] = float(covered.mean()) if len(covered) else float("nan")
            r["covered"] = int(covered.sum())
            r["fallback"] = f"majority class ({fallback}, from {maj_from})"
            if covered.any():
                sub = [a == b for a, b, c in zip(true, h[kind], covered) if c]
                r["accuracy_covered"] = stats.accuracy_summary(sub)
            if kind == "vote":
                r["k"] = spec.homology.k
            base[f"homology_{kind}"] = r
            baseline_preds[f"homology_{kind}"] = h[kind]
        ids = [x for x in h["identity"] if x is not None]
        base["homology_best"]["median_identity"] = float(np.median(ids)) if ids else None

    # predictions file
    rows = []
    for n, item in enumerate(items):
        row: dict[str, Any] = {"id": item.id, "label": item.label}
        if item.term:
            row["term"] = item.term
        if item.term_name:
            row["term_name"] = item.term_name
        row["residues_read"] = len(seqs_read[n])
        if prep.get("contexts") is not None:
            row["evidence"] = prep["contexts"][n]
        for rule in (*RULES, "model_alone", "system"):
            if rule not in per_item:
                continue
            pred, probs = per_item[rule]
            row[rule] = {
                "prediction": pred[n],
                "probabilities": {c: round(float(p), 5) for c, p in zip(spec.classes, probs[n])},
            }
        for k, v in baseline_preds.items():
            row[k] = v[n]
        rows.append(row)
    write_predictions(pred_dir, spec, rows)

    return {
        **entry_head(spec, td, prep),
        **extra,
        "model": model_res,
        "baselines": base,
        "paper": spec.paper,
        "prompts_scored": prep["prompts_scored"],
        "prompts_reused": prep["prompts_reused"],
        "seconds": dict(prep["seconds"]),
    }
