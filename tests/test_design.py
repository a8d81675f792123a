"""Design: constrained decoding, reproducible sampling, and the checks on designed sequences."""

from __future__ import annotations

import pytest
import torch

import helpers_model as h
from instructprotein.errors import InputError
from instructprotein.infer.checks import (
    MAX_HOMOPOLYMER,
    check_designs,
    check_sequence,
    longest_homopolymer,
    low_complexity_mask,
    shannon_entropy,
    tandem_repeat_mask,
)
from instructprotein.infer.generate import (
    ProteinGrammar,
    default_max_len,
    design,
    design_max_len,
    design_question,
    resolved_max_len,
    sample_proteins,
)
from instructprotein.infer.prompts import design_prompt
from instructprotein.infer.retrieval import ProteinIndex
from instructprotein.infer.terms import TermIndex
from instructprotein.kg.store import KnowledgeGraph

STANDARD = set("ACDEFGHIKLMNPQRSTVWY")


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


# -- the grammar ------------------------------------------------------------------------------------------


def allowed_after(grammar: ProteinGrammar, ids: list[int], vocab: int) -> set[int]:
    scores = grammar(torch.tensor([ids]), torch.zeros(1, vocab))
    return set(torch.nonzero(torch.isfinite(scores[0])).flatten().tolist())


def test_grammar_masks_by_state(mt):
    _, tok = mt
    vocab = len(tok) + 5  # a model may have more embedding rows than tokens
    residues = {tok.residue_ids[a] for a in STANDARD}
    g = ProteinGrammar(tok, min_len=3, max_len=5, block_outside=True)
    prompt = tok.encode("Instruction: Design a protein.\n\nOutput: <protein>")
    m = tok.residue_ids["M"]
    assert allowed_after(g, prompt, vocab) == residues  # no X, no </protein> before min_len
    assert tok.residue_ids["X"] not in allowed_after(g, prompt + [m, m], vocab)
    assert allowed_after(g, prompt + [m] * 3, vocab) == residues | {tok.protein_close_id}
    assert allowed_after(g, prompt + [m] * 5, vocab) == {tok.protein_close_id}  # forced at max_len
    # after </protein> (and in any text): no residue tokens, no </protein>
    outside = allowed_after(g, prompt + [m] * 4 + [tok.protein_close_id], vocab)
    assert not outside & residues and tok.protein_close_id not in outside and tok.eos_token_id in outside
    # a text prompt that contains a closed protein segment is "outside"
    text = tok.encode("<protein>MKT</protein>Instruction: What is it?\n\nOutput:")
    assert not allowed_after(g, text, vocab) & residues
    free = ProteinGrammar(tok)  # block_outside off: text is not touched
    assert allowed_after(free, text, vocab) == set(range(vocab))
    with pytest.raises(InputError):
        ProteinGrammar(tok, min_len=10, max_len=5)


def test_grammar_rows_are_independent(mt):
    _, tok = mt
    g = ProteinGrammar(tok, min_len=1, max_len=2)
    p = tok.encode("Output: <protein>")
    m = tok.residue_ids["M"]
    rows = torch.tensor([p + [m, m], [tok.pad_token_id] + p + [m]])
    scores = g(rows, torch.zeros(2, len(tok)))
    assert torch.isfinite(scores[0]).sum() == 1  # at max_len: only </protein>
    assert torch.isfinite(scores[1]).sum() == 21  # 20 residues + </protein>


# -- sampling ---------------------------------------------------------------------------------------------


def test_sampling_writes_residues_within_the_length_range(mt):
    model, tok = mt
    prompt = design_prompt(design_question("binds zinc ion"))
    out = sample_proteins(model, tok, prompt, n=6, seed=3, min_len=8, max_len=30, temperature=1.5, top_p=0.9)
    assert len(out) == 6
    for seq, ended in out:
        assert set(seq) <= STANDARD and 8 <= len(seq) <= 30
        assert ended in ("model", "max_len") and (ended == "model") == (len(seq) < 30)
    forced = sample_proteins(model, tok, prompt, n=3, seed=0, min_len=12, max_len=12)
    assert [(len(s), e) for s, e in forced] == [(12, "max_len")] * 3


def test_sampling_is_reproducible_with_a_seed(mt):
    model, tok = mt
    prompt = design_prompt(design_question("binds zinc ion"))
    torch.manual_seed(123)
    before = torch.rand(1)
    a = sample_proteins(model, tok, prompt, n=3, seed=7, min_len=5, max_len=40)
    b = sample_proteins(model, tok, prompt, n=3, seed=7, min_len=5, max_len=40)
    c = sample_proteins(model, tok, prompt, n=3, seed=8, min_len=5, max_len=40)
    assert a == b and a != c
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # the caller's RNG is left alone


def test_design_request_checks(mt):
    model, tok = mt
    assert design_question("binds zinc ion") == "Design a protein that binds zinc ion."
    assert design_question("zinc ion binding; nucleus") == (
        "Generate the sequence of a protein with these properties: zinc ion binding; nucleus."
    )
    assert design_question("Design a small nuclear protein") == "Design a small nuclear protein."
    assert "about 120 residues" in design_question("binds DNA", length=120)
    for bad, match in (
        ("", "empty"),
        ("   \n", "empty"),
        ("x" * 2001, "2001 characters"),
        ("a <protein>MK</protein>", "tags"),
    ):
        with pytest.raises(InputError, match=match):
            design(model, tok, bad, n=1, check=False)
    with pytest.raises(InputError, match="lower max_len"):
        design(model, tok, "binds zinc ion", n=1, max_len=600, check=False)
    with pytest.raises(InputError, match="below min_len"):
        design(model, tok, "binds zinc ion", n=1, min_len=50, max_len=20, check=False)
    with pytest.raises(InputError, match="temperature"):
        design(model, tok, "binds zinc ion", n=1, temperature=0, check=False)


def test_default_design_length_is_what_the_context_leaves():
    assert design_max_len(2048, 20) == 400  # room for more: the default cap
    assert design_max_len(256, 36) == 219  # the tiny preset: 256 positions, a 36-token request, </protein>
    assert resolved_max_len(256, 36, 30, 150) == 150  # an explicit max_len is kept (and checked by sampling)
    with pytest.raises(InputError, match="room for 3 residues, below min_len 30"):
        resolved_max_len(40, 36, 30, None)


def test_design_fits_a_short_context_by_default(mt, monkeypatch):
    model, tok = mt
    request = "binds zinc ion"
    prompt_tokens = len(tok.encode(design_prompt(design_question(request))))
    assert design(model, tok, request, n=1, min_len=5, max_len=None, check=False).settings["max_len"] == 400
    monkeypatch.setattr(model.config, "max_position_embeddings", prompt_tokens + 41)  # a model reading fewer tokens
    assert default_max_len(model, tok, request) == 40
    run = design(model, tok, request, n=2, seed=4, min_len=5, check=False)
    assert run.settings["max_len"] == 40
    assert all(5 <= len(d.sequence) <= 40 for d in run.designs)
    with pytest.raises(InputError, match="below min_len 50"):
        design(model, tok, request, n=1, min_len=50, check=False)


def test_design_without_graph_checks_sequences_only(mt):
    model, tok = mt
    run = design(model, tok, "binds zinc ion and is located in nucleus", n=2, seed=1, min_len=10, max_len=40)
    assert run.prompt.endswith("Output: <protein>") and run.requested_terms is None
    for d in run.designs:
        assert d.checks is not None and d.checks.valid_alphabet and d.checks.length_ok
        assert not d.checks.closest_searched
    assert run.to_dict()["designs"][0]["checks"]["length"] == len(run.designs[0].sequence)


# -- the checks -------------------------------------------------------------------------------------------


def test_check_numbers_on_hand_made_sequences():
    assert shannon_entropy("AAAA") == 0.0 and shannon_entropy("ACDEFGHIKLMNPQRSTVWY") == pytest.approx(4.3219, abs=1e-4)
    assert all(low_complexity_mask("A" * 12)) and not any(low_complexity_mask("ACDEFGHIKLMN"))
    assert longest_homopolymer("MKKKLLA") == (3, "K", 1) and longest_homopolymer("") == (0, "", 0)
    assert all(tandem_repeat_mask("PGPGPGPG")) and not any(tandem_repeat_mask("PGPGPG"))  # 6 < 8 residues
    assert sum(tandem_repeat_mask("MKGPPGPPGPPLE")) == 9  # unit GPP, three copies
    assert not any(tandem_repeat_mask("A" * 20))  # a homopolymer is not counted as a tandem repeat

    natural = h.SEQUENCES["P20003"]
    c = check_sequence(natural, min_len=10, max_len=1000)
    assert c.valid_alphabet and c.length_ok and not c.low_complexity and c.passed

    poly = natural[:100] + "A" * 20 + natural[100:140]
    c = check_sequence(poly)
    assert c.longest_homopolymer == 20 >= MAX_HOMOPOLYMER and c.homopolymer_residue == "A"
    assert c.low_complexity and not c.passed
    # every residue of the run lies in a 12-residue window of entropy < 2.2 bits
    mask = low_complexity_mask(poly)
    assert all(mask[100:120]) and c.low_complexity_fraction >= 20 / len(poly)

    repeat = natural[:60] + "KE" * 15
    c = check_sequence(repeat)
    assert c.repeat_fraction == pytest.approx(30 / 90) and c.low_complexity

    c = check_sequence("MKTXBAY", min_len=10)
    assert not c.valid_alphabet and c.invalid_residues == "BX" and c.length_ok is False


def test_closest_protein_and_requested_terms(kg):
    """One MMseqs2 search: a known protein as a 'design' finds itself; terms carried or not."""
    terms = TermIndex(kg)
    index = ProteinIndex(kg)
    requested = terms.find("binds zinc ion and is located in mitochondrion")
    assert [m.term.id for m in requested.direct] == ["GO:0008270", "GO:0005739"]
    known = h.SEQUENCES["P20002"]  # copper ion binding, mitochondrion
    checks = check_designs(
        [h.SEQUENCES["P20001"], known, h.random_protein(150, seed=99)], index=index, requested=requested, terms=terms
    )
    first, second, unrelated = checks
    assert first.closest.accession == "P20001" and first.closest.identity == pytest.approx(1.0)
    assert {r["id"]: r["carried"] for r in first.requested} == {"GO:0008270": True, "GO:0005739": False}
    assert second.closest.accession == "P20002"
    assert {r["id"]: r["carried"] for r in second.requested} == {"GO:0008270": False, "GO:0005739": True}
    assert unrelated.closest is None and unrelated.closest_searched
    assert all(r["carried"] is None for r in unrelated.requested)
