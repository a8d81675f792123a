"""Statistics of an evaluation: confidence intervals, AUPR, calibration, confusion matrices.

Every accuracy in a report carries a 95 % Wilson score interval (:func:`wilson`): unlike the
normal approximation it stays inside [0, 1] and is accurate at small n and near 0 or 1, so a
difference between two numbers can be read as real (intervals apart) or not. AUPR (average
precision of the "yes" probability) carries a percentile bootstrap interval
(:func:`bootstrap_average_precision`): resampled items, a seeded generator, the items sorted
once and each resample weighted by counts, so 1,000 resamples of 22k items take well under a
second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054
"""The two-sided 95 % quantile of the standard normal."""


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n`` (95 % by default).

    ``(0.0, 1.0)`` for ``n == 0`` (nothing is known).
    """
    if n < 0 or correct < 0 or correct > n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # exact at the ends: the bound is 0 (1) when none (all) are right, not a rounding error away
    lo = 0.0 if correct == 0 else max(0.0, center - half)
    hi = 1.0 if correct == n else min(1.0, center + half)
    return (lo, hi)


def accuracy_summary(correct: Sequence[bool] | np.ndarray) -> dict[str, Any]:
    """``{"accuracy", "correct", "n", "ci95"}`` of a list of hits (percentages are the caller's)."""
    arr = np.asarray(correct, dtype=bool)
    k, n = int(arr.sum()), int(arr.size)
    lo, hi = wilson(k, n)
    return {"accuracy": k / n if n else float("nan"), "correct": k, "n": n, "ci95": [lo, hi]}


# -- AUPR -------------------------------------------------------------------------------------------


def _sorted_groups(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items sorted by descending score, and the end index of every group of equal scores."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    return order, y, ends


def _ap_weighted(y_sorted: np.ndarray, ends: np.ndarray, weights: np.ndarray) -> float:
    tp = np.cumsum(weights * y_sorted)[ends]
    fp = np.cumsum(weights * (1 - y_sorted))[ends]
    total_pos = tp[-1] if len(tp) else 0.0
    if total_pos <= 0:
        return float("nan")
    precision = tp / np.maximum(tp + fp, 1e-12)
    recall = tp / total_pos
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * precision))


def average_precision(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn's definition):
    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, highest first; tied
    scores enter together. NaN without positives."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if s.size == 0:
        return float("nan")
    _order, ys, ends = _sorted_groups(s, y)
    return _ap_weighted(ys, ends, np.ones_like(ys))


def bootstrap_average_precision(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[bool] | np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`average_precision` (items resampled with replacement)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    n = s.size
    if n == 0 or y.sum() == 0:
        return (float("nan"), float("nan"))
    order, ys, ends = _sorted_groups(s, y)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for b in range(resamples):
        pick = rng.integers(0, n, n)
        w = np.bincount(rank[pick], minlength=n).astype(float)
        values[b] = _ap_weighted(ys, ends, w)
    values = values[~np.isnan(values)]
    alpha = (1 - level) / 2
    return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


# -- confusion, per class, calibration -------------------------------------------------------------------


def confusion(true: Sequence[int], pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``m[i, j]``: items of true class ``i`` predicted as ``j``."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return m


def per_class(matrix: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per true class: its items, how many were predicted right, accuracy (recall) with a Wilson interval."""
    out = {}
    for i, name in enumerate(classes):
        n = int(matrix[i].sum())
        k = int(matrix[i, i])
        lo, hi = wilson(k, n)
        out[name] = {"n": n, "correct": k, "accuracy": k / n if n else float("nan"), "ci95": [lo, hi]}
    return out


def calibration(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Reliability of the predicted class's probability: per equal-width bin its mean confidence,
    accuracy and count, and the expected calibration error (ECE, count-weighted |acc - conf|)."""
    c = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    k = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.minimum(np.searchsorted(edges, c, side="right") - 1, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n == 0:
            rows.append(
                {"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": 0, "confidence": None, "accuracy": None}
            )
            continue
        conf, acc = float(c[mask].mean()), float(k[mask].mean())
        ece += n * abs(acc - conf)
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n, "confidence": conf, "accuracy": acc})
    total = len(c)
    return {
        "bins": rows,
        "ece": ece / total if total else float("nan"),
        "mean_confidence": float(c.mean()) if total else float("nan"),
    }


def best_threshold_accuracy(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """The accuracy of ``score >= t`` -> positive at the best ``t``, and that ``t`` (an upper bound:
    the threshold is chosen on the data it is scored on)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n = s.size
    if n == 0:
        return float("nan"), float("nan")
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    ends = np.flatnonzero(np.r_[ss[1:] != ss[:-1], True])
    tp = np.cumsum(yy)[ends]
    fp = np.cumsum(~yy)[ends]
    neg = n - int(y.sum())
    acc = (tp + (neg - fp)) / n
    none_positive = neg / n
    i = int(np.argmax(acc))
    if none_positive > acc[i]:
        return float(none_positive), float("inf")
    return float(acc[i]), float(ss[ends[i]])
