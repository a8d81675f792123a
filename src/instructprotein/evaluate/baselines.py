"""Baselines a model must beat, computed on the same items as the model.

- **majority class**: the most common class of the train split where a task has one, else
  of the test set itself (the report says which);
- **term-frequency prior** (GO yes/no): the score of "yes" is how many proteins of the
  training graph carry the term (directly or through a descendant), decontaminated proteins
  and proteins outside the train split left out. Ranked, it gives an AUPR; thresholded, an
  accuracy, at the threshold that is best *on the test items* (an upper bound, and said so);
- **homology transfer**: the test sequence is searched (MMseqs2) against the training
  graph's proteins, with every protein the model could not train on excluded (the
  decontamination list, the valid / test / removed splits) and every hit at or above the
  decontamination identity dropped (the paper's 0.7 by default). The best *labelled* hit's
  class is the prediction (``homology_best``), and an identity-weighted vote of the top k
  labelled hits another (``homology_vote``, :func:`~instructprotein.infer.retrieval.transfer`).
  Labels of a hit: its DeepLoc class from GO CC (:mod:`.locations`), whether it carries a GO
  term by propagation (metal ion binding, or the item's term), a hit without any annotation
  of the needed aspect having no label. Queries without a labelled hit fall back to the
  majority class; coverage (the share that had one) is reported, and accuracy on the
  covered items alone beside it;
- **composition classifier**: amino-acid (20) and dipeptide (400) frequencies, standardised,
  multinomial logistic regression with L2 (scikit-learn's default strength, C = 1) fitted
  by L-BFGS (scipy), trained on the task's train split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from instructprotein.infer.retrieval import Homolog, transfer

AMINO = "ACDEFGHIKLMNPQRSTVWY"
_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _a in enumerate(AMINO):
    _INDEX[ord(_a)] = _i


# -- majority ---------------------------------------------------------------------------------------------


def majority_class(labels: Sequence[str], classes: Sequence[str]) -> str:
    """The most common label; ties broken by the task's class order."""
    counts = Counter(labels)
    return max(classes, key=lambda c: (counts.get(c, 0), -list(classes).index(c)))


# -- composition ------------------------------------------------------------------------------------------


def composition_features(sequences: Sequence[str]) -> np.ndarray:
    """Per sequence: 20 amino-acid frequencies and 400 dipeptide frequencies (non-standard letters skipped)."""
    out = np.zeros((len(sequences), 420), dtype=np.float64)
    for row, seq in enumerate(sequences):
        idx = _INDEX[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        ok = idx >= 0
        if ok.any():
            out[row, :20] = np.bincount(idx[ok], minlength=20) / ok.sum()
        if len(idx) > 1:
            a, b = idx[:-1], idx[1:]
            pair = (a >= 0) & (b >= 0)
            if pair.any():
                out[row, 20:] = np.bincount(a[pair] * 20 + b[pair], minlength=400) / pair.sum()
    return out


class LogisticRegression:
    """Multinomial logistic regression with L2, fitted by L-BFGS: mean cross-entropy + ||W||^2 / (2 C n)."""

    def __init__(self, c: float = 1.0, max_iter: int = 1000):
        self.c = c
        self.max_iter = max_iter

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> LogisticRegression:
        from scipy.optimize import minimize
        from scipy.special import logsumexp

        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0) + 1e-8
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        n, d = z.shape
        onehot = np.zeros((n, n_classes))
        onehot[np.arange(n), y] = 1.0
        lam = 1.0 / (self.c * n)

        def loss(w_flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = w_flat.reshape(d, n_classes)
            logits = z @ w
            lse = logsumexp(logits, axis=1, keepdims=True)
            value = -np.sum(onehot * (logits - lse)) / n + 0.5 * lam * np.sum(w[:-1] ** 2)
            prob = np.exp(logits - lse)
            grad = z.T @ (prob - onehot) / n
            grad[:-1] += lam * w[:-1]
            return float(value), grad.ravel()

        res = minimize(loss, np.zeros(d * n_classes), jac=True, method="L-BFGS-B",
                       options={"maxiter": self.max_iter})  # fmt: skip
        self.w = res.x.reshape(d, n_classes)
        self.converged = bool(res.success)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        logits = z @ self.w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def composition_classifier(
    train_sequences: Sequence[str], train_labels: Sequence[str], test_sequences: Sequence[str], classes: Sequence[str],
    *, c: float = 1.0,
) -> tuple[list[str], np.ndarray, dict[str, Any]]:  # fmt: skip
    """Predicted class and class probabilities of every test sequence; info on the fit."""
    classes = list(classes)
    present = sorted({classes.index(lab) for lab in train_labels})
    y_full = np.array([classes.index(lab) for lab in train_labels])
    remap = {c_: i for i, c_ in enumerate(present)}
    model = LogisticRegression(c=c).fit(composition_features(train_sequences), np.array([remap[v] for v in y_full]), len(present))
    p_sub = model.predict_proba(composition_features(test_sequences))
    prob = np.zeros((len(test_sequences), len(classes)))
    prob[:, present] = p_sub
    pred = [classes[int(i)] for i in prob.argmax(axis=1)]
    return pred, prob, {"train_items": len(train_labels), "features": 420, "c": c, "converged": model.converged}


# -- homology transfer --------------------------------------------------------------------------------------


def homology_predictions(
    hits: Sequence[Sequence[Homolog]],
    label_of: Callable[[int, str], str | None],
    *,
    k: int = 5,
    fallback: str,
) -> dict[str, Any]:
    """Best labelled hit and identity-weighted top-``k`` vote per item.

    ``hits[i]``: item ``i``'s homologs, best first (already decontaminated); ``label_of(i,
    accession)``: the class the hit gives item ``i``, or None when it has no label.
    """
    best, vote, covered, identity = [], [], [], []
    for i, found in enumerate(hits):
        labelled: list[Homolog] = []
        labels: dict[str, str] = {}
        for h in found:
            lab = label_of(i, h.accession)
            if lab is not None:
                labelled.append(h)
                labels[h.accession] = lab
        if not labelled:
            best.append(fallback)
            vote.append(fallback)
            covered.append(False)
            identity.append(None)
            continue
        t = transfer(labelled, labels, k=k)
        best.append(labels[labelled[0].accession])
        vote.append(t.label or fallback)
        covered.append(True)
        identity.append(labelled[0].identity)
    return {"best": best, "vote": vote, "covered": covered, "identity": identity}


# -- term frequency -------------------------------------------------------------------------------------------


class TermFrequency:
    """How many training-graph proteins carry a term (with descendants), ``exclude`` left out."""

    def __init__(self, kg: Any, exclude: frozenset[str] | set[str] = frozenset()):
        self.kg = kg
        self.exclude = frozenset(exclude)
        self._cache: dict[str, int] = {}

    def __call__(self, term: str) -> int:
        if term not in self._cache:
            try:
                carriers = self.kg.proteins_with(term)
            except KeyError:
                carriers = []
            self._cache[term] = sum(1 for a in carriers if a not in self.exclude) if self.exclude else len(carriers)
        return self._cache[term]
