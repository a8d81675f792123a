"""The system's answer to a choice question: the model and the homologs, combined and calibrated.

A tiny model that reads its homologs' annotations in its prompt still answers worse than a
plain identity-weighted vote over the same homologs, and a vote knows nothing where no
homolog is found. Following kNN-LM and Tranception (interpolate the model's distribution
with a retrieval distribution, the weight fit on validation data), each class ``c`` of a
question gets a score

    s(c) = w_model * log p_model(c)            the model, the homologs' block in its prompt
         + w_alone * log p_alone(c)            the model asked without evidence (the sequence only)
         + w_vote  * log p_vote(c)             identity-weighted top-k vote (sharpened), smoothed toward the prior
         + w_best  * identity_best * [best hit says c]
         + w_prior * log prior(c)               the class's frequency (a GO term's, for yes/no)
         + w_model_nohit * log p_model(c) * [no labelled homolog]
         + w_alone_nohit * log p_alone(c) * [no labelled homolog]
         + w_reader * log p_reader(c)          the sequence's composition, read by a linear model
         + w_reader_nohit * log p_reader(c) * [no labelled homolog]
         + w_best_label * [best hit says c]
         + w_prior_nohit * log prior(c) * [no labelled homolog]

and the answer is softmax(s). The weights (and the vote's smoothing) are fit by maximum
likelihood on the instruction set's *validation* split, one set per question kind
(location, metal binding, GO yes/no per aspect), and stored beside the model as
``combination.json``, so every entry point (CLI, Python API, HTTP API, evaluation) gives
the same answer. With all weight on the vote this is the vote; with all on the model it is
the model: the fit decides how much each is worth, and the report shows each alone.

Two recipes compete for each kind (:data:`RECIPES`): ``combined`` (every input but the last
two) and ``homology_first`` (the best hit's label where a homolog is found, weighted by its
identity; the reader and the prior where none is). Nine weights fit on a few hundred
validation questions can learn noise that no test set shares: for metal binding the
combination tied the best hit on validation and fell below it on both test sets. So the
richer recipe is kept only where its cross-validated accuracy beats the simpler one's by more
than one standard error (Breiman's one-standard-error rule), and ``fit`` records the
comparison.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from instructprotein.atomic import write_text
from instructprotein.errors import InputError

if TYPE_CHECKING:
    from instructprotein.infer.reader import Reader

FILE = "combination.json"
FORMAT = "instructprotein-combination/1"
FEATURES = (
    "model",
    "alone",
    "vote",
    "best",
    "prior",
    "model_nohit",
    "alone_nohit",
    "reader",
    "reader_nohit",
    "best_label",
    "prior_nohit",
)
RECIPES = {
    "combined": tuple(f for f in FEATURES if f not in ("best_label", "prior_nohit")),
    "homology_first": ("best", "best_label", "reader_nohit", "prior_nohit"),
}
"""Each recipe's inputs. ``homology_first``'s two best-hit weights are kept non-negative, so
wherever a homolog is found its answer is the best hit's label: only the confidence is fit."""
CV_FOLDS = 5
CV_REPEATS = 3
ALPHAS = (0.1, 0.3, 1.0, 3.0)
"""Smoothing strengths tried for the vote (in identity units: 1.0 weighs like one identical
homolog voting for the prior); the one with the best validation likelihood is kept."""
SHARPNESS = (1.0, 3.0, 10.0)
"""How much closer homologs outweigh the rest in the vote (kNN-LM's temperature): homolog i
weighs identity_best * (identity_i / identity_best) ** sharpness, so 1 is the plain
identity-weighted vote and 10 is nearly the best hit alone, whose weight never changes.
Where the closest homolog is the better guide (DeepLoc: best hit 65.6 against vote 64.3)
the fit can say so; picked with the smoothing, on validation likelihood."""
L2 = 1e-3
EPS = 1e-6


@dataclass
class Evidence:
    """What one question's homologs say: their labels, best first, with identities (top k,
    labelled ones only: a homolog without an annotation of the kind says nothing)."""

    labelled: list[tuple[str, float]] = field(default_factory=list)
    prior: dict[str, float] | None = None  # this question's own prior (a GO term's frequency), else the kind's
    read: dict[str, float] | None = None  # the kind's reader on this protein's sequence (:mod:`.reader`)

    @property
    def covered(self) -> bool:
        return bool(self.labelled)


@dataclass
class KindWeights:
    """One question kind's fitted combination."""

    kind: str
    classes: list[str]
    weights: dict[str, float]
    alpha: float
    prior: dict[str, float]
    k: int = 5
    fit: dict[str, Any] = field(default_factory=dict)  # validation size, likelihoods, accuracies
    sharpness: float = 1.0  # files written before it existed used the plain vote
    reader: dict[str, Any] | None = None  # :class:`~instructprotein.infer.reader.Reader`, as stored
    recipe: str = "combined"  # the :data:`RECIPES` entry the weights belong to (files before it: combined)

    @functools.cached_property
    def _reader(self) -> Reader | None:
        """The stored reader, parsed once (describe reads one sequence per query)."""
        from instructprotein.infer.reader import Reader

        return Reader.from_dict(self.reader) if self.reader is not None else None

    def read(self, sequences: Sequence[str]) -> list[dict[str, float] | None]:
        """The kind's reader on each sequence (None for each when the kind has none), ready for
        :attr:`Evidence.read`."""
        reader = self._reader
        if reader is None:
            return [None] * len(sequences)
        probs = reader.probabilities(sequences) if len(sequences) else np.zeros((0, len(reader.classes)))
        return [dict(zip(reader.classes, map(float, row))) for row in probs]

    def features(
        self, model: np.ndarray, alone: np.ndarray | None, evidence: Evidence, classes: Sequence[str] | None = None
    ) -> np.ndarray:
        """Classes x features for one question (``classes``: the question's, default the kind's)."""
        return features(
            list(classes or self.classes), model, alone, evidence, self.prior, self.alpha, self.k, self.sharpness
        )

    def probabilities(
        self, model: np.ndarray, alone: np.ndarray | None, evidence: Evidence, classes: Sequence[str] | None = None
    ) -> np.ndarray:
        x = self.features(model, alone, evidence, classes)
        w = np.array([self.weights.get(f, 0.0) for f in FEATURES])
        return _softmax(x @ w)


def _softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max()
    e = np.exp(s)
    return e / e.sum()


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, EPS, 1.0))


def _prior(classes: Sequence[str], evidence: Evidence, prior: dict[str, float]) -> np.ndarray:
    """The question's prior over ``classes`` (its own where it has one, else the kind's), normalised."""
    src = evidence.prior if evidence.prior is not None else prior
    pri = np.array([src.get(c, 0.0) for c in classes], dtype=float)
    return (pri + EPS) / (pri + EPS).sum()


def term_prior(frequency: float, yes: str = "yes", no: str = "no") -> dict[str, float]:
    """A yes/no question's prior from how common the asked term is (the share of the graph's
    proteins that carry it): a rare term is rarely the answer, whatever the homologs say."""
    f = min(max(frequency, 1e-4), 1 - 1e-4)
    return {yes: f, no: 1 - f}


def vote_distribution(
    classes: Sequence[str],
    evidence: Evidence,
    prior: dict[str, float],
    alpha: float,
    k: int = 5,
    sharpness: float = 1.0,
) -> np.ndarray:
    """Identity-weighted share of each class among the top ``k`` labelled homologs, smoothed
    toward the prior with strength ``alpha`` (no homolog: the prior itself); ``sharpness``
    as in :data:`SHARPNESS`."""
    pri = _prior(classes, evidence, prior)
    votes = np.zeros(len(classes))
    total = 0.0
    index = {c: i for i, c in enumerate(classes)}
    top = max((identity for _, identity in evidence.labelled[:k]), default=1.0)
    top = max(top, EPS)
    for label, identity in evidence.labelled[:k]:
        w = top * (max(identity, EPS) / top) ** sharpness
        total += w
        if label in index:
            votes[index[label]] += w
    return (votes + alpha * pri) / (total + alpha)


def features(
    classes: list[str],
    model: np.ndarray,
    alone: np.ndarray | None,
    evidence: Evidence,
    prior: dict[str, float],
    alpha: float,
    k: int = 5,
    sharpness: float = 1.0,
) -> np.ndarray:
    """The feature matrix (classes x :data:`FEATURES`) of one question."""
    n = len(classes)
    model = np.asarray(model, dtype=float)
    if model.shape != (n,):
        raise ValueError(f"model distribution has {model.shape} entries for {n} classes")
    alone_log = _log(np.asarray(alone, dtype=float)) if alone is not None else np.zeros(n)
    nohit = 0.0 if evidence.covered else 1.0
    best = np.zeros(n)
    label_of_best = np.zeros(n)
    if evidence.labelled:
        label, identity = evidence.labelled[0]
        if label in classes:
            best[classes.index(label)] = identity
            label_of_best[classes.index(label)] = 1.0
    pri = _prior(classes, evidence, prior)
    model_log = _log(model)
    read_log = _log(np.array([evidence.read.get(c, 0.0) for c in classes])) if evidence.read else np.zeros(n)
    return np.stack(
        [
            model_log,
            alone_log,
            _log(vote_distribution(classes, evidence, prior, alpha, k, sharpness)),
            best,
            np.log(pri),
            model_log * nohit,
            alone_log * nohit,
            read_log,
            read_log * nohit,
            label_of_best,
            np.log(pri) * nohit,
        ],
        axis=1,
    )


def class_prior(labels: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """Label frequencies with add-one smoothing (a class never seen is rare, not impossible)."""
    counts = {c: 1.0 for c in classes}
    for lab in labels:
        if lab in counts:
            counts[lab] += 1.0
    total = sum(counts.values())
    return {c: v / total for c, v in counts.items()}


def _nll(w: np.ndarray, xs: np.ndarray, ys: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (+ L2) and its gradient; ``xs`` items x classes x features,
    ``mask`` items x classes (False: padding of a question with fewer classes)."""
    s = np.einsum("icf,f->ic", xs, w)
    s = np.where(mask, s, -np.inf)
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    n = len(ys)
    rows = np.arange(n)
    loss = -np.mean(np.log(np.clip(p[rows, ys], 1e-300, None))) + L2 * float(w @ w)
    onehot = np.zeros_like(p)
    onehot[rows, ys] = 1.0
    grad = np.einsum("ic,icf->f", p - onehot, xs) / n + 2 * L2 * w
    return float(loss), grad


def _minimize(
    xs: np.ndarray, ys: np.ndarray, mask: np.ndarray, start: np.ndarray, bounds: list[tuple[float | None, float | None]]
) -> tuple[float, np.ndarray]:
    """Maximum-likelihood weights (features outside the recipe are zero in ``xs`` and stay at 0)."""
    from scipy.optimize import minimize

    res = minimize(lambda w: _nll(w, xs, ys, mask), start, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(res.fun), res.x


def _recipe(name: str, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[float | None, float | None]]]:
    """A recipe's feature mask, starting weights and bounds (``fixed``: features no question has)."""
    keep = np.array([f in RECIPES[name] for f in FEATURES]) & ~fixed
    starts = {"vote": 1.0, "model": 0.5} if name == "combined" else {"best": 1.0, "best_label": 1.0}
    start = np.array([starts.get(f, 0.0) for f in FEATURES]) * keep
    positive = ("best", "best_label") if name == "homology_first" else ()
    bounds: list[tuple[float | None, float | None]] = [
        ((0.0, None) if f in positive else (None, None)) if k else (0.0, 0.0) for f, k in zip(FEATURES, keep)
    ]
    return keep, start, bounds


def _cv_correct(
    xs: np.ndarray, ys: np.ndarray, mask: np.ndarray, recipe: tuple[np.ndarray, np.ndarray, list], seed: int = 0
) -> np.ndarray:
    """Per question, the share of :data:`CV_REPEATS` repeated :data:`CV_FOLDS`-fold
    cross-validations in which the recipe, fit on the other folds, answered it right."""
    keep, start, bounds = recipe
    xs = xs * keep
    right = np.zeros(len(ys))
    for r in range(CV_REPEATS):
        fold = np.random.default_rng(seed + r).permutation(len(ys)) % CV_FOLDS
        for f in range(CV_FOLDS):
            train, test = fold != f, fold == f
            _, w = _minimize(xs[train], ys[train], mask[train], start, bounds)
            scores = np.where(mask[test], np.einsum("icf,f->ic", xs[test], w), -np.inf)
            right[test] += scores.argmax(axis=1) == ys[test]
    return right / CV_REPEATS


def _select(xs: np.ndarray, ys: np.ndarray, mask: np.ndarray, fixed: np.ndarray) -> dict[str, Any]:
    """The one-standard-error choice between the recipes (see the module's docstring); the
    combination's smoothing is held at its full-data pick, which favours it if anything."""
    combined = _cv_correct(xs, ys, mask, _recipe("combined", fixed))
    simple = _cv_correct(xs, ys, mask, _recipe("homology_first", fixed))
    diff = combined - simple
    gain, se = float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))
    return {
        "recipe": "combined" if gain > se else "homology_first",
        "cv_accuracy": {"combined": round(float(combined.mean()), 4), "homology_first": round(float(simple.mean()), 4)},
        "gain": round(gain, 4),
        "standard_error": round(se, 4),
        "folds": CV_FOLDS,
        "repeats": CV_REPEATS,
    }


def fit(
    kind: str,
    classes: Sequence[str],
    questions: Sequence[tuple[np.ndarray, np.ndarray | None, Evidence, str]],
    *,
    prior_labels: Sequence[str] | None = None,
    k: int = 5,
    reader: dict[str, Any] | None = None,
    select: bool = False,
) -> KindWeights:
    """Fit one kind's weights on validation questions ``(p_model, p_alone or None, evidence, true label)``.

    The prior comes from ``prior_labels`` (default: the validation labels). Alone features
    are left at zero weight when no question has them, reader features unless every question
    has its reading (``evidence.read``, from ``reader``, which is stored with the weights).
    ``select`` picks the recipe by cross-validation (:func:`_select`); without it the
    combination is fit, as for ``describe``'s ranked terms, whose F-max wants its
    probabilities rather than its argmax. Raises InputError when there are too few questions
    (under 20) for a fit worth storing.
    """
    classes = list(classes)
    qs = [q for q in questions if q[3] in classes]
    if len(qs) < 20:
        raise InputError(f"combination for {kind}: {len(qs)} validation questions with a known class; 20 needed")
    prior = class_prior(prior_labels if prior_labels is not None else [q[3] for q in qs], classes)
    has_alone = any(q[1] is not None for q in qs)
    has_read = all(q[2].read is not None for q in qs)
    ys = np.array([classes.index(q[3]) for q in qs])
    mask = np.ones((len(qs), len(classes)), dtype=bool)
    fixed = np.array(
        [
            (f in ("alone", "alone_nohit") and not has_alone) or (f in ("reader", "reader_nohit") and not has_read)
            for f in FEATURES
        ]
    )
    keep, start, bounds = _recipe("combined", fixed)
    best: tuple[float, float, float, np.ndarray] | None = None
    for sharpness in SHARPNESS:
        for alpha in ALPHAS:
            xs = np.stack([features(classes, q[0], q[1], q[2], prior, alpha, k, sharpness) for q in qs])
            loss, w = _minimize(xs * keep, ys, mask, start, bounds)
            if best is None or loss < best[0]:
                best = (loss, alpha, sharpness, w)
    assert best is not None
    loss, alpha, sharpness, w = best
    xs = np.stack([features(classes, q[0], q[1], q[2], prior, alpha, k, sharpness) for q in qs])
    xs[:, :, fixed] = 0.0
    selection = _select(xs, ys, mask, fixed) if select else None
    recipe = selection["recipe"] if selection else "combined"
    if recipe != "combined":
        r_keep, r_start, r_bounds = _recipe(recipe, fixed)
        loss, w = _minimize(xs * r_keep, ys, mask, r_start, r_bounds)

    def accuracy(scores: np.ndarray) -> float:
        return float(np.mean(scores.argmax(axis=1) == ys))

    system = np.einsum("icf,f->ic", xs, w)
    vote = xs[:, :, FEATURES.index("vote")]
    model = xs[:, :, FEATURES.index("model")]
    read = xs[:, :, FEATURES.index("reader")]
    covered = np.array([q[2].covered for q in qs])
    best_hit = xs[covered][:, :, FEATURES.index("best")]
    weights = {f: round(float(v), 6) for f, v in zip(FEATURES, w)}
    info: dict[str, Any] = {
        "questions": len(qs),
        "covered": int(sum(1 for q in qs if q[2].covered)),
        "nll": round(loss, 5),
        "nll_vote_alone": round(_nll(np.eye(len(FEATURES))[FEATURES.index("vote")], xs, ys, mask)[0], 5),
        "accuracy": {
            "system": round(accuracy(system), 4),
            "vote": round(accuracy(vote), 4),
            "model": round(accuracy(model), 4),
            "reader": round(accuracy(read), 4) if has_read else None,
            "best_hit_where_covered": round(float(np.mean(best_hit.argmax(axis=1) == ys[covered])), 4)
            if covered.any()
            else None,
            "system_where_covered": round(float(np.mean(system[covered].argmax(axis=1) == ys[covered])), 4)
            if covered.any()
            else None,
        },
    }
    if selection:
        info["selection"] = selection
    return KindWeights(kind, classes, weights, alpha, prior, k, info, sharpness, reader if has_read else None, recipe)


@dataclass
class Combination:
    """Every kind's weights of one model, as stored in its folder."""

    kinds: dict[str, KindWeights] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # the validation data they were fit on

    def get(self, kind: str | None) -> KindWeights | None:
        return self.kinds.get(kind) if kind else None

    def to_json(self) -> str:
        body = {"format": FORMAT, "source": self.source, "kinds": {k: asdict(v) for k, v in self.kinds.items()}}
        return json.dumps(body, indent=2, sort_keys=False) + "\n"

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / FILE
        write_text(path, self.to_json())
        return path


def load(model_dir: str | Path) -> Combination | None:
    """The model folder's combination, or None when it has none (answers are then the model's own)."""
    path = Path(model_dir) / FILE
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the combination weights: {exc}", path) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InputError(f"not a combination file of format {FORMAT}", path)
    kinds = {}
    try:
        for name, raw in body.get("kinds", {}).items():
            kw = KindWeights(**raw)
            if not all(math.isfinite(float(kw.weights.get(f, 0.0))) for f in FEATURES):
                raise ValueError(f"kind {name}: a weight is not finite")
            if kw.recipe not in RECIPES:
                raise ValueError(f"kind {name}: unknown recipe {kw.recipe!r} (known: {', '.join(RECIPES)})")
            _ = kw._reader  # a malformed reader is refused here, not at the first answer
            kinds[name] = kw
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"malformed combination weights: {exc}", path) from None
    return Combination(kinds, body.get("source", {}))
