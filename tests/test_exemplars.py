"""Exemplar-conditioned design and the model's own verification score.

The model is the random tiny one of ``helpers_model``; the graph's P20001 carries zinc ion
binding (GO:0008270), P20002 copper ion binding, and P20007 is P20001 at 80 % identity.
The tests check that exemplars are the proteins carrying the request, that a rewrite keeps
the share of the exemplar the rate says, that the verification score is the difference of
two plain forward passes, and that design() ranks and reports what the issue asks for.
"""

from __future__ import annotations

import pytest
import torch

import helpers_model as h
from instructprotein.errors import InputError
from instructprotein.infer.exemplars import (
    NEUTRAL_REQUEST,
    find_exemplars,
    identity_of,
    request_gain,
    rewrite_exemplars,
)
from instructprotein.infer.generate import design
from instructprotein.infer.prompts import design_prompt
from instructprotein.infer.retrieval import ProteinIndex
from instructprotein.infer.terms import TermIndex
from instructprotein.kg.store import KnowledgeGraph


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def mt():
    return h.model_and_tokenizer()


@pytest.fixture(scope="module")
def kg():
    with KnowledgeGraph(h.kg_path()) as graph:
        yield graph


def test_exemplars_carry_the_request(kg):
    zinc = set(kg.proteins_with("GO:0008270"))
    got = find_exemplars(kg, ["GO:0008270"], n=10, seed=0)
    assert got and {e.accession for e in got} <= zinc and all(e.carried == e.of == 1 for e in got)
    assert find_exemplars(kg, ["GO:0008270"], n=10, seed=0) == got  # seeded
    kept = find_exemplars(kg, ["GO:0008270"], n=10, seed=0, exclude=frozenset({"P20001"}))
    assert "P20001" not in {e.accession for e in kept}
    # two terms: the proteins carrying both come first and alone
    both = find_exemplars(kg, ["GO:0008270", "GO:0005634"], n=10, seed=0)
    carriers = zinc & set(kg.proteins_with("GO:0005634"))
    if carriers:
        assert {e.accession for e in both} <= carriers and all(e.carried == 2 for e in both)
    assert find_exemplars(kg, ["GO:9999999"], n=3) == []
    assert find_exemplars(kg, ["GO:0008270"], n=3, max_len=5) == []  # none short enough


def test_rewrite_keeps_about_one_minus_rate(mt):
    model, tok = mt
    ex = h.SEQUENCES["P20001"][:150]
    prompt = design_prompt("Design a protein that binds zinc ion.")
    a = rewrite_exemplars(model, tok, prompt, [ex, ex], rate=0.4, seed=3)
    assert a == rewrite_exemplars(model, tok, prompt, [ex, ex], rate=0.4, seed=3)
    for s in a:
        assert len(s) == len(ex) and set(s) <= set("ACDEFGHIKLMNPQRSTVWY")
        assert 0.45 < identity_of(s, ex) < 0.75
    assert identity_of(rewrite_exemplars(model, tok, prompt, [ex], rate=0.1, seed=3)[0], ex) > 0.8
    with pytest.raises(ValueError):
        rewrite_exemplars(model, tok, prompt, [ex], rate=1.0)


def test_request_gain_is_two_forward_passes(mt):
    model, tok = mt
    seqs = [h.SEQUENCES["P20001"][:80], "", h.SEQUENCES["P20002"][:40]]
    q = "Design a protein that binds zinc ion."
    got = request_gain(model, tok, q, seqs, batch=3)
    assert got[1] is None

    def mean_logp(question: str, seq: str) -> float:
        p = tok.encode(design_prompt(question))
        res = [tok.residue_ids[a] for a in seq]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([p + res])).logits.float(), -1)[0]
        return sum(float(logp[len(p) - 1 + i, t]) for i, t in enumerate(res)) / len(res)

    for k in (0, 2):
        assert got[k] == pytest.approx(mean_logp(q, seqs[k]) - mean_logp(NEUTRAL_REQUEST, seqs[k]), abs=1e-4)


def test_exemplar_design_reports_closest_carried_and_verification(mt, kg):
    model, tok = mt
    terms, index = TermIndex(kg), ProteinIndex(kg)
    run = design(model, tok, "binds zinc ion", n=2, seed=1, min_len=30, terms=terms, index=index, candidates=4)
    assert run.settings["strategy"] == "exemplar" and run.settings["candidates"] == 4
    assert [d.id for d in run.designs] == ["design1", "design2"]
    zinc = set(kg.proteins_with("GO:0008270"))
    for d in run.designs:
        row = d.to_dict()
        assert d.ended_by == "exemplar" and d.exemplar.accession in zinc
        assert row["exemplar_identity"] < 0.75 and isinstance(row["verification"], float)
        assert row["closest"] is not None and row["closest_identity"] is not None
        assert row["carries_request"] is (row["closest"] in zinc)
    plain = design(
        model, tok, "binds zinc ion", n=2, seed=1, min_len=30, max_len=60, terms=terms, index=index, strategy="sample"
    )
    assert plain.settings["strategy"] == "sample" and all(d.exemplar is None for d in plain.designs)
    assert all(d.verification is not None for d in plain.designs)
    with pytest.raises(InputError, match="exemplar design needs a knowledge graph"):
        design(model, tok, "binds zinc ion", n=1, strategy="exemplar")
    with pytest.raises(InputError, match="strategy must be one of"):
        design(model, tok, "binds zinc ion", n=1, strategy="best")
    with pytest.raises(InputError, match="candidates"):
        design(model, tok, "binds zinc ion", n=3, candidates=2, check=False)


def test_design_command_shows_closest_carried_and_verification(tmp_path):
    from instructprotein.infer.commands import CHECK_COLUMNS, design_command

    shown: list[str] = []
    run = design_command(
        h.model_path(),
        "binds zinc ion",
        n=2,
        kg_path=h.kg_path(),
        out=tmp_path / "d.fasta",
        checks_out=tmp_path / "d.tsv",
        min_len=30,
        seed=2,
        echo=shown.append,
    )
    heads = [x for x in (tmp_path / "d.fasta").read_text().splitlines() if x.startswith(">")]
    assert len(heads) == 2 and all("verification=" in x and "exemplar=" in x and "closest=" in x for x in heads)
    rows = [x.split("\t") for x in (tmp_path / "d.tsv").read_text().splitlines()]
    assert rows[0] == list(CHECK_COLUMNS)
    col = {name: i for i, name in enumerate(rows[0])}
    for row, d in zip(rows[1:], run.designs):
        assert row[col["carries_request"]] in ("yes", "no") and row[col["exemplar"]] == d.exemplar.accession
        assert float(row[col["verification"]]) == pytest.approx(d.verification, abs=1e-3)
    assert any("strategy: exemplar, best 2 of 4 candidates" in s for s in shown)


def test_design_task_with_exemplars_carries_the_request(tmp_path):
    import json

    from instructprotein.evaluate.runner import evaluate

    (tmp_path / "d.jsonl").write_text(json.dumps({"request": "binds zinc ion", "terms": ["GO:0008270"]}) + "\n")
    for strategy in ("exemplar", "sample"):
        (tmp_path / f"{strategy}.yaml").write_text(
            f"name: d_{strategy}\nkind: design\ndata: {{test: d.jsonl}}\nmetrics: [validity, novelty, consistency]\n"
            f"sampling: {{per_request: 2, candidates: 2, min_len: 30, seed: 1, strategy: {strategy}}}\n"
        )
    r = evaluate(
        h.model_path(),
        [tmp_path / "exemplar.yaml", tmp_path / "sample.yaml"],
        out_dir=tmp_path / "o",
        kg=h.kg_path(),
        plots=False,
    )
    ex, plain = r["tasks"]["d_exemplar"]["design"], r["tasks"]["d_sample"]["design"]
    st = ex["model"]["strategy"]
    assert st["from_exemplar"] == 2 and st["mean_identity_to_exemplar"] < 0.75
    assert plain["model"]["strategy"]["from_exemplar"] == 0
    # a design ~60 % identical to a zinc binder finds a zinc binder as its closest protein; its shuffle does not
    assert ex["model"]["consistency"]["consistent_fraction"] == 1.0
    assert ex["shuffled"]["consistency"]["consistent_fraction"] == 0.0
    assert all(x < 0.75 for x in ex["model"]["identity_of_closest"])
    rows = [json.loads(x) for x in (tmp_path / "o" / "predictions" / "d_exemplar.jsonl").read_text().splitlines()]
    zinc = set(h_kg_carriers("GO:0008270"))
    assert all(row["exemplar"] in zinc and isinstance(row["verification"], float) for row in rows)
    assert "rewritten from a training protein" in (tmp_path / "o" / "report.md").read_text()


def h_kg_carriers(term: str) -> list[str]:
    with KnowledgeGraph(h.kg_path()) as graph:
        return graph.proteins_with(term)
