"""Every prompt inference writes, built from the templates the model was instruction-tuned on.

A prompt is the paper's format cut after ``Output:`` (plus an answer prefix where a task
scores options), ``{protein}Instruction: {question}\\n\\nOutput: {prefix}``, with the
question taken from :data:`instructprotein.instruct.templates.TASKS` (phrasing 0: for
``location`` and ``yes_no`` the paper's benchmark wording verbatim), so inference prompts
are in the training distribution.

Whitespace at the seam: training text reads ``Output: The protein ...``, which the BPE
splits as ``Output``, ``:``, `` The``. A prompt therefore ends *without* its trailing space
(``...Output:`` or ``...located in``) and what follows (an option, a generated answer)
starts with the space, exactly as in training. Design prompts end in ``Output: <protein>``:
there the space stays, because in training the BPE sees ``Output: `` before the protein tag.
"""

from __future__ import annotations

from instructprotein.infer.inputs import CUT_ABOVE, KEEP_LAST, cut_sequence
from instructprotein.instruct.compartments import ANCHORS
from instructprotein.instruct.evidence import fit_residues, with_evidence
from instructprotein.instruct.render import PROTEIN_OPEN, render_paper
from instructprotein.instruct.templates import ASPECT_NAMES, TASKS


def answer_prefix(task: str, index: int = 0) -> str:
    """The fixed start of a phrasing's answer, up to its first slot (``The protein is located in``)."""
    answer = TASKS[task].phrasings[index].answer
    return answer.split("{", 1)[0].rstrip()


def question(task: str, index: int = 0, **slots: str) -> str:
    """Phrasing ``index`` of ``task``'s question with ``slots`` filled."""
    return TASKS[task].phrasings[index].question.format(**slots)


# -- the paper's zero-shot prompts (instructprotein/data/benchmarks/README.md) -------------------------------------

LOCATION_LABELS: tuple[str, ...] = tuple(ANCHORS)
"""DeepLoc's 10 classes in label order (0..9), as the paper's candidates (a leading space is added)."""

LOCATION_QUESTION = question("location")  # "What cellular components is the protein located in?"
LOCATION_PREFIX = answer_prefix("location")  # "The protein is located in"
YES_NO_QUESTION = TASKS["yes_no"].phrasings[0].question  # "Does the protein associate with {term}?"
YES_NO_PREFIX = answer_prefix("yes_no")  # "Based on the record, the answer is"
YES_NO_OPTIONS = ("no", "yes")

# -- describe ------------------------------------------------------------------------------------------

FUNCTION_QUESTION = question("function")  # "What is the function of this protein?"


def go_question(aspect: str) -> str:
    """"List the molecular function GO terms of this protein." (answers are ``GO:id name`` lines)."""
    return question("go_terms", aspect_name=ASPECT_NAMES[aspect])


# -- assembling ----------------------------------------------------------------------------------------

def with_context(question_text: str, context: str | None) -> str:
    """A question with a retrieval block (``Homologs: ...``) on the line before it, as in training."""
    return with_evidence(question_text, context)


def build_prompt(
    sequence: str | None,
    question_text: str,
    prefix: str = "",
    *,
    context: str | None = None,
    cut_above: int | None = CUT_ABOVE,
    keep: int = KEEP_LAST,
) -> str:
    """``{protein}Instruction: {context}\\n{question}\\n\\nOutput: {prefix}`` without a trailing space.

    ``sequence`` is a normalised residue string (cut by :func:`cut_sequence` here, so every
    caller applies the same rule) or ``None`` for a text-only prompt.
    """
    protein = cut_sequence(sequence, cut_above, keep) if sequence else None
    text, _ = render_paper(protein, with_context(question_text, context), prefix)
    return text.rstrip(" ")


MIN_FITTED_RESIDUES = 8
"""A protein is not cut below this many residues to make a prompt fit; the prompt is refused instead."""


def fitted_prompt(
    tokenizer,
    sequence: str,
    question_text: str,
    prefix: str = "",
    *,
    context: str | None = None,
    context_len: int,
    reserve: int = 0,
    cut_above: int | None = CUT_ABOVE,
    keep: int = KEEP_LAST,
    max_residues: int | None = None,
) -> tuple[str, int]:
    """The prompt with its protein fitted into ``context_len - reserve`` tokens (bos included), and
    the residues the model reads.

    First the paper's cut (:func:`cut_sequence`), then, for a model whose context is shorter,
    the rule the model was trained with (:func:`~instructprotein.instruct.evidence.fit_residues`:
    first three quarters, one ``X``, last quarter). A prompt that would need the protein below
    :data:`MIN_FITTED_RESIDUES` is returned as it is, for the caller's size check to refuse.
    ``max_residues`` (the model's ``prompt_residues``) cuts the protein that far first, by the same rule.
    """
    seq = cut_sequence(sequence, cut_above, keep)
    if max_residues is not None:  # unchanged when it fits
        seq = fit_residues(seq, max_residues)
    text = build_prompt(seq, question_text, prefix, context=context, cut_above=None)
    over = len(tokenizer.encode(text)) + reserve - context_len
    if over > 0 and len(seq) - over >= MIN_FITTED_RESIDUES:
        seq = fit_residues(seq, len(seq) - over)
        text = build_prompt(seq, question_text, prefix, context=context, cut_above=None)
    return text, len(seq)


def design_prompt(question_text: str) -> str:
    """``Instruction: {question}\\n\\nOutput: <protein>``: decoding starts at the first residue."""
    text, _ = render_paper(None, question_text, PROTEIN_OPEN)
    return text


def option_text(option: str) -> str:
    """An option as it continues a prompt: with exactly one leading space."""
    return " " + option.strip()
