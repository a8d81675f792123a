"""Evaluation: statistics, scoring rules, task files, baselines (the runs: test_evaluate_runs.py).

The model is the random tiny one of ``helpers_model`` (no training: the tests check that the
evaluation computes the right numbers from whatever weights it gets). Homology transfer runs
MMseqs2 against the helpers' graph, whose P20007 is P20001 with 20 % of residues substituted;
its label logic is also checked on the 3-protein graph of ``tests/data/tiny.dat``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import helpers_model as h
from helpers_tasks import task_dict
from instructprotein.errors import InputError
from instructprotein.evaluate import stats
from instructprotein.evaluate.baselines import (
    TermFrequency,
    composition_classifier,
    homology_predictions,
    majority_class,
)
from instructprotein.evaluate.tasks import (
    builtin_tasks,
    list_tasks,
    load_task,
    parse_task,
)
from instructprotein.infer.retrieval import Homolog

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def tiny_kg(tmp_path_factory):
    """The 3-protein graph of tests/data/tiny.dat + tiny.obo."""
    from instructprotein.formats.obo import read_obo
    from instructprotein.kg.inputs import build_from_uniprot
    from instructprotein.kg.store import KnowledgeGraph

    out = tmp_path_factory.mktemp("tinykg") / "kg.sqlite"
    build_from_uniprot([DATA / "tiny.dat"], read_obo(DATA / "tiny.obo"), out)
    with KnowledgeGraph(out) as kg:
        yield kg


# -- statistics ---------------------------------------------------------------------------------------------


def test_wilson_interval_matches_hand_computation():
    # 8 of 10: p = 0.8, z = 1.96: centre (0.8 + 1.9208/10) / 1.38415 = 0.71677,
    # half-width 1.96 * sqrt(0.016 + 0.00960) / 1.38415 = 0.22658 -> [0.4902, 0.9433]
    lo, hi = stats.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert stats.wilson(0, 10)[0] == pytest.approx(0.0) and stats.wilson(10, 10)[1] == pytest.approx(1.0)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    s = stats.accuracy_summary([True] * 8 + [False] * 2)
    assert s["accuracy"] == 0.8 and s["n"] == 10 and s["ci95"][0] == pytest.approx(lo)
    with pytest.raises(ValueError):
        stats.wilson(11, 10)


def test_average_precision_and_bootstrap():
    # ranks: + - + -: AP = 1/2 * 1 + 1/2 * 2/3 = 0.8333
    ap = stats.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])
    assert ap == pytest.approx(5 / 6)
    # ties enter together: all equal -> precision = prevalence
    assert stats.average_precision([0.5] * 4, [1, 0, 1, 0]) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.4
    s = y + rng.normal(0, 0.8, 400)
    lo, hi = stats.bootstrap_average_precision(s, y, resamples=300)
    assert lo < stats.average_precision(s, y) < hi
    acc, thr = stats.best_threshold_accuracy([5, 4, 3, 2, 1], [1, 1, 0, 1, 0])
    assert acc == pytest.approx(0.8) and thr in (4.0, 2.0)


def test_calibration_and_confusion():
    cal = stats.calibration([0.95, 0.95, 0.55, 0.55], [True, True, True, False], bins=10)
    assert cal["ece"] == pytest.approx((2 * 0.05 + 2 * 0.05) / 4)
    m = stats.confusion([0, 0, 1, 2], [0, 1, 1, 1], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    pc = stats.per_class(m, ["a", "b", "c"])
    assert pc["a"]["accuracy"] == 0.5 and pc["c"]["accuracy"] == 0.0


# -- scoring ------------------------------------------------------------------------------------------------


def test_grouped_scoring_agrees_with_classify_naive():
    from instructprotein.evaluate.scoring import score_grouped
    from instructprotein.infer.classify import decide, score_naive
    from instructprotein.infer.prompts import build_prompt

    model, tok = h.model_and_tokenizer()
    seqs = [h.SEQUENCES["P20001"][:150], h.SEQUENCES["P20002"][:90], h.SEQUENCES["P20003"][:60]]
    terms = ["zinc ion binding", "DNA binding", "metal ion binding"]
    prompts, groups = [], []
    for s in seqs:
        for t in terms:
            prompts.append(
                build_prompt(s, f"Does the protein associate with {t}?", "Based on the record, the answer is")
            )
            groups.append(s)
    cands = [" no", " yes", " nucleus", " endoplasmic reticulum"]
    # max_rows=5 forces several chunks on one cached prefix
    fast = score_grouped(model, tok, prompts, cands, groups, max_rows=5)
    ref = score_naive(model, tok, prompts, [c.strip() for c in cands])
    for a, b in zip(fast, ref):
        assert a.token_counts == b.token_counts
        np.testing.assert_allclose(a.first_token, b.first_token, atol=1e-4)
        np.testing.assert_allclose(a.total, b.total, atol=1e-4)
        for rule in ("first_token", "sum"):
            assert decide(a, rule).index == decide(b, rule).index
    # one prompt per group is classify's own scheme
    alone = score_grouped(model, tok, prompts[:2], cands)
    np.testing.assert_allclose(alone[1].total, ref[1].total, atol=1e-4)


# -- task files ---------------------------------------------------------------------------------------------


def test_builtin_tasks_load():
    names = [n for n, _ in list_tasks()]
    for want in (
        "deeploc10",
        "deeploc_binary",
        "deeploc_binary_direct",
        "metal_ion_binding",
        "go_mf",
        "heldout_location",
        "heldout_metal",
        "heldout_go_mf",
        "heldout_go_bp",
        "heldout_go_cc",
    ):
        assert want in names
    loc = load_task("deeploc10")
    assert loc.question == "What cellular components is the protein located in?"
    assert loc.prefix == "The protein is located in"
    assert next(iter(loc.candidates)) == " plasma membrane" and len(loc.classes) == 10
    assert loc.paper == {"accuracy": 70.79}
    binary = load_task("deeploc_binary")
    membrane = {c.strip() for c, cls in binary.candidates.items() if cls == "membrane-bound"}
    assert membrane == {"plasma membrane", "golgi", "vacuole", "endoplasmic reticulum"}
    metal = load_task("metal_ion_binding")
    assert metal.question == "Does the protein associate with metal ion binding?"
    assert metal.prefix == "Based on the record, the answer is" and list(metal.candidates) == [" no", " yes"]
    assert (metal.cut_above, metal.keep) == (1024, 1000)
    go = load_task("go_mf")
    assert go.format == "go_pairs" and go.uses_terms and go.positive == "yes" and go.term_frequency
    assert set(builtin_tasks()) >= set(names)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"candidates": None}, "missing required field 'candidates'"),
        ({"data": {"train": "x.jsonl"}}, "data.test"),
        ({"prompt": {"prefix": "The answer is"}}, "either 'question'"),
        ({"candidates": [" yes"]}, "at least two candidates"),
        ({"labels": {"0": "no", "1": "maybe"}}, "'maybe', not among the candidates"),
        ({"metrics": ["accuracy", "f2"]}, "metrics"),
        ({"colour": "red"}, "unknown key(s) in the task: colour"),
        ({"prompt": {"question": "Is {thing} here?"}}, "unknown slot"),
        ({"baselines": {"composition": True}}, "needs data.train"),
        ({"baselines": {"homology": {"rule": "carries_term"}}}, "GO:nnnnnnn"),
        ({"metrics": ["aupr"]}, "positive"),
    ],
)
def test_bad_task_files(tmp_path, changes, message):
    path = tmp_path / "task.yaml"
    import yaml

    path.write_text(yaml.safe_dump(task_dict(**changes)))
    with pytest.raises(InputError) as err:
        load_task(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_task_name_lists_builtins():
    with pytest.raises(InputError, match="deeploc10"):
        load_task("no_such_task")


# -- baselines on hand-made data -------------------------------------------------------------------------------


def test_majority_class_and_composition_on_separable_data():
    assert majority_class(["b", "a", "b"], ["a", "b"]) == "b"
    assert majority_class(["a", "b"], ["b", "a"]) == "b"  # tie: the task's class order
    rng = np.random.default_rng(1)

    def seq(rich: str, n: int = 120) -> str:
        pool = "ACDEFGHIKLMNPQRSTVWY"
        return "".join(rich if rng.random() < 0.4 else pool[rng.integers(20)] for _ in range(n))

    train = [seq("K") for _ in range(30)] + [seq("E") for _ in range(30)]
    labels = ["basic"] * 30 + ["acidic"] * 30
    test = [seq("K") for _ in range(10)] + [seq("E") for _ in range(10)]
    pred, prob, info = composition_classifier(train, labels, test, ["acidic", "basic"])
    assert pred == ["basic"] * 10 + ["acidic"] * 10
    assert prob.shape == (20, 2) and np.allclose(prob.sum(axis=1), 1)
    assert info["features"] == 420 and info["c"] in (0.1, 0.01, 0.001)


def test_homology_labels_on_tiny_graph(tiny_kg):
    from instructprotein.evaluate.data import Item
    from instructprotein.evaluate.homology_side import _homology_baseline, _HomologySide

    side = _HomologySide(tiny_kg, frozenset(), 0.7, {"top_k": 5, "sensitivity": 4.0, "max_seqs": 100})

    def hom(acc, ident):
        return Homolog("q", acc, ident, 1e-10, 50.0, 10, 1.0, 1.0)

    # item 0: best hit Q00003 has no MF term (no label) -> Q00002 (metal) decides; item 1: no hit -> fallback
    side.hits = {"AAAA": [hom("Q00003", 0.6), hom("Q00002", 0.5), hom("Q00001", 0.4)], "CCCC": []}
    items = [Item("a", "AAAA", "yes"), Item("b", "CCCC", "no")]
    metal = parse_task(
        task_dict(
            labels={"0": "no", "1": "yes"}, baselines={"homology": {"rule": "carries_term", "term": "GO:0046872"}}
        )
    )
    h_ = _homology_baseline(metal, items, side, fallback="no")
    assert h_["best"] == ["yes", "no"] and h_["vote"] == ["yes", "no"]
    assert h_["covered"] == [True, False] and h_["identity"][0] == 0.5
    # location: Q00001's nuclear lumen is part of the nucleus
    loc = parse_task(
        {
            **task_dict(),
            "candidates": [" nucleus", " cytoplasm"],
            "baselines": {
                "homology": {
                    "rule": "location",
                    "class_of": {
                        c: ("nucleus" if c == "nucleus" else "cytoplasm")
                        for c in [
                            "plasma membrane",
                            "cytoplasm",
                            "endoplasmic reticulum",
                            "golgi",
                            "vacuole",
                            "mitochondrion",
                            "nucleus",
                            "peroxisome",
                            "chloroplast",
                            "extracellular",
                        ]
                    },
                }
            },
        }
    )
    h_ = _homology_baseline(loc, items, side, fallback="cytoplasm")
    assert h_["best"] == ["nucleus", "cytoplasm"] and h_["covered"] == [True, False]
    # item_term: yes when the hit carries the asked term by propagation
    go_items = [Item("c", "AAAA", "yes", term="GO:0043167"), Item("d", "AAAA", "no", term="GO:0046914")]
    side.hits["AAAA"] = [hom("Q00001", 0.6)]
    go = parse_task(
        {
            **task_dict(),
            "data": {"test": "x.jsonl", "format": "go_pairs"},
            "prompt": {"question": "Does the protein associate with {term}?"},
            "baselines": {"homology": {"rule": "item_term"}},
        }
    )
    h_ = _homology_baseline(go, go_items, side, fallback="no")
    assert h_["best"] == ["yes", "yes"]
    from instructprotein.evaluate.data import go_sqlite_aspect

    if go_sqlite_aspect("GO:0140096") == "F":  # a term newer than the graph: a homolog with MF terms says no
        newer = [Item("e", "AAAA", "no", term="GO:0140096")]
        assert _homology_baseline(go, newer, side, fallback="yes")["best"] == ["no"]


def test_identity_weighted_vote():
    hits = [
        [
            Homolog("q", "A", 0.6, 0, 0, 0, 0, 0),
            Homolog("q", "B", 0.5, 0, 0, 0, 0, 0),
            Homolog("q", "C", 0.45, 0, 0, 0, 0, 0),
        ]
    ]
    labels = {"A": "x", "B": "y", "C": "y"}
    r = homology_predictions(hits, lambda i, acc: labels[acc], k=3, fallback="z")
    assert r["best"] == ["x"] and r["vote"] == ["y"]
    r = homology_predictions(hits, lambda i, acc: labels[acc], k=1, fallback="z")
    assert r["vote"] == ["x"]


def test_term_frequency_prior(tiny_kg):
    tf = TermFrequency(tiny_kg)
    assert tf("GO:0046872") == 2 and tf("GO:0008270") == 2 and tf("GO:0005634") == 1
    assert TermFrequency(tiny_kg, {"Q00001"})("GO:0046872") == 1
    assert tf("GO:9999999") == 0


def test_location_mapper():
    from instructprotein.instruct.compartments import LocationMapper
    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(h.kg_path()) as kg:
        m = LocationMapper(kg)
        labels = m.labels(["P20007", "P20005", "P20002", "P20004"])
    # nuclear lumen -> nucleus; cytosol -> cytoplasm; mitochondrion (part of nothing here); no CC -> None
    assert labels == {"P20007": "nucleus", "P20005": "cytoplasm", "P20002": "mitochondrion", "P20004": None}
    assert m.classes_of_terms(["GO:0005737", "GO:0005739"]) == ["mitochondrion", "cytoplasm"]


def test_task_limits_cap_named_tasks_below_the_run_limit():
    """The main job scores a seeded share of the paper's largest set; the others stay whole."""
    from instructprotein.evaluate.run_inputs import RunInputs, read_task_data
    from instructprotein.evaluate.tasks import load_task
    from instructprotein.progress import Progress

    specs = [load_task("metal_ion_binding"), load_task("deeploc_binary")]
    src = RunInputs(None, None, None, {}, frozenset(), {}, 0.7)
    whole = read_task_data(specs, src, limit=None, seed=0, progress=Progress())
    capped = read_task_data(specs, src, limit=None, seed=0, progress=Progress(), task_limits={"metal_ion_binding": 30})
    assert len(capped["metal_ion_binding"].items) == 30 < len(whole["metal_ion_binding"].items)
    assert capped["metal_ion_binding"].info["test"]["sampled"].startswith("30 of ")
    assert len(capped["deeploc_binary"].items) == len(whole["deeploc_binary"].items)
    assert "sampled" not in capped["deeploc_binary"].info["test"]
    both = read_task_data(specs, src, limit=20, seed=0, progress=Progress(), task_limits={"metal_ion_binding": 30})
    assert len(both["metal_ion_binding"].items) == len(both["deeploc_binary"].items) == 20  # the smaller cap wins
    again = read_task_data(specs, src, limit=None, seed=0, progress=Progress(), task_limits={"metal_ion_binding": 30})
    assert [i.id for i in again["metal_ion_binding"].items] == [i.id for i in capped["metal_ion_binding"].items]
