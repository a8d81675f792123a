"""Task templates, English helpers and the protein notation / prompt formats.

The benchmark wording checks matter most: zero-shot scoring (src/instructprotein/data/benchmarks/README.md)
reads the next token after these exact prompts, so training must contain them verbatim.
"""

from __future__ import annotations

import pytest

from instructprotein.instruct.render import (
    RESIDUE_MAP,
    normalize_sequence,
    protein_text,
    render_paper,
    render_plain,
)
from instructprotein.instruct.templates import (
    TASKS,
    article,
    capitalize_first,
    function_phrase,
    join_list,
    kind_from_function,
    kind_from_signatures,
    length_hint,
    render,
)

EXPECTED_TASKS = {"function", "location", "go_terms", "protein_kind", "yes_no", "multiple_choice", "design"}


def fill(task) -> dict[str, str]:
    return {slot: f"<{slot}>" for slot in task.slots}


def test_task_ids_and_directions():
    assert set(TASKS) == EXPECTED_TASKS
    assert TASKS["design"].direction == "text_to_protein"
    assert {t.direction for n, t in TASKS.items() if n != "design"} == {"protein_to_text"}


@pytest.mark.parametrize("name", sorted(EXPECTED_TASKS))
def test_every_task_has_ten_distinct_phrasings_of_varied_structure(name):
    task = TASKS[name]
    questions = [p.question for p in task.phrasings]
    assert len(set(questions)) == len(questions) >= 10
    # structure varies: questions and imperatives, short and long
    assert any(q.rstrip().endswith("?") for q in questions)
    assert any(not q.rstrip().endswith("?") for q in questions)
    lengths = sorted(len(q) for q in questions)
    assert lengths[-1] > 2.5 * lengths[0]


@pytest.mark.parametrize("name", sorted(EXPECTED_TASKS))
def test_phrasings_only_use_declared_slots_and_render(name):
    task = TASKS[name]
    for i, p in enumerate(task.phrasings):
        assert p.slots <= task.slots, (name, i, p.slots - task.slots)
        question, answer = render(name, i, fill(task))
        assert "{" not in question and "{" not in answer
        assert answer


def test_missing_slot_names_task_and_phrasing():
    with pytest.raises(KeyError, match="yes_no phrasing 0 needs slot 'term'"):
        render("yes_no", 0, {"answer": "yes"})


def test_capitalised_placeholder_capitalises_the_slot():
    i = next(i for i, p in enumerate(TASKS["location"].phrasings) if p.answer.startswith("{Locations}"))
    assert render("location", i, {"locations": "nucleus"})[1] == "Nucleus."
    assert render("location", i, {"locations": "mRNA cap complex"})[1] == "mRNA cap complex."


def test_benchmark_wordings_are_phrasings():
    q, a = render("yes_no", 0, {"term": "metal ion binding", "answer": "yes"})
    assert q == "Does the protein associate with metal ion binding?"
    assert a == "Based on the record, the answer is yes."
    q, a = render("location", 0, {"locations": "nucleus"})
    assert q == "What cellular components is the protein located in?"
    assert a == "The protein is located in nucleus."
    # the rendered text starts with the benchmark's scoring prompt
    text, _ = render_paper("MKT", q, a)
    bench = "<protein>MKT</protein>Instruction: What cellular components is the protein located in?\n\nOutput: The protein is located in"
    assert text.startswith(bench) and text[len(bench) :] == " nucleus."


def test_yes_no_answers_carry_the_answer_word():
    for i in range(len(TASKS["yes_no"].phrasings)):
        for word in ("yes", "no"):
            _, a = render("yes_no", i, {"term": "t", "answer": word})
            assert word in a.lower()


def test_design_has_phrasings_with_and_without_length():
    task = TASKS["design"]
    with_len, without = task.indices(requires="length"), task.indices(excludes="length")
    assert len(with_len) >= 4 and len(without) >= 6
    assert sorted(with_len + without) == list(range(len(task.phrasings)))
    assert all(p.answer == "{protein}" for p in task.phrasings)


def test_multiple_choice_answers_give_letter_and_option():
    for i in range(len(TASKS["multiple_choice"].phrasings)):
        q, a = render("multiple_choice", i, {"options": "A. x\nB. y", "letter": "B", "option": "y", "aspect_name": "f"})
        assert "A. x\nB. y" in q
        assert "B" in a and "y" in a


def test_english_helpers():
    assert function_phrase("zinc ion binding") == "binds zinc ion"
    assert function_phrase("zinc ion binding", "base") == "bind zinc ion"
    assert function_phrase("protein kinase activity") == "has protein kinase activity"
    assert function_phrase("structural constituent of ribosome") == "is a structural constituent of ribosome"
    assert function_phrase("base pairing") == "enables base pairing"
    assert kind_from_function("protein kinase activity") == "a protein kinase"
    assert kind_from_function("ATPase activity") == "an ATPase"
    assert kind_from_function("zinc ion binding") == "a zinc ion-binding protein"
    assert kind_from_function("RNA binding") == "an RNA-binding protein"
    assert kind_from_function("exodeoxyribonuclease VII activity") == "a protein with exodeoxyribonuclease VII activity"
    assert kind_from_signatures([("IPR013087", "Znf_C2H2_type")]) == "a member of the Znf_C2H2_type family (IPR013087)"
    assert article("DNA") == "a" and article("RNA") == "an" and article("enzyme") == "an"
    assert join_list(["a"]) == "a" and join_list(["a", "b", "c"]) == "a, b and c"
    assert join_list(["x, y", "z"]) == "x, y and z" and join_list(["x, y", "z", "w"]) == "x, y; z and w"
    assert capitalize_first("zinc") == "Zinc" and capitalize_first("mRNA binding") == "mRNA binding"
    assert length_hint(298) == 300 and length_hint(12) == 10 and length_hint(1234) == 1250 and length_hint(3) == 10


# -- protein notation and formats ----------------------------------------------------------------


def test_protein_text_is_plain_residues():
    assert protein_text("MKCPECGKSFHR") == "<protein>MKCPECGKSFHR</protein>"


def test_non_standard_residues_follow_the_documented_map():
    assert RESIDUE_MAP == {"U": "C", "O": "K", "B": "X", "Z": "X", "J": "X", "X": "X"}
    assert normalize_sequence("MUOBZJX") == "MCKXXXX"
    assert protein_text("mku*") == "<protein>MKC</protein>"  # lower case, trailing stop
    for bad in ("MK-T", "MK1", "", "*"):
        with pytest.raises(ValueError):
            protein_text(bad)


def test_render_paper_exact_and_span():
    text, span = render_paper("MKCPECGKSFHR", "What is it?", "A zinc finger.")
    assert text == "<protein>MKCPECGKSFHR</protein>Instruction: What is it?\n\nOutput: A zinc finger."
    assert text[span[0] : span[1]] == "A zinc finger." and span[1] == len(text)
    # already-written protein text is not wrapped twice
    assert render_paper(protein_text("MKU"), "q", "a")[0] == "<protein>MKC</protein>Instruction: q\n\nOutput: a"


def test_design_format_has_no_protein_prefix():
    answer = protein_text("MKT")
    text, span = render_paper(None, "Design a zinc finger.", answer)
    assert text == "Instruction: Design a zinc finger.\n\nOutput: <protein>MKT</protein>"
    assert text[span[0] : span[1]] == answer
    text, span = render_plain("Design a zinc finger.", answer)
    assert text == "Design a zinc finger.\n\n<protein>MKT</protein>" and text[span[0] : span[1]] == answer
