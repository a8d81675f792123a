"""The system's reading of the sequence itself: amino-acid and dipeptide composition under a
multinomial logistic regression trained on the instruction set's train split.

The tiny model asked without evidence gives one answer to every protein, so where no
homolog is found the combination had nothing but the prior to fall back on (one class for
all). Composition carries real signal for location and membrane attachment (signal and
transit peptides, transmembrane stretches, charge), and a linear reader of it trains in
seconds; the combination weighs it like any other input, on validation data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

AMINO = "ACDEFGHIKLMNPQRSTVWY"
_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _a in enumerate(AMINO):
    _INDEX[ord(_a)] = _i
FEATURES = "composition-420"
"""20 amino-acid and 400 dipeptide frequencies (the name is stored with the weights)."""


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


@dataclass
class Reader:
    """A fitted linear reader: standardised composition -> softmax over ``classes``."""

    classes: list[str]
    mean: np.ndarray  # (420,)
    scale: np.ndarray  # (420,)
    weights: np.ndarray  # (421, len(classes)): the last row is the bias

    def probabilities(self, sequences: Sequence[str]) -> np.ndarray:
        """Sequences x classes."""
        x = composition_features(sequences)
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        logits = z @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": FEATURES,
            "classes": list(self.classes),
            "mean": [float(f"{v:.6g}") for v in self.mean],
            "scale": [float(f"{v:.6g}") for v in self.scale],
            "weights": [[float(f"{v:.6g}") for v in row] for row in self.weights],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Reader:
        """Raises ValueError on a reader of other features or of the wrong shape."""
        if raw.get("features") != FEATURES:
            raise ValueError(f"reader features {raw.get('features')!r}, expected {FEATURES!r}")
        classes = [str(c) for c in raw["classes"]]
        mean, scale = np.asarray(raw["mean"], dtype=float), np.asarray(raw["scale"], dtype=float)
        weights = np.asarray(raw["weights"], dtype=float)
        if mean.shape != (420,) or scale.shape != (420,) or weights.shape != (421, len(classes)):
            raise ValueError("reader arrays of the wrong shape")
        if (
            not (np.isfinite(mean).all() and np.isfinite(scale).all() and np.isfinite(weights).all())
            or (scale <= 0).any()
        ):
            raise ValueError("reader arrays not finite (or a scale not positive)")
        return cls(classes, mean, scale, weights)
