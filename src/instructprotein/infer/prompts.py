"""The questions inference asks, in the words of the templates the model was instruction-tuned on.

How they are rendered and cut is the prompt contract's (:mod:`instructprotein.prompt`).

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

from instructprotein.instruct.compartments import ANCHORS
from instructprotein.instruct.templates import ASPECT_NAMES, TASKS
from instructprotein.prompt import build_prompt, design_prompt, option_text

__all__ = ["build_prompt", "design_prompt", "option_text"]  # rendered by the prompt contract, re-exported


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
    """ "List the molecular function GO terms of this protein." (answers are ``GO:id name`` lines)."""
    return question("go_terms", aspect_name=ASPECT_NAMES[aspect])
