"""The answer users get, evaluated: the model and its homologs combined, fit on validation items.

The runner scores three things for every choice task that declares ``combine:``: the model
with its homologs' block in the prompt (``model``), the model asked without it
(``model_alone``), and the homologs themselves (the homology baselines). This module turns
them into the system's answer (:mod:`instructprotein.infer.combine`), whose weights are fit
on the task's *validation* twin (the same prompt, candidates and homology rule, items from the
instruction set's ``valid`` split) and stored in the model folder, so that ``describe``,
``classify`` and the HTTP API answer exactly as the evaluation measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.infer.combine import Combination, Evidence, KindWeights, fit

VALID_PREFIX = "valid_"


def class_probabilities(spec: TaskSpec, candidates: Sequence[str], scores: Sequence[Any], rule: str) -> np.ndarray:
    """Items x classes: each candidate's probability (over the candidates) added to its class."""
    class_idx = [spec.classes.index(spec.candidates[c]) for c in candidates]
    cand = np.array([s.probabilities(rule) for s in scores], dtype=float).reshape(len(scores), len(candidates))
    out = np.zeros((len(scores), len(spec.classes)))
    for j, ci in enumerate(class_idx):
        out[:, ci] += cand[:, j]
    return out


def validation_spec(spec: TaskSpec) -> TaskSpec:
    """The task's validation twin: its prompt, candidates and homology rule on held-out
    ``valid`` items; held-out labels (location words, yes / no) mapped to the task's classes
    through its candidates (" plasma membrane" -> membrane-bound)."""
    assert spec.combine is not None
    labels = {c.strip(): cls for c, cls in spec.candidates.items()}
    if spec.format == "go_pairs":
        labels = dict(spec.labels or {})
    return dataclasses.replace(
        spec, name=VALID_PREFIX + spec.combine.kind, test=spec.combine.validation, train=None, labels=labels,
        majority=False, composition=False, term_frequency=False, paper={},
    )  # fmt: skip


def stored_kinds(spec: TaskSpec) -> set[str]:
    """The kinds a task's answers need: a describe task one per GO aspect (``describe_F`` ...)."""
    assert spec.combine is not None
    if spec.kind == "describe":
        return {f"{spec.combine.kind}_{a}" for a in ("F", "P", "C")}
    return {spec.combine.kind}


def fingerprint(model_info: dict[str, Any], instructions_dir: str | Path | None) -> dict[str, Any]:
    """What a stored combination was fit for: the model's weights and the instruction set's
    splits (a different model or split means a refit)."""
    splits = Path(instructions_dir) / "splits" if instructions_dir else None
    digest = None
    if splits is not None and splits.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in splits.rglob("*") if p.is_file()):
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
        digest = h.hexdigest()
    return {"model_weights_sha256": (model_info.get("weights") or {}).get("sha256"), "splits": digest}


def usable(stored: Combination | None, kinds: set[str], want: dict[str, Any]) -> bool:
    """Whether a stored combination covers ``kinds`` and was fit for this model and split."""
    if stored is None or not kinds <= set(stored.kinds):
        return False
    got = stored.source.get("fingerprint", {})
    return all(got.get(k) == v for k, v in want.items() if v is not None)


def fit_kind(spec: TaskSpec, labels: Sequence[str], model: np.ndarray, alone: np.ndarray | None,
             evidence: Sequence[Evidence]) -> KindWeights:  # fmt: skip
    """One kind's weights from its validation twin's scored items."""
    assert spec.combine is not None and spec.homology is not None
    questions = [(model[i], None if alone is None else alone[i], evidence[i], labels[i]) for i in range(len(labels))]
    kw = fit(spec.combine.kind, spec.classes, questions, k=spec.homology.k)
    kw.fit["validation"] = spec.test.describe()
    return kw


def system_probabilities(weights: KindWeights, spec: TaskSpec, model: np.ndarray, alone: np.ndarray | None,
                         evidence: Sequence[Evidence]) -> np.ndarray:  # fmt: skip
    """Items x classes: the combined distribution of every item."""
    return np.stack([
        weights.probabilities(model[i], None if alone is None else alone[i], evidence[i], spec.classes)
        for i in range(len(evidence))
    ]) if len(evidence) else np.zeros((0, len(spec.classes)))  # fmt: skip
