"""The prompt contract: one record through the training and the inference path gives the
same bytes and token ids; the evidence block gives way before a request is refused."""

from __future__ import annotations

import random

import pytest

import helpers_model as h
from instructprotein.errors import InputError
from instructprotein.infer.classify import classify
from instructprotein.infer.inputs import Query, clean_sequence
from instructprotein.infer.prompts import LOCATION_LABELS, LOCATION_PREFIX, LOCATION_QUESTION
from instructprotein.instruct.facts import GraphFacts, ViewFacts
from instructprotein.instruct.generate import Evidence, GenerateOptions, instructions_for_protein
from instructprotein.instruct.kgview import KGView
from instructprotein.instruct.negatives import NegativeSampler
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.prompt import (
    HomologFacts,
    Prompt,
    evidence_block,
    fit,
    fit_prompt,
    shorter_block,
    shortest_kept,
)
from instructprotein.train.instruction_data import _crop_protein, _prompt_over, encode_examples, fit_prompt_protein

HOMOLOGS = [("P20007", 0.62), ("P20005", 0.41), ("P20002", 0.35)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


def _training_record(task: str):
    """An instruction the generator writes for P20001 with its three homologs' evidence."""
    view = KGView(h.kg_path())
    homologs = {view.pid_of["P20001"]: [(view.pid_of[a], i) for a, i in HOMOLOGS]}
    insts = instructions_for_protein(
        view,
        "P20001",
        random.Random(0),
        NegativeSampler(view),
        GenerateOptions(evidence_fraction=1.0),
        Evidence(ViewFacts(view), homologs),
    )
    return next(i for i in insts if i.task == task)


def _training_path(tok, text: str, span: tuple[int, int], context: int, max_residues: int | None):
    """What train/data.py makes of an instruction: the model's own cut, then the context's."""
    if max_residues is not None:
        text, span = fit_prompt_protein(text, span, max_residues)
    [ex] = encode_examples(tok, [text], [span], "answer")
    n = len(ex.ids)
    if _prompt_over(ex, n, context) > 0:
        ex = _crop_protein(tok, text, span, ex, n, "answer", context)
    return ex


@pytest.mark.parametrize("context,max_residues", [(512, None), (256, None), (256, 32), (384, 40)])
def test_training_and_inference_render_a_record_alike(context, max_residues):
    _, tok = h.model_and_tokenizer()
    inst = _training_record("location")
    block, question = inst.prompt.split("Instruction: ", 1)[1].split("\n\n")[0].split("\n", 1)
    # the inference side: the residues as a user gives them, evidence from the SQLite graph
    with KnowledgeGraph(h.kg_path()) as kg:
        want = evidence_block("location", GraphFacts(kg).facts(HOMOLOGS, "location"))
    assert want == block  # the same words from the graph view (training) and SQLite (inference)
    seq = clean_sequence(h.SEQUENCES["P20001"])
    prefix = LOCATION_PREFIX if inst.answer.startswith(LOCATION_PREFIX) else ""
    asked = fit_prompt(tok, seq, question, prefix, context=want, context_len=context, max_residues=max_residues)
    trained = _training_path(tok, inst.text, inst.answer_span, context, max_residues)
    assert asked.fits and trained is not None
    text = tok.decode(trained.ids[1:])  # bos left out; decoding gives back the rendered text
    inference_ids = tok.encode(asked.prompt.text)
    assert text.startswith(asked.prompt.text)  # the same bytes ...
    assert text[len(asked.prompt.text)] == " "  # ... up to the answer, which starts with its space
    assert list(trained.ids[: len(inference_ids)]) == inference_ids  # and the same token ids
    if max_residues is not None or context < 512:
        assert asked.residues < len(seq) and f"<protein>{asked.prompt.protein}</protein>" in text
        assert "X" in (asked.prompt.protein or "")
        assert asked.residues >= (shortest_kept(context) if asked.protein_cut else max_residues)
    assert asked.protein_cut == (max_residues is None and context < 512)  # 32 or 40 residues fit as they are


def test_a_prompt_too_long_for_its_protein_is_left_out_in_training_and_loses_evidence_when_asked():
    _, tok = h.model_and_tokenizer()
    inst = _training_record("function")
    context = 144  # the block and question (98 tokens) leave the protein 10 residues, under shortest_kept (18)
    [ex] = encode_examples(tok, [inst.text], [inst.answer_span], "answer")
    assert _crop_protein(tok, inst.text, inst.answer_span, ex, len(ex.ids), "answer", context) is None
    parsed = Prompt.parse(inst.text, inst.answer_span)
    assert parsed is not None and parsed.evidence and parsed.render() == (inst.text, inst.answer_span)
    asked = fit(Prompt(parsed.protein, parsed.question, evidence=parsed.evidence), tok, context_len=context)
    assert asked.fits and asked.evidence_cut and asked.residues >= shortest_kept(context)
    assert asked.prompt.evidence is None or len(asked.prompt.evidence) < len(parsed.evidence)
    assert len(tok.encode(asked.prompt.text)) <= context - 36  # answer_room(144) = 36 tokens kept free


def test_shorter_block_drops_homologs_then_items_then_the_block():
    facts = [HomologFacts(0.62, ("zinc ion binding", "DNA repair", "nucleus")), HomologFacts(0.41, ("cytosol",))]
    block = evidence_block("general", facts)
    steps = [block]
    while steps[-1] is not None:
        steps.append(shorter_block(steps[-1]))
    assert steps[1:] == [
        "Homologs: 62% identical: zinc ion binding, DNA repair, nucleus.",
        "Homologs: 62% identical: zinc ion binding, DNA repair.",
        "Homologs: 62% identical: zinc ion binding.",
        None,
    ]
    term = evidence_block("term", [HomologFacts(0.62, carries=True), HomologFacts(0.4)], "what? really")
    assert shorter_block(term) == "Homologs with what? really? 62% identical: yes."
    assert shorter_block(shorter_block(term)) is None
    assert shorter_block("Homologs: none found.") is None  # never left claiming no homolog was found
    assert shorter_block("free text") is None


def test_classify_with_long_evidence_answers_instead_of_refusing():
    """Issue 17: a classify request whose homologs' evidence is long was refused ("the prompt is
    N tokens plus 2 ... give a shorter sequence") though the model reads 32 residues."""
    model, tok = h.model_and_tokenizer()
    long = h.random_protein(300, seed=11)
    names = tuple(f"some long gene ontology term name number {i}" for i in range(12))
    block = evidence_block("general", [HomologFacts(0.9 - i / 10, names) for i in range(3)])
    assert len(tok.encode(block)) > 512  # longer than the model's whole context
    model.config.prompt_residues = 32
    try:
        [got] = classify(
            model,
            tok,
            [Query("P1", long)],
            LOCATION_QUESTION,
            LOCATION_LABELS,
            prefix=LOCATION_PREFIX,
            contexts=[block],
        )
        assert got.answer in LOCATION_LABELS
        # the same prompt as fit gives, with as much evidence as fits
        fitted = fit_prompt(
            tok,
            long,
            LOCATION_QUESTION,
            LOCATION_PREFIX,
            context=block,
            context_len=512,
            answer_tokens=4,
            max_residues=32,
        )
        assert fitted.fits and fitted.evidence_cut and fitted.residues == 32 and fitted.prompt.evidence
        assert fitted.prompt.evidence.startswith("Homologs: 90% identical: ")
        # a question too long for any protein is still refused, naming the item
        with pytest.raises(InputError, match="P1.*512"):
            classify(model, tok, [Query("P1", long)], "why? " * 300, LOCATION_LABELS, contexts=[block])
    finally:
        model.config.prompt_residues = None
