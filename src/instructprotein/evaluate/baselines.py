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
  multinomial logistic regression with L2 fitted by L-BFGS (scipy), trained on the task's
  train split, its strength C chosen by 3-fold cross-validation on that split
  (:data:`C_GRID`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from instructprotein.infer.reader import COMPOSITION, FEATURE_SETS, linear_softmax
from instructprotein.infer.retrieval import Homolog, transfer

# -- majority ---------------------------------------------------------------------------------------------


def majority_class(labels: Sequence[str], classes: Sequence[str]) -> str:
    """The most common label; ties broken by the task's class order."""
    counts = Counter(labels)
    return max(classes, key=lambda c: (counts.get(c, 0), -list(classes).index(c)))


# -- composition ------------------------------------------------------------------------------------------


class LogisticRegression:
    """Multinomial logistic regression with L2, fitted by L-BFGS: mean cross-entropy + ||W||^2 / (2 C n)."""

    def __init__(self, c: float = 1.0, max_iter: int = 1000):
        self.c = c
        self.max_iter = max_iter

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> LogisticRegression:
        import torch
        from scipy.optimize import minimize

        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0) + 1e-8
        z = torch.from_numpy(np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))]))
        zt = z.T.contiguous()
        n, d = z.shape
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        onehot = torch.zeros((n, n_classes), dtype=torch.float64)
        onehot[torch.arange(n), yt] = 1.0
        lam = 1.0 / (self.c * n)
        reg = torch.ones((d, 1), dtype=torch.float64)
        reg[-1] = 0.0  # the bias is not penalised

        def loss(w_flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = torch.from_numpy(w_flat).view(d, n_classes)
            logits = z @ w
            logp = torch.log_softmax(logits, dim=1)
            value = -(onehot * logp).sum() / n + 0.5 * lam * ((w * reg) ** 2).sum()
            grad = zt @ (logp.exp() - onehot) / n + lam * w * reg
            return float(value), grad.numpy().ravel().astype(np.float64)

        res = minimize(loss, np.zeros(d * n_classes), jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        self.w = res.x.reshape(d, n_classes)
        self.converged = bool(res.success)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return linear_softmax(x, self.mean, self.scale, self.w)


C_GRID = (0.1, 0.01, 0.001)
"""Regularisation strengths tried (3-fold cross-validation on the train split picks one)."""


CRITERIA = ("accuracy", "log_loss")
CV_ROWS = 6000
"""At most this many train proteins (a seeded sample) pick C; the final fit uses them all. The
choice is stable well below this size, and the evaluation trains one model per kind and task."""


def _fit_c(
    x: np.ndarray, y: np.ndarray, n_classes: int, grid: Sequence[float], seed: int, criterion: str = "accuracy"
) -> tuple[float, dict[float, float]]:
    """The C of ``grid`` with the best 3-fold cross-validated ``criterion`` on the train data:
    accuracy for a classifier whose argmax is the answer, log loss for one whose probabilities
    are weighed by the combination (an overconfident reader outvotes the homologs)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r}, expected one of {', '.join(CRITERIA)}")
    rng = np.random.default_rng(seed)
    if len(y) > CV_ROWS:
        pick = np.sort(rng.choice(len(y), CV_ROWS, replace=False))
        x, y = x[pick], y[pick]
    fold = rng.permutation(len(y)) % 3
    scores: dict[float, float] = {}
    for c in grid:
        total = 0.0
        for f in range(3):
            tr, va = fold != f, fold == f
            p = LogisticRegression(c=c, max_iter=300).fit(x[tr], y[tr], n_classes).predict_proba(x[va])
            if criterion == "accuracy":
                total += float((p.argmax(axis=1) == y[va]).sum())
            else:
                total -= float(np.log(np.clip(p[np.arange(len(p)), y[va]], 1e-12, 1.0)).sum())
        scores[c] = total / len(y)
    sign = 1.0 if criterion == "accuracy" else -1.0
    best = max(grid, key=lambda c: (sign * scores[c], -c))
    return best, scores


class CompositionModel:
    """The composition classifier, fitted once on a train split and applied to any test items."""

    def __init__(
        self,
        train_sequences: Sequence[str],
        train_labels: Sequence[str],
        classes: Sequence[str],
        *,
        c: float | None = None,
        seed: int = 0,
        features: str = COMPOSITION,
        criterion: str = "accuracy",
    ):
        self.classes = list(classes)
        self._featurise, width = FEATURE_SETS[features]
        self.present = sorted({self.classes.index(lab) for lab in train_labels})
        remap = {c_: i for i, c_ in enumerate(self.present)}
        y = np.array([remap[self.classes.index(lab)] for lab in train_labels])
        x = self._featurise(train_sequences)
        self.info: dict[str, Any] = {"train_items": len(train_labels), "features": width}
        if c is None:
            c, cv = _fit_c(x, y, len(self.present), C_GRID, seed, criterion)
            self.info[f"cv_{criterion}"] = {f"{k:g}": round(v, 4) for k, v in cv.items()}
        self.model = LogisticRegression(c=c).fit(x, y, len(self.present))
        self.info.update(c=c, converged=self.model.converged)

    def predict(self, sequences: Sequence[str]) -> tuple[list[str], np.ndarray]:
        p_sub = self.model.predict_proba(self._featurise(sequences))
        prob = np.zeros((len(sequences), len(self.classes)))
        prob[:, self.present] = p_sub
        return [self.classes[int(i)] for i in prob.argmax(axis=1)], prob


def composition_classifier(
    train_sequences: Sequence[str],
    train_labels: Sequence[str],
    test_sequences: Sequence[str],
    classes: Sequence[str],
    *,
    c: float | None = None,
    seed: int = 0,
) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Predicted class and class probabilities of every test sequence; info on the fit.

    ``c``: the inverse L2 strength; None chooses it from :data:`C_GRID` by 3-fold
    cross-validation on the train data (never on the test items).
    """
    model = CompositionModel(train_sequences, train_labels, classes, c=c, seed=seed)
    pred, prob = model.predict(test_sequences)
    return pred, prob, dict(model.info)


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
