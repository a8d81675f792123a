"""The system's reading of the sequence itself: composition, the termini and hydropathy under a
multinomial logistic regression trained on the instruction set's train split.

The tiny model asked without evidence gives one answer to every protein, so where no
homolog is found the combination had nothing but the prior to fall back on (one class for
all). Composition carries real signal for location and membrane attachment (signal and
transit peptides, transmembrane stretches, charge), and a linear reader of it trains in
seconds; the combination weighs it like any other input, on validation data.

Whole-sequence composition misses where things sit: targeting signals are at the ends
(signal, transit and mitochondrial peptides at the N-terminus, ER-retention and peroxisomal
signals at the C-terminus), a transmembrane helix is a hydrophobic stretch of about 19
residues, and metal sites are residues a turn apart (Cys-x-x-Cys, His-x-x-x-His). The
reader's features (:data:`READER_FEATURES`) add those; the composition classifier baseline
keeps plain composition (:func:`composition_features`).
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
COMPOSITION = "composition-420"
"""20 amino-acid and 400 dipeptide frequencies (readers stored before the richer set used it)."""
READER_FEATURES = "sequence-513"
"""Composition (420), the 30 N- and C-terminal residues' composition (40), hydropathy (5) and
Cys / His / Asp / Glu pairs 2, 3 and 4 apart (48); the name is stored with the weights."""
TERMINUS = 30
WINDOW = 19  # a transmembrane helix's length in residues
HELIX = 1.6  # Kyte-Doolittle window mean above which a window looks transmembrane
_KYTE_DOOLITTLE = np.array(
    [1.8, 2.5, -3.5, -3.5, 2.8, -0.4, -3.2, 4.5, -3.9, 3.8, 1.9, -3.5, -1.6, -3.5, -4.5, -0.8, -0.7, 4.2, -0.9, -1.3]
)
_SITE = np.zeros(21, dtype=np.int64)  # 1..4 for C, H, D, E (index 20: a skipped letter)
for _j, _a in enumerate("CHDE"):
    _SITE[AMINO.index(_a)] = _j + 1
GAPS = (2, 3, 4)


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


def _counts(idx: np.ndarray) -> np.ndarray:
    ok = idx[idx >= 0]
    return np.bincount(ok, minlength=20) / max(len(ok), 1)


def _hydropathy(idx: np.ndarray) -> list[float]:
    """Most hydrophobic window, share of helix-like windows, most hydrophobic window within the
    first 40 (a signal peptide's core), log length, and the number of helix-like stretches."""
    h = _KYTE_DOOLITTLE[np.where(idx >= 0, idx, 0)] * (idx >= 0)
    if len(h) >= WINDOW:
        w = np.convolve(h, np.ones(WINDOW) / WINDOW, mode="valid")
    else:
        w = np.array([h.mean() if len(h) else 0.0])
    helix = (w > HELIX).astype(np.int8)
    starts = int(helix[0]) + int(np.sum(np.diff(helix) == 1))
    return [float(w.max()), float(helix.mean()), float(w[:40].max()), float(np.log(max(len(idx), 1))), float(starts)]


def _site_pairs(idx: np.ndarray) -> np.ndarray:
    """Per 100 residues: pairs of C / H / D / E that are 2, 3 and 4 apart (16 pairs per gap)."""
    code = _SITE[np.where(idx >= 0, idx, 20)]
    out = np.zeros(16 * len(GAPS))
    for g, gap in enumerate(GAPS):
        if len(code) <= gap:
            continue
        a, b = code[:-gap], code[gap:]
        both = (a > 0) & (b > 0)
        out[16 * g : 16 * (g + 1)] = np.bincount((a[both] - 1) * 4 + (b[both] - 1), minlength=16)
    return out * 100.0 / max(len(idx), 1)


def sequence_features(sequences: Sequence[str]) -> np.ndarray:
    """The reader's features (:data:`READER_FEATURES`) of each sequence."""
    extra = np.zeros((len(sequences), 93), dtype=np.float64)
    for row, seq in enumerate(sequences):
        idx = _INDEX[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        extra[row, :20] = _counts(idx[:TERMINUS])
        extra[row, 20:40] = _counts(idx[-TERMINUS:])
        extra[row, 40:45] = _hydropathy(idx)
        extra[row, 45:] = _site_pairs(idx)
    return np.hstack([composition_features(sequences), extra])


def linear_softmax(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rows x classes: softmax of the standardised features times ``weights`` (last row: the bias)."""
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    logits = z @ weights
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


FEATURE_SETS = {COMPOSITION: (composition_features, 420), READER_FEATURES: (sequence_features, 513)}


@dataclass
class Reader:
    """A fitted linear reader: standardised features -> softmax over ``classes``."""

    classes: list[str]
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    weights: np.ndarray  # (d + 1, len(classes)): the last row is the bias
    features: str = READER_FEATURES  # a key of FEATURE_SETS

    def probabilities(self, sequences: Sequence[str]) -> np.ndarray:
        """Sequences x classes."""
        return linear_softmax(FEATURE_SETS[self.features][0](sequences), self.mean, self.scale, self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "classes": list(self.classes),
            "mean": [float(f"{v:.6g}") for v in self.mean],
            "scale": [float(f"{v:.6g}") for v in self.scale],
            "weights": [[float(f"{v:.6g}") for v in row] for row in self.weights],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Reader:
        """Raises ValueError on a reader of other features or of the wrong shape."""
        features = raw.get("features")
        if features not in FEATURE_SETS:
            raise ValueError(f"reader features {features!r}, expected one of {', '.join(map(repr, FEATURE_SETS))}")
        d = FEATURE_SETS[features][1]
        classes = [str(c) for c in raw["classes"]]
        mean, scale = np.asarray(raw["mean"], dtype=float), np.asarray(raw["scale"], dtype=float)
        weights = np.asarray(raw["weights"], dtype=float)
        if mean.shape != (d,) or scale.shape != (d,) or weights.shape != (d + 1, len(classes)):
            raise ValueError("reader arrays of the wrong shape")
        if (
            not (np.isfinite(mean).all() and np.isfinite(scale).all() and np.isfinite(weights).all())
            or (scale <= 0).any()
        ):
            raise ValueError("reader arrays not finite (or a scale not positive)")
        return cls(classes, mean, scale, weights, features)
