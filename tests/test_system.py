"""The evaluation of the system's answer: model alone, the combination's fit and its stored weights."""

from __future__ import annotations

import hashlib
import json
import random
import shutil

import numpy as np
import pytest

import helpers_model as h
from instructprotein.evaluate import system as sysm
from instructprotein.infer import combine as comb


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture()
def instructions_dir(tmp_path):
    """The helpers' graph split: 3 test, 2 validation, 3 train proteins."""
    split = {"P20001": "test", "P20002": "test", "P20006": "test", "P20003": "valid", "P20005": "valid"}
    return h.instructions_folder(tmp_path / "instr", split)


def _metal_weights() -> comb.KindWeights:
    """A combination of kind metal whose one homolog is always right: validation picks the best hit."""
    rng = random.Random(0)
    qs = []
    for _ in range(60):
        truth = rng.choice(["no", "yes"])
        qs.append((np.array([0.5, 0.5]), None, comb.Evidence([(truth, 0.5)]), truth))
    return comb.fit("metal", ["no", "yes"], qs, select=True)


def _evaluate_metal(model, instructions_dir, out):
    """heldout_metal with retrieval, as the system answers it."""
    from instructprotein.evaluate.runner import evaluate

    return evaluate(
        model,
        ["heldout_metal"],
        out_dir=out,
        instructions_dir=instructions_dir,
        retrieval=True,
        max_identity=0.95,
        plots=False,
    )


def test_model_alone_and_too_small_a_validation_split(instructions_dir, tmp_path):

    model = shutil.copytree(h.model_path(), tmp_path / "model")
    r = _evaluate_metal(model, instructions_dir, tmp_path / "e")
    task = r["tasks"]["heldout_metal"]
    assert task["model_alone"]["n"] == task["n"] == 3
    assert "system" not in task  # two validation proteins: no fit worth storing
    assert "20 needed" in r["combination"]["skipped"]["metal"]
    assert not (model / comb.FILE).exists()


def test_stored_weights_give_the_system_answer(instructions_dir, tmp_path):

    model = shutil.copytree(h.model_path(), tmp_path / "model")
    sha = hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    want = sysm.fingerprint({"weights": {"sha256": sha}}, instructions_dir)
    comb.Combination({"metal": _metal_weights()}, {"fingerprint": want}).save(model)
    r = _evaluate_metal(model, instructions_dir, tmp_path / "e")
    assert r["combination"]["source"].startswith("stored")
    task = r["tasks"]["heldout_metal"]
    system = task["system"]
    assert system["kind"] == "metal" and system["n"] == 3
    assert system["recipe"] == "homology_first" and system["fit"]["selection"]["recipe"] == "homology_first"
    report = (tmp_path / "e" / "report.md").read_text()
    assert "| metal | 60 | homology_first |" in report and "system: best hit, sequence read where none" in report
    rows = [json.loads(x) for x in (tmp_path / "e" / "predictions" / "heldout_metal.jsonl").read_text().splitlines()]
    assert all("system" in row and "model_alone" in row for row in rows)
    # the best hit's recipe answers what the homologs say where they say something
    vote = task["baselines"]["homology_vote"]
    assert system["accuracy"] >= vote["accuracy"] - 1e-9 or vote["coverage"] < 1
    # another model's weights are not used: a refit is tried (and here refused: too few items)
    comb.Combination({"metal": _metal_weights()}, {"fingerprint": {**want, "model_weights_sha256": "0" * 64}}).save(
        model
    )
    r2 = _evaluate_metal(model, instructions_dir, tmp_path / "e2")
    assert "system" not in r2["tasks"]["heldout_metal"] and "metal" in r2["combination"]["skipped"]
    # weights stored before the reader's current features or the recipes' selection are refit too
    for older in (
        {k: v for k, v in want.items() if k != "reader_features"},
        {**want, "reader_features": "x-1"},
        {k: v for k, v in want.items() if k != "recipes"},
    ):
        comb.Combination({"metal": _metal_weights()}, {"fingerprint": older}).save(model)
        r3 = _evaluate_metal(model, instructions_dir, tmp_path / "e3")
        assert "metal" in r3["combination"]["skipped"], older


def _weights(kind: str, classes: list[str], threshold: float | None = None) -> comb.KindWeights:
    rng = random.Random(1)
    qs = []
    for _ in range(60):
        truth = rng.choice(classes)
        qs.append((np.full(len(classes), 1 / len(classes)), None, comb.Evidence([(truth, 0.6)]), truth))
    kw = comb.fit(kind, classes, qs)
    if threshold is not None:
        kw.fit["threshold"] = threshold
    return kw


def test_describe_gives_the_system_answers(tmp_path):
    """With combination weights in the folder, describe's location is the combined distribution
    and its GO terms are verified candidates with a confidence, never generated digits."""
    from instructprotein.infer.model import Model
    from instructprotein.infer.prompts import LOCATION_LABELS

    model = shutil.copytree(h.model_path(), tmp_path / "model")
    kinds = {"location": _weights("location", list(LOCATION_LABELS))}
    kinds |= {f"describe_{a}": _weights(f"describe_{a}", ["no", "yes"], threshold=0.3) for a in "FPC"}
    comb.Combination(kinds, {}).save(model)
    m = Model.load(model, h.kg_path(), device="cpu")
    d = m.describe(h.mutant(h.SEQUENCES["P20001"], 0.9, seed=3), id="q", max_identity=0.95, max_new_tokens=8)
    assert d.system_location is not None
    assert sum(p for _, p in d.system_location) == pytest.approx(1.0)
    assert [p for _, p in d.system_location] == sorted((p for _, p in d.system_location), reverse=True)
    # P20001 is nuclear and binds zinc: the homologs (P20001, P20007) say so, and a vote-led combination follows
    assert d.system_location[0][0] == "nucleus"
    assert d.verified_terms is not None and set(d.verified_terms) == {"F", "P", "C"}
    named = {t.id for ts in d.verified_terms.values() for t in ts}
    assert "GO:0008270" in named  # zinc ion binding, carried by both homologs
    assert all(t.confidence >= 0.3 for ts in d.verified_terms.values() for t in ts)
    text = d.to_text()
    assert "verified (confidence)" in text and "GO F answer" not in text
    body = d.to_dict()
    assert body["system_location"][0]["location"] == "nucleus" and body["go_verified"]["F"]
    # the same folder without weights: the model's own answers, as before
    (model / comb.FILE).unlink()
    plain = Model.load(model, h.kg_path(), device="cpu").describe(
        h.SEQUENCES["P20001"], id="q", max_identity=0.95, max_new_tokens=8
    )
    assert plain.system_location is None and plain.verified_terms is None
