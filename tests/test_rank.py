"""Ranking tasks (``kind: rank``): the paper's SCOPe design ranking and our held-out one.

The model is the random tiny one of ``helpers_model``: the tests check that the ranking
computes the paper's score (checked against a plain forward pass), reads the paper's shipped
sets and SCOPe's description format, refuses what it cannot use with a one-line message,
and builds held-out items whose negatives the protein does not carry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import helpers_model as h
from instructprotein.errors import InputError
from instructprotein.evaluate.tasks import load_task, parse_task

DATA = Path(__file__).parent / "data"
DES = DATA / "scope_des_sample.txt"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def instructions_dir(tmp_path_factory):
    """A hand-made instruction folder over the helpers' graph: 3 test proteins, the rest train."""
    from instructprotein.kg.store import KnowledgeGraph

    d = tmp_path_factory.mktemp("instr")
    (d / "splits").mkdir()
    split = {"P20001": "test", "P20002": "test", "P20006": "test"}
    rows = ["accession\trepresentative\tsplit"] + [f"{a}\t{a}\t{split.get(a, 'train')}" for a in h.SEQUENCES]
    (d / "splits" / "splits.tsv").write_text("\n".join(rows) + "\n")
    with KnowledgeGraph(h.kg_path()) as kg:
        hash_ = kg.meta["content_hash"]
    (d / "splits" / "splits.json").write_text(json.dumps({"inputs": {"kg_content_hash": hash_}, "counts": {}}))
    (d / "instructions.json").write_text(json.dumps({"kg": str(h.kg_path()), "config": {}}))
    return d


def test_packaged_scope_sets_and_builtin_tasks():
    from instructprotein.sources.packaged import packaged_benchmark, packaged_benchmarks, packaged_rank_sets

    names = [p.name for p in packaged_rank_sets()]
    assert names == [
        f"scope_fold_rank_{s}.lm.json.gz" for s in ("test_family", "test_fold", "test_superfamily", "valid")
    ]
    assert not any("scope" in p.name for p in packaged_benchmarks())  # not decontaminated against
    assert packaged_benchmark("scope_fold_rank_test_fold").name == "scope_fold_rank_test_fold.lm.json.gz"
    for name, paper in (("scope_family_rank", 79.24), ("scope_superfamily_rank", 65.07), ("scope_fold_rank", None)):
        spec = load_task(name)
        assert spec.kind == "rank" and spec.format == "scope" and spec.descriptions == "scope_des"
        assert spec.paper.get("accuracy") == paper and spec.homology is None
    spec = load_task("heldout_design_rank")
    assert spec.kind == "rank" and spec.test.heldout == "design_rank" and spec.homology is not None


def test_scope_description_file(tmp_path):
    from instructprotein.evaluate.rank import read_scope_descriptions

    names = read_scope_descriptions(DES)
    assert names["a.1"] == "Globin-like" and names["a.1.1.2"] == "Globins" and names["a"] == "All alpha proteins"
    assert "46464" not in names.values()  # domain rows are not classes
    bad = tmp_path / "bad.txt"
    bad.write_text("46456\tcl\ta\t-\tAll alpha proteins\n46457 cf a.1 - Globin-like\n")
    with pytest.raises(InputError, match="5 tab-separated columns") as exc:
        read_scope_descriptions(bad)
    assert exc.value.line == 2
    bad.write_text("46456\tzz\ta\t-\tAll alpha proteins\n")
    with pytest.raises(InputError, match="level 'zz'"):
        read_scope_descriptions(bad)
    with pytest.raises(InputError, match="dir.des.scope.2.08-stable.txt"):
        read_scope_descriptions(tmp_path / "missing.txt")


def test_scope_task_refused_without_its_file():
    from instructprotein.evaluate.commands import expand_tasks
    from instructprotein.evaluate.rank import resolve_scope_tasks

    with pytest.raises(InputError, match=r"dir\.des\.scope\.2\.08-stable\.txt.*--scope-des"):
        resolve_scope_tasks(["scope_family_rank"], ["scope_family_rank"], None)
    got = resolve_scope_tasks(["all"], expand_tasks(["all"]), None)  # a group leaves them out
    assert "heldout_design_rank" in [s.name for s in got]
    assert not [s for s in got if s.name.startswith("scope_")]
    with pytest.raises(InputError, match="no such file"):
        resolve_scope_tasks(["scope_fold_rank"], ["scope_fold_rank"], "/nonexistent/dir.des.txt")
    got = resolve_scope_tasks(["scope_fold_rank"], ["scope_fold_rank"], DES)
    assert got[0].descriptions == str(DES)


def _naive_mean_logprob(model, tok, request: str, sequence: str) -> tuple[float, int]:
    """Sum of log p(residue tokens | design prompt), one plain forward pass."""
    import torch

    from instructprotein.evaluate.rank import residue_ids
    from instructprotein.infer.prompts import design_prompt

    prompt = tok.encode_batch([design_prompt(request)], add_bos=True)[0].input_ids
    res = residue_ids(tok, sequence)
    ids = torch.tensor([prompt + res])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
    total = sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(res))
    return total, len(res)


def test_scope_task_end_to_end(tmp_path):
    from instructprotein.evaluate.rank import with_scope_descriptions
    from instructprotein.evaluate.runner import evaluate

    spec = with_scope_descriptions(load_task("scope_family_rank"), DES)
    r = evaluate(h.model_path(), [spec], out_dir=tmp_path / "all", plots=False, homology=False)
    t = r["tasks"]["scope_family_rank"]
    assert t["n"] == 2  # records 1 and 3 of test_family are fully described; the rest are skipped, counted
    assert t["data"]["test"]["reading"]["items skipped (an id not in the description file)"] == 1270
    assert t["baselines"]["chance"]["accuracy"] == pytest.approx(0.1)
    assert set(t["ranking"]) == {"mean", "sum"} and t["ranking"]["mean"]["n"] == 2
    assert t["accuracy"] == t["ranking"]["mean"]["accuracy"] and len(t["ci95"]) == 2
    rows = [
        json.loads(x) for x in (tmp_path / "all" / "predictions" / "scope_family_rank.jsonl").read_text().splitlines()
    ]
    assert [row["id"].split("|")[1] for row in rows] == ["d1ecda_", "d1gcva_"]
    first = rows[0]
    assert first["candidates"][0] == "a.1" and first["requests"][0] == "I would like a protein that is in globin-like"
    assert len(first["requests"]) == 10
    model, tok = h.model_and_tokenizer()
    for k in (0, 4):
        total, n = _naive_mean_logprob(model, tok, first["requests"][k], h_sequence_of(first))
        assert first["sum"][k] == pytest.approx(total, abs=2e-2)
        assert first["mean"][k] == pytest.approx(total / n, abs=1e-3)
    report = (tmp_path / "all" / "report.md").read_text()
    assert "scope_family_rank" in report and "Ranking tasks" in report


def h_sequence_of(row: dict) -> str:
    import gzip

    from instructprotein.sources.packaged import packaged_benchmark

    name = row["id"].split("|")[1]
    with gzip.open(packaged_benchmark("scope_fold_rank_test_family"), "rt") as fh:
        for line in fh:
            obj = json.loads(line)
            if obj["name"] == name:
                return obj["sequence"]
    raise KeyError(name)


def test_rank_task_files_and_candidate_data(tmp_path):
    from instructprotein.evaluate.runner import evaluate

    base = {"name": "mine_rank", "kind": "rank", "data": {"test": "c.jsonl"}}
    for change, message in [
        ({"data": {"test": "c.jsonl", "format": "nope"}}, "data.format must be one of"),
        ({"data": {"test": "c.jsonl", "format": "scope"}}, "needs data.descriptions"),
        (
            {"data": {"test": "c.jsonl", "format": "scope", "descriptions": "d.txt"}, "request": "no slot"},
            "{description}",
        ),
        ({"baselines": {"homology": True}}, "homology baseline needs GO candidates"),
        ({"candidates": [" a"]}, "unknown key"),
        ({"data": {"test": {"heldout": "design"}}}, "held-out source is {heldout: design_rank}"),
        ({"data": {"test": {"heldout": "design_rank", "candidates": 1}}}, "candidates must be an integer from 2"),
    ]:
        with pytest.raises(InputError, match=message.replace("{", r"\{").replace("}", r"\}")):
            parse_task({**base, **change}, tmp_path / "t.yaml")
    seq = h.SEQUENCES["P20001"][:60]
    (tmp_path / "c.jsonl").write_text(
        json.dumps(
            {
                "sequence": seq,
                "requests": [
                    "Design a protein that binds zinc ion.",
                    "Design a protein that binds DNA.",
                    "Design a protein that is located in the nucleus.",
                ],
                "answer": 1,
            }
        )
        + "\n"
    )
    (tmp_path / "t.yaml").write_text(json.dumps(base))
    r = evaluate(h.model_path(), [tmp_path / "t.yaml"], out_dir=tmp_path / "o", plots=False, homology=False)
    row = json.loads((tmp_path / "o" / "predictions" / "mine_rank.jsonl").read_text())
    assert row["requests"][0] == "Design a protein that binds DNA." and row["candidates"] == ["1", "0", "2"]
    assert r["tasks"]["mine_rank"]["baselines"]["chance"]["accuracy"] == pytest.approx(1 / 3)
    (tmp_path / "c.jsonl").write_text(json.dumps({"sequence": seq, "requests": ["a", "b"], "answer": 2}) + "\n")
    with pytest.raises(InputError, match="index of the true request") as exc:
        evaluate(h.model_path(), [tmp_path / "t.yaml"], out_dir=tmp_path / "o2", plots=False, homology=False)
    assert exc.value.line == 1


def test_heldout_design_rank_items(instructions_dir, tmp_path):
    from instructprotein.evaluate.heldout import HeldOut
    from instructprotein.evaluate.tasks import Source
    from instructprotein.kg.store import KnowledgeGraph

    ho = HeldOut(instructions_dir, out_dir=tmp_path)
    items = ho.items(Source(heldout="design_rank", candidates=3), seed=1)
    assert items and ho.items(Source(heldout="design_rank", candidates=3), seed=1) == items
    with KnowledgeGraph(h.kg_path()) as kg:
        for item in items:
            carried = {a.entity.id for a in kg.propagated_annotations(item.accession)}
            assert item.terms[0] == item.label and item.label in carried
            assert not (set(item.terms[1:]) & carried)  # negatives: not carried, even by propagation
            aspects = {kg.entity(t).aspect for t in item.terms}
            assert len(aspects) == 1 and len(item.terms) == 3 == len(item.requests)
            assert item.requests[0].startswith("Design a protein that ")
            words = [w for w in kg.entity(item.label).name.lower().split() if len(w) > 3 and w != "binding"]
            assert any(w in item.requests[0].lower() for w in words), (item.label, item.requests[0])
    assert (tmp_path / "heldout" / "design_rank_test.jsonl").is_file()


def test_heldout_design_rank_through_the_runner(instructions_dir, tmp_path):
    from instructprotein.evaluate.runner import evaluate

    spec = parse_task(
        {"name": "small_design_rank", "kind": "rank", "data": {"test": {"heldout": "design_rank", "candidates": 3}}}
    )
    r = evaluate(h.model_path(), [spec], out_dir=tmp_path, instructions_dir=instructions_dir, plots=False)
    t = r["tasks"]["small_design_rank"]
    assert t["n"] >= 1 and set(t["baselines"]) == {"chance", "homology"}
    hom = t["baselines"]["homology"]
    assert 0 <= hom["accuracy"] <= 1 and hom["n"] == t["n"] and "coverage" in hom
    rows = [json.loads(x) for x in (tmp_path / "predictions" / "small_design_rank.jsonl").read_text().splitlines()]
    for row in rows:  # the closest protein is a training protein
        assert row["homology"]["closest"] not in {"P20001", "P20002", "P20006"}


def test_homology_ranking_rule():
    from types import SimpleNamespace

    from instructprotein.evaluate.data import Item
    from instructprotein.evaluate.rank import homology_ranks

    carries = {"Q1": frozenset({"GO:1", "GO:9"}), "Q2": frozenset({"GO:2", "GO:3"})}
    side = SimpleNamespace(
        hits={
            "AAA": [SimpleNamespace(accession="Q1", identity=0.5)],
            "CCC": [SimpleNamespace(accession="Q2", identity=0.4)],
        },
        propagated=lambda acc: carries[acc],
    )
    items = [
        Item("a", "AAA", "GO:1", terms=("GO:1", "GO:2", "GO:3")),  # only the true one carried: rank 1
        Item("b", "CCC", "GO:1", terms=("GO:1", "GO:2", "GO:4")),  # a negative carried: behind it
        Item("c", "DDD", "GO:1", terms=("GO:1", "GO:2", "GO:3")),
    ]  # no hit: a draw
    correct, ranks, rows = homology_ranks(items, side, seed=0)
    assert correct[:2] == [True, False] and ranks[0] == 1.0 and ranks[1] in (2.0, 3.0)
    assert rows[0] == {"closest": "Q1", "identity": 0.5, "carries": ["GO:1"]} and rows[2]["closest"] is None
    assert homology_ranks(items, side, seed=0) == (correct, ranks, rows)  # seeded
