"""Homolog retrieval with MMseqs2 against the graph's proteins, the prompt block, homology transfer.

The test graph's proteins are random sequences, unrelated to each other, except P20007: P20001
with 20 % of its residues substituted. One MMseqs2 search (module fixture) serves most tests:
:class:`ProteinIndex` keeps raw hits per sequence, so the filters (exclude, max identity)
run again without a second search.
"""

from __future__ import annotations

import json

import pytest

import helpers_model as h
from instructprotein.infer.inputs import Query
from instructprotein.infer.retrieval import (
    Homolog,
    ProteinIndex,
    go_labels,
    homolog_block,
    transfer,
)
from instructprotein.kg.store import KnowledgeGraph

QUERY = h.mutant(h.SEQUENCES["P20001"], 0.9, seed=11)  # 90 % to P20001, ~72 % to P20007
LONER = h.random_protein(160, seed=1234)  # homologous to nothing


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def kg():
    with KnowledgeGraph(h.kg_path()) as graph:
        yield graph


@pytest.fixture(scope="module")
def index(kg) -> ProteinIndex:
    index = ProteinIndex(kg)
    queries = [Query(acc, seq) for acc, seq in h.SEQUENCES.items()] + [Query("q", QUERY), Query("loner", LONER)]
    index.search(queries, top_k=5)  # the one search; later calls reuse its raw hits
    return index


def test_cached_fasta_beside_the_graph(kg, index):
    assert index.fasta == kg.path.parent / "kg.sqlite.proteins.fasta"
    records = index.fasta.read_text().split(">")[1:]
    assert [r.split("\n")[0] for r in records] == [acc for acc, _, _ in h.PROTEINS]
    stamp = json.loads(index.stamp.read_text())
    assert stamp["content_hash"] == kg.meta["content_hash"] and stamp["proteins"] == len(h.PROTEINS)
    assert stamp["index"] is False  # 8 proteins: no precomputed k-mer index (fixed ~0.9 GB table)
    # a stamp from another graph content makes the next user rebuild
    index.stamp.write_text(json.dumps({**stamp, "content_hash": "something else"}))
    index.fasta.write_text(">stale\nMKT\n")
    ProteinIndex(kg).build()
    assert json.loads(index.stamp.read_text())["content_hash"] == kg.meta["content_hash"]
    assert index.fasta.read_text().startswith(">P20001\n")


def test_a_protein_finds_itself_unless_excluded(index):
    hits = index.search({"P20001": h.SEQUENCES["P20001"]}, top_k=5)["P20001"]
    assert hits[0].accession == "P20001" and hits[0].identity == pytest.approx(1.0)
    assert hits[1].accession == "P20007" and hits[1].identity == pytest.approx(0.8, abs=0.02)
    assert [x.accession for x in hits] == ["P20001", "P20007"]  # the rest is unrelated
    for kwargs in ({"exclude": {"P20001"}}, {"exclude_self": True}, {"max_identity": 0.95}):
        kept = index.search({"P20001": h.SEQUENCES["P20001"]}, top_k=5, **kwargs)["P20001"]
        assert [x.accession for x in kept] == ["P20007"], kwargs
    assert index.search({"P20001": h.SEQUENCES["P20001"]}, max_identity=0.7)["P20001"] == []
    assert index.search({"P20001": h.SEQUENCES["P20001"]}, top_k=1)["P20001"][0].accession == "P20001"
    assert index.search({"loner": LONER})["loner"] == []


def test_prompt_block(index):
    hits = index.search({"q": QUERY}, top_k=3)["q"]
    assert [x.accession for x in hits] == ["P20001", "P20007"]
    pct = int(hits[1].identity * 100)
    # general questions: each homolog's most specific GO terms, functions, processes, locations
    assert homolog_block(index, hits) == (
        f"Homologs: 90% identical: zinc ion binding, DNA repair, nucleus. {pct}% identical: zinc ion binding, "
        "DNA binding, nuclear lumen."
    )
    # location questions: the location answer's words (class, then the specific terms)
    assert (
        homolog_block(index, hits, "location")
        == f"Homologs: 90% identical: nucleus. {pct}% identical: nucleus (nuclear lumen)."
    )
    # yes/no questions: carried by propagation (zinc ion binding is a metal ion binding)
    assert homolog_block(index, hits, "term", "GO:0046872") == (
        f"Homologs with metal ion binding? 90% identical: yes. {pct}% identical: yes."
    )
    # a process question about a homolog without processes: unknown, not "no"
    assert homolog_block(index, hits[1:], "term", "GO:0006281").endswith("identical: unknown.")
    assert homolog_block(index, hits[:1], "term", "GO:0006281").endswith("90% identical: yes.")
    assert homolog_block(index, []) == "Homologs: none found."


def test_homology_transfer(kg, index):
    hits = index.search({"q": QUERY}, top_k=5)["q"]
    t = transfer(hits, go_labels(kg, "F"), k=5)
    assert t.best.accession == "P20001"
    assert "GO:0008270" in t.best_labels and "GO:0046872" in t.best_labels  # propagated
    assert t.votes["GO:0008270"] == pytest.approx(1.0)  # both homologs bind zinc
    share = hits[1].identity / (hits[0].identity + hits[1].identity)
    assert t.votes["GO:0003677"] == pytest.approx(share)  # only P20007 binds DNA
    assert "GO:0008270" in t.labels() and "GO:0003677" not in t.labels(threshold=0.5)
    # a class label per protein: the best hit's label wins a tie-free vote
    labels = {"P20001": "nucleus", "P20007": "cytoplasm"}
    assert transfer(hits, labels).label == "nucleus" and transfer(hits, labels).best_labels == ["nucleus"]
    fake = [
        Homolog("x", "A", 0.3, 1e-5, 50, 100, 1, 1),
        Homolog("x", "B", 0.9, 1e-40, 300, 100, 1, 1),
        Homolog("x", "C", 0.8, 1e-30, 250, 100, 1, 1),
    ]
    vote = transfer(fake, {"A": "yes", "B": "no", "C": "no"}, k=3)
    assert vote.best_labels == ["yes"] and vote.label == "no" and vote.votes["no"] == pytest.approx(1.7 / 2.0)
    empty = transfer([], labels)
    assert empty.best is None and empty.label is None and empty.to_dict()["votes"] == {}


def test_describe_and_classify_put_homologs_in_the_prompt(index):
    from instructprotein.infer.classify import classify
    from instructprotein.infer.describe import describe
    from instructprotein.infer.prompts import LOCATION_LABELS, LOCATION_PREFIX, LOCATION_QUESTION, build_prompt

    model, tok = h.model_and_tokenizer()
    [d] = describe(model, tok, Query("q", QUERY), index=index, max_new_tokens=4)  # retrieval on by default
    assert [x.accession for x in d.homologs] == ["P20001", "P20007"]
    assert d.context == homolog_block(index, d.homologs)
    prompt = build_prompt(QUERY, LOCATION_QUESTION, LOCATION_PREFIX, context=d.context)
    assert f"</protein>Instruction: {d.context}\nWhat cellular components" in prompt
    [off] = describe(model, tok, Query("q", QUERY), index=index, retrieval=False, max_new_tokens=4)
    assert off.homologs == [] and off.context is None
    # the block changes the prompt, so the scores; batched and naive agree with it too
    kw = dict(prefix=LOCATION_PREFIX, contexts=[d.context])
    fast = classify(model, tok, [Query("q", QUERY)], LOCATION_QUESTION, LOCATION_LABELS, **kw)
    slow = classify(model, tok, [Query("q", QUERY)], LOCATION_QUESTION, LOCATION_LABELS, naive=True, **kw)
    assert fast[0].answer == slow[0].answer
    assert fast[0].probabilities == pytest.approx(slow[0].probabilities, abs=1e-4)


def test_model_api(index):
    from instructprotein.infer.model import Model

    m = Model.load(h.model_path(), kg=h.kg_path())
    assert m.retrieval and m.terms is not None
    m._index = index  # share the searched index: no second MMseqs2 run
    d = m.describe(QUERY.lower(), id="q", max_new_tokens=4)
    assert d.id == "q" and [x.accession for x in d.homologs] == ["P20001", "P20007"]
    assert [x.accession for x in m.homologs(QUERY)] == ["P20001", "P20007"]
    assert m.homology_transfer(QUERY, aspect="C").best_labels[0] in ("GO:0005634", "GO:0043226")
    c = m.classify(
        QUERY,
        "Does the protein associate with zinc ion binding?",
        ["no", "yes"],
        prefix="Based on the record, the answer is",
        retrieval=False,
    )
    assert c.answer in ("no", "yes")
    run = m.design("binds zinc ion", n=1, min_len=5, max_len=20, check=False)
    assert run.requested_terms.direct[0].term.id == "GO:0008270"
    assert [t.id for t, _ in m.map_terms("zinc ion binding").implied][:1] == ["GO:0046914"]
    plain = Model.load(h.model_path())
    assert not plain.retrieval and plain.describe("MKTAYIAK", max_new_tokens=2).terms is None


def test_block_shrinks_to_fit_the_context(index):
    from instructprotein.infer.retrieval import homolog_contexts

    q = Query("q", QUERY)
    full = homolog_contexts(index, [q], top_k=3)["q"]
    assert [x.accession for x in full[0]] == ["P20001", "P20007"]
    one = homolog_contexts(index, [q], top_k=3, fits=lambda _q, block: block.count("identical") <= 1)["q"]
    assert [x.accession for x in one[0]] == ["P20001"] and one[1] == homolog_block(index, one[0])
    assert homolog_contexts(index, [q], fits=lambda _q, _b: False)["q"] == ([], None)
    loner = homolog_contexts(index, [Query("loner", LONER)])["loner"]
    assert loner == ([], "Homologs: none found.")
