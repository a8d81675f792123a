"""The system's answer: the model and the homologs combined, weights fit on validation questions."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from instructprotein.errors import InputError
from instructprotein.infer import combine as comb
from instructprotein.infer.combine import Evidence

CLASSES = ["cytoplasm", "nucleus", "membrane"]


def _questions(n: int, seed: int, *, model_skill: float, hit_rate: float, vote_skill: float):
    """Synthetic questions: the homologs are right with ``vote_skill`` when found; the model
    puts ``model_skill`` on the truth (the rest spread evenly)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        truth = rng.choice(CLASSES)
        p = np.full(len(CLASSES), (1 - model_skill) / (len(CLASSES) - 1))
        p[CLASSES.index(truth)] = model_skill
        if rng.random() < model_skill:  # a model that is right this often, confidently
            q = np.full(len(CLASSES), 0.1)
            q[CLASSES.index(truth)] = 0.8
        else:
            q = np.full(len(CLASSES), 0.1)
            q[rng.randrange(len(CLASSES))] = 0.8
        labelled = []
        if rng.random() < hit_rate:
            for _ in range(3):
                lab = truth if rng.random() < vote_skill else rng.choice(CLASSES)
                labelled.append((lab, rng.uniform(0.3, 0.7)))
        out.append((q / q.sum(), None, Evidence(labelled), truth))
    return out


def _accuracy(kw: comb.KindWeights, qs) -> float:
    return float(np.mean([CLASSES[int(kw.probabilities(m, a, e).argmax())] == t for m, a, e, t in qs]))


def test_fit_trusts_the_homologs_when_the_model_guesses():
    valid = _questions(2000, 0, model_skill=0.34, hit_rate=0.9, vote_skill=0.8)
    kw = comb.fit("location", CLASSES, valid)
    assert kw.weights["vote"] > 0.5 and abs(kw.weights["model"]) < kw.weights["vote"]
    test = _questions(2000, 1, model_skill=0.34, hit_rate=0.9, vote_skill=0.8)
    vote_only = comb.KindWeights("v", CLASSES, {"vote": 1.0}, kw.alpha, kw.prior)
    assert _accuracy(kw, test) >= _accuracy(vote_only, test) - 0.01


def test_fit_uses_the_model_where_no_homolog_is_found():
    """Where the vote falls back to the prior, a model that knows something must decide."""
    valid = _questions(600, 2, model_skill=0.8, hit_rate=0.5, vote_skill=0.8)
    kw = comb.fit("location", CLASSES, valid)
    test = _questions(600, 3, model_skill=0.8, hit_rate=0.5, vote_skill=0.8)
    vote_only = comb.KindWeights("v", CLASSES, {"vote": 1.0}, kw.alpha, kw.prior)
    no_hit = [q for q in test if not q[2].covered]
    assert _accuracy(kw, no_hit) > _accuracy(vote_only, no_hit) + 0.3
    assert _accuracy(kw, test) > _accuracy(vote_only, test)


def test_vote_distribution_is_identity_weighted_and_smoothed():
    prior = {"cytoplasm": 0.5, "nucleus": 0.25, "membrane": 0.25}
    p = comb.vote_distribution(CLASSES, Evidence([("nucleus", 0.6), ("cytoplasm", 0.3)]), prior, alpha=0.0 + 1e-12)
    assert p[1] == pytest.approx(2 / 3) and p[0] == pytest.approx(1 / 3)
    none = comb.vote_distribution(CLASSES, Evidence([]), prior, alpha=1.0)
    assert none == pytest.approx([0.5, 0.25, 0.25], abs=1e-5)


def test_too_few_validation_questions_are_refused():
    with pytest.raises(InputError, match="20 needed"):
        comb.fit("location", CLASSES, _questions(10, 0, model_skill=0.5, hit_rate=1, vote_skill=1))


def test_save_load_round_trip_and_bad_files(tmp_path):
    kw = comb.fit("location", CLASSES, _questions(100, 4, model_skill=0.5, hit_rate=0.8, vote_skill=0.8))
    comb.Combination({"location": kw}, {"fingerprint": {"splits": "x"}}).save(tmp_path)
    back = comb.load(tmp_path)
    assert back is not None and back.get("location").weights == kw.weights
    m, a, e, _ = _questions(1, 5, model_skill=0.5, hit_rate=1, vote_skill=1)[0]
    assert np.allclose(back.get("location").probabilities(m, a, e), kw.probabilities(m, a, e))
    assert comb.load(tmp_path / "nothing") is None
    (tmp_path / comb.FILE).write_text("{not json")
    with pytest.raises(InputError, match="combination"):
        comb.load(tmp_path)
    body = json.loads(back.to_json())
    body["kinds"]["location"]["weights"]["vote"] = float("nan")
    (tmp_path / comb.FILE).write_text(json.dumps(body))
    with pytest.raises(InputError, match="not finite"):
        comb.load(tmp_path)


def _closest_knows(n: int, seed: int, right: float = 0.9):
    """Questions whose closest homolog is right with ``right`` and whose other homologs and
    model guess: nothing beyond the best hit to learn, only noise to fit."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        truth = rng.choice(CLASSES)
        first = truth if rng.random() < right else rng.choice([c for c in CLASSES if c != truth])
        labelled = [(first, rng.uniform(0.4, 0.9))] + [(rng.choice(CLASSES), rng.uniform(0.3, 0.4)) for _ in range(2)]
        q = np.array([rng.random() for _ in CLASSES])
        out.append((q / q.sum(), None, Evidence(labelled), truth))
    return out


def test_selection_keeps_the_best_hit_when_the_combination_only_fits_noise():
    kw = comb.fit("metal", CLASSES, _closest_knows(400, 6), select=True)
    sel = kw.fit["selection"]
    assert kw.recipe == "homology_first" and sel["recipe"] == "homology_first"
    assert sel["gain"] <= sel["standard_error"] and set(sel["cv_accuracy"]) == set(comb.RECIPES)
    assert {f for f, w in kw.weights.items() if w} <= set(comb.RECIPES["homology_first"])
    test = _closest_knows(300, 7)
    answers = [CLASSES[int(kw.probabilities(m, a, e).argmax())] for m, a, e, _ in test]
    assert answers == [e.labelled[0][0] for _, _, e, _ in test]  # where a homolog is found: its label
    conf = [float(kw.probabilities(m, a, e).max()) for m, a, e, _ in test]
    assert np.corrcoef(conf, [e.labelled[0][1] for _, _, e, _ in test])[0, 1] > 0.9  # closer homolog, surer answer


def test_selection_keeps_the_combination_where_it_adds_the_model():
    """Half the questions have no homolog and the model knows the answer: the simpler recipe
    can only say the prior there."""
    kw = comb.fit("location", CLASSES, _questions(600, 2, model_skill=0.8, hit_rate=0.5, vote_skill=0.8), select=True)
    sel = kw.fit["selection"]
    assert kw.recipe == "combined" and sel["gain"] > sel["standard_error"]
    assert sel["cv_accuracy"]["combined"] > sel["cv_accuracy"]["homology_first"] + 0.1


def test_a_stored_recipe_is_checked_and_older_files_mean_the_combination(tmp_path):
    kw = comb.fit("metal", CLASSES, _closest_knows(100, 8), select=True)
    comb.Combination({"metal": kw}).save(tmp_path)
    assert comb.load(tmp_path).get("metal").recipe == kw.recipe == "homology_first"
    body = json.loads((tmp_path / comb.FILE).read_text())
    del body["kinds"]["metal"]["recipe"]
    (tmp_path / comb.FILE).write_text(json.dumps(body))
    assert comb.load(tmp_path).get("metal").recipe == "combined"
    body["kinds"]["metal"]["recipe"] = "oracle"
    (tmp_path / comb.FILE).write_text(json.dumps(body))
    with pytest.raises(InputError, match="unknown recipe 'oracle'"):
        comb.load(tmp_path)


def _membrane_like(rng: random.Random, membrane: bool) -> str:
    """A protein whose composition says where it lives: hydrophobic stretches for membrane."""
    core = "".join(rng.choice("LIVFAMW" if membrane and i % 3 else "DEKRSTNQGP") for i in range(120))
    return "M" + core


def test_the_reader_answers_where_no_homolog_is_found(tmp_path):
    """Without homologs and with a model that says one thing for all, the answer was the
    prior for every protein; a reader trained on train sequences tells them apart."""
    from instructprotein.evaluate.baselines import CompositionModel
    from instructprotein.infer.reader import READER_FEATURES, Reader

    rng = random.Random(5)
    classes = ["membrane", "cytoplasm"]

    def items(n):
        out = []
        for _ in range(n):
            truth = rng.choice(classes)
            out.append((_membrane_like(rng, truth == "membrane"), truth))
        return out

    train, valid, test = items(300), items(200), items(200)
    comp = CompositionModel([s for s, _ in train], [t for _, t in train], classes, features=READER_FEATURES)
    reader = Reader(
        [classes[j] for j in comp.present], comp.model.mean, comp.model.scale, comp.model.w, READER_FEATURES
    ).to_dict()
    probe = comb.KindWeights("membrane", classes, {}, 0.0, {}, reader=reader)
    one_answer = np.array([0.3, 0.7])  # the model alone: "cytoplasm" whatever it reads

    def questions(rows):
        reads = probe.read([s for s, _ in rows])
        return [(one_answer, one_answer, Evidence([], read=r), t) for (_, t), r in zip(rows, reads)]

    without = comb.fit("membrane", classes, [(m, a, Evidence([]), t) for m, a, _, t in questions(valid)])
    kw = comb.fit("membrane", classes, questions(valid), reader=reader)
    assert kw.reader is not None and kw.fit["accuracy"]["reader"] > 0.9
    assert kw.weights["reader"] + kw.weights["reader_nohit"] > 0.5

    def accuracy(weights, qs):
        return float(np.mean([classes[int(weights.probabilities(m, a, e).argmax())] == t for m, a, e, t in qs]))

    test_qs = questions(test)
    assert accuracy(kw, test_qs) > 0.9
    assert accuracy(without, [(m, a, Evidence([]), t) for m, a, _, t in test_qs]) < 0.7  # one class for all
    # stored and loaded with its reader, the answers are the same; a damaged reader is refused
    comb.Combination({"membrane": kw}).save(tmp_path)
    back = comb.load(tmp_path).get("membrane")
    assert back is not None and back.reader is not None
    seqs = [s for s, _ in test[:5]]
    assert np.allclose(
        [back.probabilities(one_answer, one_answer, Evidence([], read=r)) for r in back.read(seqs)],
        [kw.probabilities(one_answer, one_answer, Evidence([], read=r)) for r in kw.read(seqs)],
        atol=1e-4,
    )
    body = json.loads((tmp_path / comb.FILE).read_text())
    body["kinds"]["membrane"]["reader"]["weights"] = [[1.0]]
    (tmp_path / comb.FILE).write_text(json.dumps(body))
    with pytest.raises(InputError, match="reader arrays of the wrong shape"):
        comb.load(tmp_path)


def test_the_reader_sees_where_a_signal_sits_which_composition_cannot():
    """A secreted-like protein starts with a hydrophobic stretch; move the same residues to the
    middle and plain composition is unchanged, the reader's termini and hydropathy are not.
    A reader stored before the richer features (composition only) still loads and reads."""
    from instructprotein.evaluate.baselines import CompositionModel
    from instructprotein.infer.reader import COMPOSITION, READER_FEATURES, Reader

    rng = random.Random(11)
    soluble = "ADEKRNQSTGHPY"

    def protein(signal_first: bool) -> str:
        core = "".join(rng.choice(soluble) for _ in range(120))
        signal = "GS" + "".join(rng.choice("LLAIVF") for _ in range(18)) + "GS"
        return "MGS" + (signal + core if signal_first else core[:60] + signal + core[60:])

    def rows(n):
        truth = [rng.random() < 0.5 for _ in range(n)]
        return [protein(t) for t in truth], ["secreted" if t else "cytoplasm" for t in truth]

    classes = ["secreted", "cytoplasm"]
    (train_x, train_y), (test_x, test_y) = rows(300), rows(200)
    for features, at_least, below in ((READER_FEATURES, 0.95, 1.01), (COMPOSITION, 0.0, 0.75)):
        comp = CompositionModel(train_x, train_y, classes, features=features, c=0.1)
        predicted, _ = comp.predict(test_x)
        accuracy = float(np.mean([p == t for p, t in zip(predicted, test_y)]))
        assert at_least <= accuracy < below, (features, accuracy)
        stored = Reader(classes, comp.model.mean, comp.model.scale, comp.model.w, features).to_dict()
        back = Reader.from_dict(json.loads(json.dumps(stored)))
        assert back.features == features
        assert np.allclose(
            back.probabilities(test_x[:5]), comp.model.predict_proba(comp._featurise(test_x[:5])), atol=1e-3
        )
    with pytest.raises(ValueError, match="reader features 'kmer-9'"):
        Reader.from_dict(stored | {"features": "kmer-9"})
