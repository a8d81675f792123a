"""Zero-shot option scoring: the KV-cached batch scorer equals one-prompt-at-a-time scoring.

A random tiny model (tests/helpers_model.py): the numbers mean nothing about proteins, but
both scorers must compute the same numbers from them, for options of one and of several
tokens, for every rule, and the paper's cut and the context limit must apply the same way.
"""

from __future__ import annotations

import math

import pytest

import helpers_model as h
from instructprotein.errors import InputError
from instructprotein.infer.classify import (
    DEFAULT_RULE,
    RULES,
    classify,
    decide,
    score_naive,
    score_options,
)
from instructprotein.infer.inputs import Query
from instructprotein.infer.prompts import (
    LOCATION_LABELS,
    LOCATION_PREFIX,
    LOCATION_QUESTION,
    YES_NO_OPTIONS,
    YES_NO_PREFIX,
    YES_NO_QUESTION,
    build_prompt,
    option_text,
)
from instructprotein.prompt import fit_prompt


def fitted_prompt(tok, sequence, question, prefix="", *, reserve=0, **kw):
    """(text, residues read) of the prompt contract's fit, as the tests of the old helper read it."""
    got = fit_prompt(tok, sequence, question, prefix, answer_tokens=reserve, **kw)
    return got.prompt.text, got.residues


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def mt():
    return h.model_and_tokenizer()


@pytest.fixture(scope="module")
def queries() -> list[Query]:
    return [Query(acc, seq) for acc, seq in h.SEQUENCES.items()]


def close(a: list[float], b: list[float], tol: float = 1e-4) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b)) and len(a) == len(b)


def test_prompts_are_the_papers():
    assert LOCATION_QUESTION == "What cellular components is the protein located in?"
    assert LOCATION_PREFIX == "The protein is located in"
    assert YES_NO_QUESTION == "Does the protein associate with {term}?"
    assert YES_NO_PREFIX == "Based on the record, the answer is"
    prompt = build_prompt("mktay", LOCATION_QUESTION, LOCATION_PREFIX)
    assert prompt == (
        "<protein>MKTAY</protein>Instruction: What cellular components is the protein located in?"
        "\n\nOutput: The protein is located in"
    )
    assert option_text("nucleus") == option_text(" nucleus ") == " nucleus"


def test_options_of_several_tokens_exist(mt):
    """The equality test below is only meaningful if some options span several tokens."""
    _, tok = mt
    lengths = {w: len(tok.encode(option_text(w), add_bos=False)) for w in LOCATION_LABELS}
    assert max(lengths.values()) > 2 and min(lengths.values()) == 1


def test_batched_equals_naive_every_rule(mt, queries):
    model, tok = mt
    prompts = [build_prompt(q.sequence, LOCATION_QUESTION, LOCATION_PREFIX) for q in queries]
    fast = score_options(model, tok, prompts, LOCATION_LABELS, ids=[q.id for q in queries])
    slow = score_naive(model, tok, prompts, LOCATION_LABELS, ids=[q.id for q in queries])
    for f, s in zip(fast, slow):
        assert f.id == s.id and f.options == s.options == list(LOCATION_LABELS)
        assert f.token_counts == s.token_counts
        assert close(f.first_token, s.first_token) and close(f.total, s.total) and close(f.mean, s.mean)
        for rule in RULES:
            assert f.best(rule) == s.best(rule)
            assert close(f.probabilities(rule), s.probabilities(rule))
            assert math.isclose(sum(f.probabilities(rule)), 1.0, rel_tol=1e-9)
        # full-option scores are the first-token score plus the rest
        assert all(t <= ft + 1e-6 for t, ft in zip(f.total, f.first_token))


def test_per_prompt_options_and_questions(mt, queries):
    """GO yes/no items: a different question per item, two single-token options."""
    model, tok = mt
    terms = ["zinc ion binding", "nucleus", "DNA repair"]
    items = queries[:3]
    fast = classify(
        model,
        tok,
        items,
        [YES_NO_QUESTION.format(term=t) for t in terms],
        YES_NO_OPTIONS,
        prefix=YES_NO_PREFIX,
        rule="first_token",
    )
    slow = classify(
        model,
        tok,
        items,
        [YES_NO_QUESTION.format(term=t) for t in terms],
        YES_NO_OPTIONS,
        prefix=YES_NO_PREFIX,
        rule="first_token",
        naive=True,
    )
    assert [c.answer for c in fast] == [c.answer for c in slow]
    assert all(c.answer in YES_NO_OPTIONS for c in fast)
    assert all(close(a.probabilities, b.probabilities) for a, b in zip(fast, slow))
    # option lists may differ per prompt
    per = [["nucleus", "cytoplasm"], ["mitochondrion", "golgi", "vacuole"], ["yes", "no"]]
    prompts = [build_prompt(q.sequence, LOCATION_QUESTION, LOCATION_PREFIX) for q in items]
    for f, s in zip(score_options(model, tok, prompts, per), score_naive(model, tok, prompts, per)):
        assert close(f.total, s.total) and f.options == s.options


def test_choice_reports_everything(mt, queries):
    model, tok = mt
    [choice] = classify(model, tok, queries[:1], LOCATION_QUESTION, LOCATION_LABELS, prefix=LOCATION_PREFIX)
    assert choice.rule == DEFAULT_RULE == "sum"
    assert choice.answer == LOCATION_LABELS[choice.index]
    assert choice.probabilities[choice.index] == max(choice.probabilities)
    d = choice.to_dict()
    assert d["id"] == queries[0].id and len(d["options"]) == 10
    assert {"option", "probability", "first_token", "sum", "mean", "tokens"} <= set(d["options"][0])


def test_first_token_rule_ties_on_a_shared_first_token(mt, queries):
    model, tok = mt
    # in the test tokenizer "plasma membrane" and "peroxisome" both start with the token " p"
    a, b = (tok.encode(option_text(w), add_bos=False)[0] for w in ("plasma membrane", "peroxisome"))
    assert a == b
    [s] = score_options(
        model,
        tok,
        [build_prompt(queries[0].sequence, LOCATION_QUESTION, LOCATION_PREFIX)],
        ["plasma membrane", "peroxisome"],
    )
    assert s.first_token[0] == s.first_token[1]
    assert decide(s, "first_token").tied
    assert s.total[0] != s.total[1]


def test_a_model_tuned_on_short_prompts_is_asked_in_short_prompts(mt):
    from instructprotein.infer.classify import prompt_residues
    from instructprotein.instruct.evidence import fit_residues

    model, tok = mt
    long = h.random_protein(300, seed=7)
    prompt, read = fitted_prompt(tok, long, LOCATION_QUESTION, LOCATION_PREFIX, context_len=512, max_residues=32)
    head, tail = prompt.split("<protein>")[1].split("</protein>")[0].split("X")
    assert read == 32 and long.startswith(head) and long.endswith(tail) and len(head) + len(tail) == 31
    short = h.random_protein(20, seed=8)
    assert (
        f"<protein>{short}</protein>"
        in fitted_prompt(tok, short, LOCATION_QUESTION, context_len=512, max_residues=32)[0]
    )
    assert prompt_residues(model) is None
    model.config.prompt_residues = 32  # what tuning with the tiny preset writes into config.json
    try:
        asked = classify(model, tok, [Query("P1", long)], LOCATION_QUESTION, LOCATION_LABELS, prefix=LOCATION_PREFIX)
        cut = classify(
            model,
            tok,
            [Query("P1", fit_residues(long, 32))],
            LOCATION_QUESTION,
            LOCATION_LABELS,
            prefix=LOCATION_PREFIX,
        )
        assert close(asked[0].scores.total, cut[0].scores.total)
    finally:
        model.config.prompt_residues = None


def test_long_sequence_is_cut_then_fitted_to_the_context(mt):
    model, tok = mt
    long = h.random_protein(1100, seed=5)
    prompt = build_prompt(long, LOCATION_QUESTION, LOCATION_PREFIX)
    assert f"<protein>{long[-1000:]}</protein>" in prompt  # the paper's rule: last 1,000 of > 1,024
    assert long[-1001] + long[-1000:] not in prompt
    short = h.random_protein(1024, seed=6)
    assert f"<protein>{short}</protein>" in build_prompt(short, LOCATION_QUESTION, LOCATION_PREFIX)
    # the test model reads 512 tokens: the last 1,000 residues are fitted as in training
    # (first three quarters, one X, last quarter), so the prompt fits with its longest option
    prompt, read = fitted_prompt(tok, long, LOCATION_QUESTION, LOCATION_PREFIX, context_len=512, reserve=4)
    kept = long[-1000:]
    assert read < 500 and len(tok.encode(prompt)) + 4 <= 512
    head, tail = prompt.split("<protein>")[1].split("</protein>")[0].split("X")
    assert kept.startswith(head) and kept.endswith(tail) and len(head) > 2 * len(tail)
    fitted = classify(model, tok, [Query("P99999", long)], LOCATION_QUESTION, LOCATION_LABELS, prefix=LOCATION_PREFIX)
    assert fitted[0].answer in LOCATION_LABELS
    # a question that leaves no room for the protein is refused, naming the item
    with pytest.raises(InputError, match="P99999.*512"):
        classify(model, tok, [Query("P99999", long)], "why? " * 300, LOCATION_LABELS, prefix=LOCATION_PREFIX)
    # a smaller cut; batched and naive apply the same cut
    kw = dict(prefix=LOCATION_PREFIX, cut_above=400, keep=400)
    fast = classify(model, tok, [Query("P99999", long)], LOCATION_QUESTION, LOCATION_LABELS, **kw)
    slow = classify(model, tok, [Query("P99999", long)], LOCATION_QUESTION, LOCATION_LABELS, naive=True, **kw)
    assert close(fast[0].scores.total, slow[0].scores.total)


def test_bad_options_and_rules(mt, queries):
    model, tok = mt
    args = (model, tok, queries[:1], LOCATION_QUESTION)
    with pytest.raises(InputError, match="two options"):
        classify(*args, ["nucleus"])
    with pytest.raises(InputError, match="non-empty"):
        classify(*args, ["nucleus", "  "])
    with pytest.raises(InputError, match="repeat"):
        classify(*args, ["nucleus", " nucleus"])
    with pytest.raises(InputError, match="scoring rule"):
        classify(*args, ["nucleus", "cytoplasm"], rule="max")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="empty question"):
        classify(model, tok, queries[:1], " ", ["nucleus", "cytoplasm"])
