"""describe: GO terms mapped to real ids and closed under the ontology; bad input; the commands."""

from __future__ import annotations

import json

import pytest

import helpers_model as h
from instructprotein.errors import InputError
from instructprotein.infer.commands import classify_command, describe_command, design_command
from instructprotein.infer.describe import describe
from instructprotein.infer.inputs import Query, check_description, clean_sequence, read_queries
from instructprotein.infer.model import Model
from instructprotein.infer.prompts import LOCATION_LABELS
from instructprotein.infer.terms import TermIndex
from instructprotein.kg.store import KnowledgeGraph

ZINC_ANCESTORS = ["GO:0046914", "GO:0046872", "GO:0043169", "GO:0043167", "GO:0005488"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def mt():
    return h.model_and_tokenizer()


@pytest.fixture(scope="module")
def terms():
    with KnowledgeGraph(h.kg_path()) as kg:
        yield TermIndex(kg)


# -- GO terms from text -----------------------------------------------------------------------------------


def test_zinc_ion_binding_maps_with_its_ancestors(terms):
    found = terms.find("zinc ion binding")
    assert [(m.term.id, m.matched_by) for m in found.direct] == [("GO:0008270", "name")]
    assert [t.id for t, _ in found.implied] == ZINC_ANCESTORS  # nearest first, root left out
    assert all(by == "GO:0008270" for _, by in found.implied)
    assert found.ids == ["GO:0008270", *ZINC_ANCESTORS] and found.unmatched == []


def test_unknown_phrase_maps_to_nothing(terms):
    for text in ("flux capacitor activity", "The protein is a mystery.", ""):
        found = terms.find(text)
        assert found.direct == [] and found.implied == []
        assert found.summary() == "names no GO term known to the knowledge graph"
    assert terms.find("flux capacitor activity").unmatched == ["flux capacitor activity"]
    # an id the graph does not know is never passed on
    found = terms.find("GO:1234567 flux capacitor")
    assert found.ids == [] and found.unmatched == ["GO:1234567 flux capacitor"]


def test_answers_in_template_wording(terms):
    f = terms.find("The protein binds zinc ion, binds DNA and has protein kinase activity.")
    assert [m.term.id for m in f.direct] == ["GO:0008270", "GO:0003677", "GO:0004672"]
    loc = terms.find("The protein is located in nucleus and cytoplasm.")
    assert [m.term.id for m in loc.direct] == ["GO:0005634", "GO:0005737"]
    lines = terms.find("GO:0008270 zinc ion binding\nGO:0005739 mitochondrion")
    assert [m.term.id for m in lines.direct] == ["GO:0008270", "GO:0005739"]
    chain = terms.find(
        "Zinc ion binding is a kind of transition metal ion binding, which is a kind of metal ion binding."
    )
    assert [m.term.id for m in chain.most_specific] == ["GO:0008270"]
    assert chain.unmatched == []
    # a design request names terms mid-sentence, joined by "with", "located in", "that"
    req = terms.find("a protein with protein kinase activity located in the nucleus")
    assert [m.term.id for m in req.direct] == ["GO:0004672", "GO:0005634"] and req.unmatched == []
    req = terms.find("Design a protein that binds zinc ion and is located in mitochondrion.")
    assert [m.term.id for m in req.direct] == ["GO:0008270", "GO:0005739"] and req.unmatched == []
    # the adjectives people write: "zinc-binding" (a synonym, "zinc binding", names the term), "nuclear"
    req = terms.find("a zinc-binding protein located in the nucleus")
    assert [m.term.id for m in req.direct] == ["GO:0008270", "GO:0005634"] and req.unmatched == []
    req = terms.find("Design a small nuclear protein")
    assert [m.term.id for m in req.direct] == ["GO:0005634"]
    assert [m.term.id for m in terms.find("DNA-binding domain").direct] == ["GO:0003677"]
    req = terms.find("a calcium-binding protein in the mitochondrion")  # no synonym "calcium binding": + "ion"
    assert [m.term.id for m in req.direct] == ["GO:0005509", "GO:0005739"]
    assert terms.find("a nuclear receptor").direct == []  # only "<place> protein" names a place


def test_synonyms_case_and_fuzzy(terms):
    assert terms.lookup("Zinc Binding").matched_by == "synonym (case-insensitive)"
    assert terms.lookup("cell nucleus").term.id == "GO:0005634"
    assert terms.lookup("ZINC ION BINDING").matched_by == "name (case-insensitive)"
    assert terms.lookup("zinc ion bindng") is None
    fuzzy = terms.lookup("zinc ion bindng", fuzzy=True)
    assert fuzzy.term.id == "GO:0008270" and fuzzy.matched_by.startswith("fuzzy")
    # a right id with a wrong name: the name wins, and the disagreement is noted
    [m] = terms.find("GO:0005634 zinc ion binding").direct
    assert m.term.id == "GO:0008270" and "GO:0005634" in m.note


# -- describe ---------------------------------------------------------------------------------------------


def test_describe_answers_terms_and_location(mt, terms):
    model, tok = mt
    [d] = describe(model, tok, Query("P20001", h.SEQUENCES["P20001"]), terms=terms, max_new_tokens=24)
    assert d.id == "P20001" and d.length == d.model_length == len(h.SEQUENCES["P20001"])
    assert set(d.go_answers) == {"F", "P", "C"}
    probs = dict(d.location_probabilities)
    assert set(probs) == set(LOCATION_LABELS) and sum(probs.values()) == pytest.approx(1.0)
    assert d.location_scores.answer == max(probs, key=probs.get)
    assert d.terms is not None
    # whatever the random model wrote, every id reported is one the graph knows
    assert all(terms.by_id(i) is not None for i in d.terms.ids)
    if not d.terms.direct:
        assert any("names no GO term" in n for n in d.notes)
    obj = json.loads(json.dumps(d.to_dict()))
    assert obj["go_terms"]["summary"] and obj["homologs"] == [] and obj["retrieval_context"] is None
    assert d.to_text().startswith("# P20001")


def test_batched_generation_equals_one_at_a_time(mt):
    """Prompts of different lengths share a left-padded batch without changing any answer."""
    from instructprotein.infer.generate import generate_answers
    from instructprotein.infer.prompts import FUNCTION_QUESTION, LOCATION_QUESTION, build_prompt

    model, tok = mt
    prompts = [
        build_prompt(h.SEQUENCES["P20001"][:40], FUNCTION_QUESTION),
        build_prompt(h.SEQUENCES["P20002"], LOCATION_QUESTION),
    ]
    batched = generate_answers(model, tok, prompts, max_new_tokens=12)
    assert batched == [generate_answers(model, tok, [p], max_new_tokens=12)[0] for p in prompts]
    assert not any("Ƥ" in a or "</protein>" in a for a in batched)  # no residue tokens in text answers

    # a prompt that leaves little room does not shorten its neighbours' answers
    ctx = model.config.max_position_embeddings
    room = 12
    long_protein = h.random_protein(ctx, seed=9)
    long_prompt = next(
        build_prompt(long_protein[:n], FUNCTION_QUESTION)
        for n in range(ctx, 0, -1)
        if len(tok.encode(build_prompt(long_protein[:n], FUNCTION_QUESTION))) <= ctx - room
    )
    mixed = generate_answers(model, tok, [prompts[0], long_prompt], max_new_tokens=40)
    assert mixed[0] == generate_answers(model, tok, [prompts[0]], max_new_tokens=40)[0]
    assert mixed[1] == generate_answers(model, tok, [long_prompt], max_new_tokens=40)[0]


def test_too_long_for_the_model_is_fitted_and_said(mt):
    model, tok = mt
    d = describe(model, tok, Query("big1", h.random_protein(900, seed=4)), max_new_tokens=8)[0]
    assert d.length == 900 and 300 < d.model_length <= 512 - 128  # answer_room(512) = 128 tokens kept free
    assert any("read" in n and "one X" in n for n in d.notes) and f"read {d.model_length} of them" in d.to_text()


# -- input handling (issue item 8) ------------------------------------------------------------------------


def test_sequence_cleaning():
    assert clean_sequence("mkt ay\nia*") == "MKTAYIA"
    assert clean_sequence("MKUOBZJ") == "MKCKXXX"  # tokenizer's mapping of non-standard residues
    for bad, match in (
        ("", "empty"),
        ("  \n ", "empty"),
        ("*", "empty"),
        ("MK1TA", "'1' at position 3 is a digit"),
        ("MK-TA", "gap"),
        ("MK@A", "'@' at position 3"),
        ("MK*TA", "stop"),
        ("MKÅA", "position 3"),
    ):
        with pytest.raises(InputError, match=match):
            clean_sequence(bad)


def test_reading_queries(tmp_path):
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">a first\nmkt ay\nIAK\n>b\nMKV*\n")
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"id": "c", "sequence": "mkl"}\n\n{"sequence": "MKW"}\n')
    got = read_queries([str(fasta), jsonl, "mkq", ">d\nMKE\n>a\nMKD"])
    assert [(q.id, q.sequence) for q in got] == [
        ("a", "MKTAYIAK"),
        ("b", "MKV"),
        ("c", "MKL"),
        ("line3", "MKW"),
        ("seq1", "MKQ"),
        ("d", "MKE"),
        ("a#2", "MKD"),
    ]
    bad = tmp_path / "bad.fasta"
    bad.write_text(">x\nMKT\nMK3A\n")
    with pytest.raises(InputError, match=r"bad.fasta:3: .*digit"):
        read_queries(str(bad))
    with pytest.raises(InputError, match="empty sequence"):
        read_queries(">x\n\n>y\nMK")
    with pytest.raises(InputError, match="no such file"):
        read_queries("missing/file.fasta")
    with pytest.raises(InputError, match="no sequences"):
        read_queries([])
    (tmp_path / "broken.jsonl").write_text('{"sequence": "MK"}\n{"seq": 1}\n')
    with pytest.raises(InputError, match=r"broken.jsonl:2"):
        read_queries(str(tmp_path / "broken.jsonl"))
    assert check_description("  binds   zinc\nion ") == "binds zinc ion"


def test_missing_model_folder(tmp_path):
    with pytest.raises(InputError, match="model folder not found"):
        Model.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        Model.load(tmp_path / "empty")


# -- the commands -----------------------------------------------------------------------------------------


def test_commands_write_files(tmp_path, capsys):
    model = h.model_path()
    seqs = tmp_path / "in.fasta"
    seqs.write_text(f">P20003\n{h.SEQUENCES['P20003'][:80]}\n>P20006\n{h.SEQUENCES['P20006'][:80]}\n")
    out = tmp_path / "out" / "describe.jsonl"
    results = describe_command(model, [str(seqs)], fmt="jsonl", out=out, max_new_tokens=8)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["P20003", "P20006"] == [d.id for d in results]
    assert rows[0]["go_terms"] is None  # no graph, no mapping
    tsv = tmp_path / "describe.tsv"
    describe_command(model, h.SEQUENCES["P20003"][:50], fmt="tsv", out=tsv, max_new_tokens=4)
    header, row = tsv.read_text().splitlines()
    assert header.split("\t")[0] == "id" and row.split("\t")[0] == "seq1"

    choices = classify_command(
        model,
        [str(seqs)],
        "Does the protein associate with zinc ion binding?",
        ["no", "yes"],
        prefix="Based on the record, the answer is",
        rule="first_token",
        fmt="tsv",
        out=tmp_path / "c.tsv",
    )
    lines = (tmp_path / "c.tsv").read_text().splitlines()
    assert lines[0] == "id\tanswer\tprobability\tno\tyes" and len(lines) == 3
    assert lines[1].split("\t")[1] == choices[0].answer

    shown: list[str] = []
    run = design_command(
        model,
        "binds zinc ion",
        n=2,
        out=tmp_path / "d.fasta",
        checks_out=tmp_path / "d.tsv",
        min_len=10,
        max_len=30,
        seed=2,
        echo=shown.append,
    )
    fasta = (tmp_path / "d.fasta").read_text()
    assert fasta.count(">design") == 2 and run.designs[0].sequence in fasta.replace("\n", "")
    assert (tmp_path / "d.tsv").read_text().startswith("id\tlength\tended_by")
    assert any("low_complexity" in s for s in shown)

    with pytest.raises(InputError, match="output format"):
        describe_command(model, "MKT", fmt="xml")
    with pytest.raises(InputError, match="empty"):
        design_command(model, "   ", echo=shown.append)
    with pytest.raises(InputError, match="model folder not found"):
        describe_command(tmp_path / "no-model", "MKT")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind
