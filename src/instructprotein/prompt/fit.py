"""How a prompt is cut to the model: the paper's cut, the model's own, and the one ``fit``.

Training, inference and evaluation all call :func:`fit`, so a prompt is cut the same way
wherever it is written (the project's central promise; ``tests/test_prompt.py`` renders one
record through the training and the inference path and compares bytes and token ids):

1. the paper's cut (:func:`cut_sequence`: above 1,024 residues keep the last 1,000) and the
   model's own (``prompt_residues``, :func:`fit_residues`), applied by :func:`cap_protein`;
2. the prompt must end ``answer_room`` tokens before the context does (:func:`prompt_budget`),
   whatever its answer, so a cut prompt ends where training prompts ended;
3. the protein gives way first, cut by :func:`fit_residues` (first three quarters, one ``X``,
   last quarter), never below :func:`shortest_kept` residues;
4. then the evidence block (:func:`~instructprotein.prompt.evidence.shorter_block`: fewer
   homologs, then a shorter line, then none), the protein tried again after each step;
5. a prompt that still does not fit (the question alone too long) is not fitted: the caller
   refuses it (inference, evaluation) or leaves the example out (training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from instructprotein.prompt.evidence import shorter_block, with_evidence
from instructprotein.prompt.render import PROTEIN_CLOSE, PROTEIN_OPEN, render_paper

CUT_ABOVE = 1024
"""The paper's rule: a sequence longer than this many residues is cut ..."""
KEEP_LAST = 1000
""" ... to its last this many residues (instructprotein/data/benchmarks/README.md, metal ion binding)."""

MIN_RESIDUES = 8
"""The fewest residues a cut protein keeps in any context (see :func:`shortest_kept`)."""

GAP = "X"
"""What stands for the residues left out of a protein too long for the model: one unknown residue."""


def answer_room(context_len: int) -> int:
    """Tokens a prompt leaves free for its answer when its protein must be cut to fit.

    Training and inference cut to the same budget, ``context - answer_room``, whatever the
    answer: were examples cut just enough to fit prompt + answer, a long answer would put
    the prompt's end early and a short one late, and a model with learned positions reads
    the answer off the position (measured: "no", a short answer, won the yes/no questions at
    p = 0.99 from the position of a cut prompt alone).
    """
    return max(16, min(128, context_len // 4))


def prompt_budget(context_len: int, answer_tokens: int = 0) -> int:
    """The most tokens (bos included) a prompt may take: the context less the answer room, or
    less the answer itself when that is longer (a long option, a long training answer)."""
    return context_len - max(answer_room(context_len), answer_tokens)


def shortest_kept(context_len: int) -> int:
    """The fewest residues a protein is cut to: ``max(8, context // 8)``.

    One rule for training, inference and evaluation: training never shows the model a cut
    prompt whose protein is shorter (such an example is left out), so inference does not ask
    it one either; the evidence block gives way first, and a prompt that still does not fit
    is refused, because a protein cut to a few residues would say nothing about itself.
    """
    return max(MIN_RESIDUES, context_len // 8)


def cut_sequence(sequence: str, cut_above: int | None = CUT_ABOVE, keep: int = KEEP_LAST) -> str:
    """The paper's rule: longer than ``cut_above`` residues -> the last ``keep``; ``None``: never cut."""
    if cut_above is not None and len(sequence) > cut_above:
        if keep <= 0:
            raise ValueError(f"keep must be positive, got {keep}")
        return sequence[-keep:]
    return sequence


def fit_residues(sequence: str, n: int, *, head: float = 0.75) -> str:
    """``sequence`` in at most ``n`` residue tokens: unchanged if it fits, else its first residues,
    one ``X`` for the gap, and its last residues.

    Why both ends: sorting signals sit there (signal and transit peptides at the N terminus,
    PTS1 and KDEL at the C terminus), and training and inference cut the same way, so the
    model has seen such joined sequences. ``head`` is the share of the N-terminal part.
    """
    if n < 1:
        raise ValueError(f"at least one residue must fit, got {n}")
    if len(sequence) <= n:
        return sequence
    if n < 3:
        return sequence[:n]
    room = n - 1
    first = max(1, round(room * head))
    last = room - first
    return sequence[:first] + GAP + (sequence[-last:] if last else "")


def cap_protein(
    sequence: str, *, cut_above: int | None = CUT_ABOVE, keep: int = KEEP_LAST, max_residues: int | None = None
) -> str:
    """The paper's cut, then the model's own (``max_residues``: its preset's ``prompt_residues``,
    the length it was tuned on); a protein within both is unchanged."""
    seq = cut_sequence(sequence, cut_above, keep)
    return fit_residues(seq, max_residues) if max_residues is not None else seq


# -- the prompt and its fit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """What the model is shown, in parts: ``{protein}Instruction: {evidence}\n{question}\n\nOutput: {answer}``.

    ``protein``: normalised residues, or None (design, text-only prompts); ``evidence``: the
    homolog block, or None; ``answer``: the answer prefix of an inference prompt, the whole
    answer of a training example. ``frame``: for text in another layout (a task's own
    template, a hand-written training example), the text before the protein, between it and
    the answer, and after the answer; the question and evidence are then part of the frame.
    """

    protein: str | None
    question: str
    answer: str = ""
    evidence: str | None = None
    frame: tuple[str, str, str] | None = None

    def render(self) -> tuple[str, tuple[int, int]]:
        """The training text and its answer span (:func:`~instructprotein.prompt.render.render_paper`)."""
        if self.frame is not None:
            before, between, after = self.frame
            head = f"{before}{PROTEIN_OPEN}{self.protein or ''}{PROTEIN_CLOSE}{between}"
            return head + self.answer + after, (len(head), len(head) + len(self.answer))
        return render_paper(self.protein, with_evidence(self.question, self.evidence), self.answer)

    @property
    def text(self) -> str:
        """The inference prompt: the rendering without a trailing space (what follows, an
        option or a generated answer, starts with its space, as the BPE saw it in training)."""
        return self.render()[0].rstrip(" ")

    @classmethod
    def parse(cls, text: str, span: tuple[int, int]) -> Prompt | None:
        """The parts of a rendered training example, or None when it has no protein before its
        answer (design: the protein is the answer), so nothing in it can be cut."""
        from instructprotein.prompt.evidence import HEADER
        from instructprotein.prompt.render import INSTRUCTION_PREFIX, OUTPUT_SEPARATOR

        a, b = span
        i = text.find(PROTEIN_OPEN)
        j = text.find(PROTEIN_CLOSE, i + 1) if i >= 0 else -1
        if i < 0 or j < 0 or j >= a:
            return None
        protein = text[i + len(PROTEIN_OPEN) : j]
        head = text[j + len(PROTEIN_CLOSE) : a]
        if i == 0 and b == len(text) and head.startswith(INSTRUCTION_PREFIX) and head.endswith(OUTPUT_SEPARATOR):
            question = head[len(INSTRUCTION_PREFIX) : -len(OUTPUT_SEPARATOR)]
            evidence = None
            if question.startswith(HEADER) and "\n" in question:
                evidence, question = question.split("\n", 1)
            paper = cls(protein, question, text[a:b], evidence)
            try:
                if paper.render() == (text, (a, b)):
                    return paper
            except ValueError:  # not residues render_paper would write: kept as they are below
                pass
        return cls(protein, "", text[a:b], frame=(text[:i], head, text[b:]))


@dataclass(frozen=True)
class Fitted:
    """A prompt after :func:`fit`: ``prompt`` as the model reads it, its ``tokens`` (bos
    included), and whether it ``fits`` (when not, the prompt is its last try, for the
    caller to refuse or leave out)."""

    prompt: Prompt
    tokens: int
    fits: bool
    protein_cut: bool = False
    evidence_cut: bool = False

    @property
    def residues(self) -> int:
        return len(self.prompt.protein or "")


def fit(
    prompt: Prompt,
    measure: Callable[[Prompt], int] | Any,
    *,
    context_len: int,
    answer_tokens: int = 0,
    evidence_gives_way: bool = True,
    tokens: int | None = None,
) -> Fitted:
    """``prompt`` fitted into ``context_len`` tokens (the rule: see the module notes).

    ``measure``: the tokens (bos included) of a prompt, or a tokenizer (then the inference
    text, :attr:`Prompt.text`, is encoded); ``tokens``: the first measure when the caller
    has it already (training, from its encoded example). ``answer_tokens``: the answer or
    longest option that must still fit after the prompt. One token a residue: cutting the
    protein by ``n`` residues takes exactly ``n`` tokens off.
    """
    if hasattr(measure, "encode"):  # a tokenizer (tokenizers are callable too)
        tokenizer = measure

        def measure(p: Prompt) -> int:
            return len(tokenizer.encode(p.text))

    budget = prompt_budget(context_len, answer_tokens)
    floor = shortest_kept(context_len)
    n = measure(prompt) if tokens is None else tokens
    current, evidence_cut = prompt, False
    while True:
        over = n - budget
        if over <= 0:
            return Fitted(current, n, True, False, evidence_cut)
        seq = current.protein
        if seq and len(seq) - over >= floor:
            cut = replace(current, protein=fit_residues(seq, len(seq) - over))
            return Fitted(cut, n - over, True, True, evidence_cut)
        if not (evidence_gives_way and current.evidence):
            return Fitted(current, n, False, False, evidence_cut)
        current, evidence_cut = replace(current, evidence=shorter_block(current.evidence)), True
        n = measure(current)


def fit_shared(fitted: Sequence[Fitted], proteins: Sequence[str | None]) -> list[Fitted]:
    """Several prompts about one protein share one cut, the shortest any of them needed, so
    their prompts still share the protein's prefix (evaluation asks many questions of a protein).

    ``proteins``: each prompt's protein before :func:`fit` (the same string for one protein).
    The returned prompts' ``tokens`` are those of :func:`fit` less the extra residues cut.
    """
    shortest: dict[str, int] = {}
    for f, seq in zip(fitted, proteins):
        if seq and f.protein_cut:
            shortest[seq] = min(shortest.get(seq, len(seq)), f.residues)
    out = []
    for f, seq in zip(fitted, proteins):
        if seq and seq in shortest and f.fits:
            keep = shortest[seq]
            f = Fitted(
                replace(f.prompt, protein=fit_residues(seq, keep)),
                f.tokens - (f.residues - keep),
                True,
                True,
                f.evidence_cut,
            )
        out.append(f)
    return out


# -- inference prompts -----------------------------------------------------------------------------------


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

    ``sequence`` is a normalised residue string (given the paper's cut here, so every caller
    applies the same rule) or ``None`` for a text-only prompt. No fit to a context: see
    :func:`fit_prompt`.
    """
    protein = cut_sequence(sequence, cut_above, keep) if sequence else None
    return Prompt(protein, question_text, prefix, context).text


def fit_prompt(
    tokenizer: Any,
    sequence: str,
    question_text: str,
    prefix: str = "",
    *,
    context: str | None = None,
    context_len: int,
    answer_tokens: int = 0,
    cut_above: int | None = CUT_ABOVE,
    keep: int = KEEP_LAST,
    max_residues: int | None = None,
) -> Fitted:
    """An inference prompt about ``sequence`` capped (:func:`cap_protein`) and fitted (:func:`fit`)."""
    seq = cap_protein(sequence, cut_above=cut_above, keep=keep, max_residues=max_residues)
    return fit(
        Prompt(seq, question_text, prefix, context), tokenizer, context_len=context_len, answer_tokens=answer_tokens
    )


def design_prompt(question_text: str) -> str:
    """``Instruction: {question}\\n\\nOutput: <protein>``: decoding starts at the first residue."""
    text, _ = render_paper(None, question_text, PROTEIN_OPEN)
    return text


def option_text(option: str) -> str:
    """An option as it continues a prompt: with exactly one leading space."""
    return " " + option.strip()
