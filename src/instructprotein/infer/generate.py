"""Greedy answers (what :mod:`~instructprotein.infer.describe` asks) and design (text -> sequences).

**design** samples (temperature, top-p, a seed) from ``Instruction: {request}\\n\\nOutput:
<protein>``, constrained by :class:`ProteinGrammar`: inside a protein segment only the 20
standard residue tokens or ``</protein>`` can follow, ``</protein>`` is masked until
``min_len`` residues and forced at ``max_len``; decoding stops at ``</protein>``. Each
design is checked (:mod:`~instructprotein.infer.checks`).

Both generate with the key-value cache (``use_cache=True``, transformers' default); the
speed difference is measured by ``benchmarks/generation_speed.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from instructprotein.errors import InputError
from instructprotein.infer.checks import SequenceChecks, check_designs
from instructprotein.infer.classify import context_length, prompt_residues
from instructprotein.infer.inputs import Query, check_description, check_fits
from instructprotein.infer.prompts import (
    design_prompt,
    question,
)
from instructprotein.infer.retrieval import ProteinIndex
from instructprotein.infer.terms import TermIndex, TermSet
from instructprotein.prompt import CUT_ABOVE, KEEP_LAST, STANDARD_RESIDUES, fit_prompt

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.model.tokenizer import ProteinTokenizer

try:  # a LogitsProcessor subclass when transformers is there (it is wherever a model is)
    from transformers import LogitsProcessor as _ProcessorBase
except ImportError:  # pragma: no cover
    _ProcessorBase = object  # type: ignore[assignment,misc]


# -- constrained decoding -----------------------------------------------------------------------------


class ProteinGrammar(_ProcessorBase):  # type: ignore[misc,valid-type]
    """Logits processor: inside ``<protein>`` only residues (20 standard) or ``</protein>``.

    Per row, the state is read from the ids so far: the row is inside a protein segment when
    its last ``<protein>`` comes after its last ``</protein>``, and the residues written so far
    are the tokens after that ``<protein>``. Inside: every token but the 20 standard
    residues is masked, ``</protein>`` is allowed from ``min_len`` residues on, and at
    ``max_len`` it is the only token allowed. Outside (``block_outside``): residue tokens and
    ``</protein>`` are masked, so text answers cannot drift into residue tokens.
    Must run before temperature / top-k / top-p (they would otherwise keep only tokens this
    masks): :func:`sample_config` puts it first.
    """

    def __init__(
        self,
        tokenizer: ProteinTokenizer,
        *,
        min_len: int = 1,
        max_len: int | None = None,
        block_outside: bool = False,
    ):
        if min_len < 0 or (max_len is not None and max_len < max(min_len, 1)):
            raise InputError(f"length range [{min_len}, {max_len}] is empty")
        self.open_id = tokenizer.protein_open_id
        self.close_id = tokenizer.protein_close_id
        self.residue_ids = sorted(tokenizer.residue_ids[a] for a in STANDARD_RESIDUES)
        others = set(tokenizer.residue_ids.values()) | {tokenizer.unknown_residue_id}
        self.all_residue_ids = sorted(i for i in others if tokenizer.convert_ids_to_tokens([i])[0].startswith("Ƥ"))
        self.min_len = min_len
        self.max_len = max_len
        self.block_outside = block_outside
        self._masks: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def _allowed(self, vocab: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (vocab, str(device))
        if key not in self._masks:
            inside = torch.zeros(vocab, dtype=torch.bool, device=device)
            inside[self.residue_ids] = True
            outside = torch.ones(vocab, dtype=torch.bool, device=device)
            outside[self.all_residue_ids] = False
            outside[self.close_id] = False
            self._masks[key] = (inside, outside)
        return self._masks[key]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, length = input_ids.shape
        inside_mask, outside_mask = self._allowed(scores.shape[-1], scores.device)
        pos = torch.arange(length, device=input_ids.device).expand(batch, length)
        none = torch.full_like(pos, -1)
        last_open = torch.where(input_ids == self.open_id, pos, none).max(dim=1).values
        last_close = torch.where(input_ids == self.close_id, pos, none).max(dim=1).values
        inside = last_open > last_close
        written = length - 1 - last_open  # residues after the open tag
        outside = outside_mask if self.block_outside else torch.ones_like(outside_mask)
        allowed = torch.where(inside[:, None], inside_mask[None, :], outside[None, :])  # (batch, vocab), a new tensor
        allowed[:, self.close_id] = torch.where(inside, written >= self.min_len, allowed[:, self.close_id])
        if self.max_len is not None:
            at_max = inside & (written >= self.max_len)
            if bool(at_max.any()):
                allowed[at_max] = False
                allowed[at_max, self.close_id] = True
        return scores.masked_fill(~allowed, float("-inf"))


def _generation_kwargs(tokenizer: ProteinTokenizer) -> dict[str, Any]:
    return {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id}


def sample_config(temperature: float, top_p: float) -> tuple[dict[str, Any], list[Any]]:
    """``generate`` keywords that switch transformers' own warpers off, and our warpers in the
    right order after the grammar (transformers appends custom processors after its own)."""
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    if not temperature > 0:
        raise InputError(f"temperature must be positive, got {temperature}")
    if not 0 < top_p <= 1:
        raise InputError(f"top_p must be in (0, 1], got {top_p}")
    warpers: list[Any] = []
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0}, warpers


@torch.inference_mode()
def generate_answers(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompts: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    use_cache: bool = True,
) -> list[str]:
    """Greedy answers to text prompts; stops at eos.

    Prompts run ``batch_size`` at a time, sorted by length and left-padded (the answers are
    the same as one prompt at a time; the test checks it). Residue tokens and
    ``</protein>`` are masked outside protein segments. ``max_new_tokens`` is lowered to what
    the context leaves after the prompt; prompts are batched only with others of the same
    budget, so a long neighbour never shortens an answer. A prompt that leaves fewer than 8
    tokens is an :class:`InputError` naming it.
    """
    from transformers import LogitsProcessorList

    if not prompts:
        return []
    names = list(names) if names is not None else [f"prompt {i + 1}" for i in range(len(prompts))]
    ctx = context_length(model)
    encoded = [tokenizer.encode(p) for p in prompts]
    for name, ids in zip(names, encoded):
        check_fits(name, len(ids), ctx, reserve=8)
    grammar = LogitsProcessorList([ProteinGrammar(tokenizer, block_outside=True)])
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    budget = [min(max_new_tokens, ctx - len(ids)) for ids in encoded]
    chunks: list[list[int]] = []
    for i in order:  # consecutive prompts of one budget, at most batch_size of them
        if chunks and budget[chunks[-1][0]] == budget[i] and len(chunks[-1]) < max(batch_size, 1):
            chunks[-1].append(i)
        else:
            chunks.append([i])
    answers: list[str] = [""] * len(prompts)
    model.eval()
    for chunk in chunks:
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            n = len(encoded[i])
            ids[row, width - n :] = torch.tensor(encoded[i])
            mask[row, width - n :] = 1
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=budget[chunk[0]],  # the same alone: width + budget <= ctx for every row
            do_sample=False,
            num_beams=1,
            use_cache=use_cache,
            eos_token_id=tokenizer.eos_token_id,
            logits_processor=grammar,
            **_generation_kwargs(tokenizer),
        )
        for row, i in enumerate(chunk):
            answers[i] = tokenizer.decode(out[row, width:]).strip()
    return answers


def prompt_fits(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    questions: Sequence[str],
    *,
    prefix: str = "",
    reserve: int = 16,
    cut_above: int | None = CUT_ABOVE,
    keep: int = KEEP_LAST,
) -> Callable[[Query, str], bool]:
    """``fits(query, block)``: do the prompts for every question, with ``block`` before it and
    ``reserve`` answer tokens to spare, fit the model's context with the whole block, once their
    protein is cut as far as it may be (:func:`~instructprotein.prompt.fit`)? (For choosing the
    homologs a command reports: the protein is cut before the evidence is, as in training.)"""
    ctx, most = context_length(model), prompt_residues(model)

    def fits(query: Query, block: str) -> bool:
        for text in questions:
            got = fit_prompt(
                tokenizer,
                query.sequence,
                text,
                prefix,
                context=block,
                context_len=ctx,
                answer_tokens=reserve,
                cut_above=cut_above,
                keep=keep,
                max_residues=most,
            )
            if not got.fits or got.evidence_cut:
                return False
        return True

    return fits


# -- design ---------------------------------------------------------------------------------------------

_INSTRUCTION_START = re.compile(
    r"^(design|generate|write|create|propose|give|make|produce|suggest|i need|i want|can you|could you|please)\b", re.I
)
_CLAUSE_START = re.compile(
    r"^(binds?|has|have|is|are|enables?|takes?|catalyzes|catalyses|localizes|localises|participates|acts|functions)\b",
    re.I,
)


def design_question(description: str, length: int | None = None) -> str:
    """The instruction for a request, in the wording of the ``design`` task.

    - a full instruction ("Design a ...", "Generate ...", "I need ...") is used as it is;
    - a verb clause ("binds zinc ion and is located in nucleus") fills phrasing 0,
      "Design a protein that {description}." (phrasing 8 with a length hint:
      "Design a protein of about {length} residues that ...");
    - anything else ("zinc ion binding; nucleus") fills phrasing 1, "Generate the sequence
      of a protein with these properties: {properties}." (phrasing 10 with a length hint).
    """
    text = check_description(description).rstrip(".")
    if _INSTRUCTION_START.match(text):
        return text if text.endswith((".", "?", "!")) else text + "."
    if _CLAUSE_START.match(text):
        if length:
            return question("design", 8, description=text, length=str(length))
        return question("design", 0, description=text)
    if length:
        return question("design", 10, properties=text, length=str(length))
    return question("design", 1, properties=text)


@dataclass
class Design:
    """One designed sequence, how its decoding ended, and its checks."""

    id: str
    sequence: str
    ended_by: str  # "model" (</protein> sampled), "max_len" (forced) or "exemplar" (an exemplar rewritten)
    checks: SequenceChecks | None = None
    verification: float | None = None  # the model's own score: request_gain (mean log-prob, request - neutral)
    exemplar: Any = None  # the Exemplar it was rewritten from, if any
    exemplar_identity: float | None = None

    @property
    def carries_request(self) -> bool | None:
        """Whether the closest known protein carries every requested term (None: nothing to say)."""
        c = self.checks
        if c is None or not c.requested or c.closest is None:
            return None
        return all(r["carried"] for r in c.requested)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sequence": self.sequence,
            "length": len(self.sequence),
            "ended_by": self.ended_by,
            "checks": self.checks.to_dict() if self.checks else None,
            "closest": self.checks.closest.accession if self.checks and self.checks.closest else None,
            "closest_identity": round(self.checks.closest.identity, 4) if self.checks and self.checks.closest else None,
            "carries_request": self.carries_request,
            "verification": round(self.verification, 4) if self.verification is not None else None,
            "exemplar": self.exemplar.to_dict() if self.exemplar is not None else None,
            "exemplar_identity": round(self.exemplar_identity, 4) if self.exemplar_identity is not None else None,
        }


@dataclass
class DesignRun:
    """Everything one design request produced."""

    request: str
    prompt: str
    designs: list[Design]
    requested_terms: TermSet | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "prompt": self.prompt,
            "settings": self.settings,
            "requested_terms": self.requested_terms.to_dict() if self.requested_terms is not None else None,
            "designs": [d.to_dict() for d in self.designs],
        }


DEFAULT_MAX_LEN = 400
"""Longest design by default, where the model's context leaves room for it."""


def design_max_len(context_len: int, prompt_tokens: int) -> int:
    """The default ``max_len``: 400 residues, or fewer where the prompt and ``</protein>`` leave
    less of the model's context (the tiny preset's 256 tokens leave about 200 after a request).

    A fixed 400 would refuse every request on a small model; the user who wants longer
    designs needs a model with a longer context, and an explicit ``max_len`` above the room
    is still refused with the figure to lower it to.
    """
    return min(DEFAULT_MAX_LEN, context_len - prompt_tokens - 1)


def resolved_max_len(context_len: int, prompt_tokens: int, min_len: int, max_len: int | None) -> int:
    """``max_len`` as given, or :func:`design_max_len`; refused when that leaves less than ``min_len``."""
    if max_len is not None:
        return max_len
    room = design_max_len(context_len, prompt_tokens)
    if room < min_len:
        raise InputError(
            f"the request is {prompt_tokens} tokens, which leaves the model ({context_len} tokens) room for "
            f"{max(room, 0)} residues, below min_len {min_len}: shorten the request or lower min_len"
        )
    return room


def default_max_len(
    model: PreTrainedModel, tokenizer: ProteinTokenizer, description: str, length: int | None = None, min_len: int = 1
) -> int:
    """The ``max_len`` :func:`design` uses for this request when none is given."""
    prompt = design_prompt(design_question(description, length))
    return resolved_max_len(context_length(model), len(tokenizer.encode(prompt)), min_len, None)


def design_seed(seed: int, index: int) -> int:
    """The seed of design ``index`` (0-based) of a request seeded ``seed``: a hash of both, so
    design i depends on nothing else (``--seed 1 --n 2`` is the first two of ``--seed 1 --n 4``)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8, person=b"ip-design").digest()
    return int.from_bytes(digest, "little") >> 1  # 63 bits: torch.Generator.manual_seed takes it on any device


class RowSampler:
    """A logits processor that samples each row with its own generator and leaves only that token.

    ``generate(do_sample=True)`` draws every row from one RNG, so design 1 changed with the
    number of designs asked for. Here row i draws from a generator seeded by
    :func:`design_seed`; it runs after the grammar and the warpers, and greedy decoding then
    takes the one token left. The caller's RNG is untouched.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device):
        self.generators = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(s)
            self.generators.append(g)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float(), dim=-1)
        picked = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picked, 0.0)
        return out


@torch.inference_mode()
def sample_proteins(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompt: str,
    *,
    n: int = 4,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int = 0,
    min_len: int = 30,
    max_len: int | None = None,
    use_cache: bool = True,
) -> list[tuple[str, str]]:
    """``n`` sequences sampled after ``prompt`` (which ends in ``<protein>``): (residues, ended_by).

    ``max_len`` None: :func:`design_max_len`. Reproducible: the same prompt, settings and
    ``seed`` give the same sequences, and sequence i does not depend on ``n`` (each row
    samples from its own generator, :class:`RowSampler`; the caller's RNG is untouched).
    """
    from transformers import LogitsProcessorList

    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if min_len < 1:
        raise InputError(f"min_len must be at least 1, got {min_len}")
    ids = tokenizer.encode(prompt)
    if ids[-1] != tokenizer.protein_open_id:
        raise ValueError("a design prompt must end with <protein>")
    ctx = context_length(model)
    max_len = resolved_max_len(ctx, len(ids), min_len, max_len)
    if max_len < min_len:
        raise InputError(f"max_len {max_len} is below min_len {min_len}")
    if len(ids) + max_len + 1 > ctx:
        raise InputError(
            f"the request is {len(ids)} tokens and max_len {max_len} residues + </protein> must follow it, "
            f"but the model reads at most {ctx} tokens: lower max_len to {max(ctx - len(ids) - 1, 0)} "
            "or shorten the request"
        )
    _, warpers = sample_config(temperature, top_p)
    grammar = ProteinGrammar(tokenizer, min_len=min_len, max_len=max_len)
    sampler = RowSampler([design_seed(seed, i) for i in range(n)], model.device)
    model.eval()
    input_ids = torch.tensor([ids] * n, device=model.device)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=max_len + 1,
        eos_token_id=tokenizer.protein_close_id,
        use_cache=use_cache,
        logits_processor=LogitsProcessorList([grammar, *warpers, sampler]),
        do_sample=False,  # the sampler has drawn each row's token; greedy decoding takes it
        **_generation_kwargs(tokenizer),
    )
    letters = {i: a for a, i in tokenizer.residue_ids.items()}
    results = []
    for row in out[:, len(ids) :].tolist():
        residues = []
        ended = "max_len"
        for t in row:
            if t == tokenizer.protein_close_id:
                ended = "model" if len(residues) < max_len else "max_len"
                break
            if t == tokenizer.pad_token_id and t not in letters:
                break
            residues.append(letters[t])
        results.append(("".join(residues), ended))
    return results


STRATEGIES = ("auto", "exemplar", "sample")
NOVELTY_IDENTITY = 0.7
"""A design at or above this identity to its closest known protein is not new (the novelty line)."""


def design(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    description: str,
    *,
    n: int = 4,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int = 0,
    min_len: int = 30,
    max_len: int | None = None,
    length: int | None = None,
    terms: TermIndex | None = None,
    index: ProteinIndex | None = None,
    check: bool = True,
    fuzzy: bool = False,
    sensitivity: float = 4.0,
    strategy: str = "auto",
    candidates: int | None = None,
    mutation_rate: float | None = None,
    exclude: frozenset[str] = frozenset(),
    max_identity: float = NOVELTY_IDENTITY,
) -> DesignRun:
    """Design ``n`` proteins for a text request, checked, the best of ``candidates``.

    ``strategy``: ``sample`` writes each protein from the request alone; ``exemplar``
    rewrites natural proteins that carry the requested GO terms
    (:mod:`~instructprotein.infer.exemplars`; needs ``terms``); ``auto`` (default) is
    ``exemplar`` where the request names GO terms some graph protein carries, else ``sample``.
    ``candidates`` (default ``2 n`` with a graph, else ``n``) are generated and ranked:
    checks passed, new (closest known protein below ``max_identity``), the closest protein
    carries the request, then the model's own verification score (:func:`~instructprotein.infer.exemplars.request_gain`),
    and the best ``n`` kept. ``length`` adds a length hint to the instruction;
    ``min_len`` / ``max_len`` bound the residues (``max_len`` None: :func:`design_max_len`).
    With ``index`` each design gets its closest known protein; with ``terms`` the GO terms
    named in the request are mapped and checked against that protein's annotations.
    ``exclude``: proteins never used as exemplars (an evaluation's held-out ones).
    """
    from instructprotein.infer.exemplars import (
        MUTATION_RATE,
        find_exemplars,
        identity_of,
        request_gain,
        rewrite_exemplars,
    )

    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy == "exemplar" and terms is None:
        raise InputError("exemplar design needs a knowledge graph (its proteins are the exemplars)")
    q = design_question(description, length)
    prompt = design_prompt(q)
    max_len = resolved_max_len(context_length(model), len(tokenizer.encode(prompt)), min_len, max_len)
    requested = terms.find(check_description(description), source="request", fuzzy=fuzzy) if terms is not None else None
    pool = candidates if candidates is not None else (2 * n if (index is not None or terms is not None) else n)
    if pool < n:
        raise InputError(f"candidates ({pool}) must be at least n ({n})")
    rate = MUTATION_RATE if mutation_rate is None else mutation_rate
    exemplars = []
    term_ids = [m.term.id for m in requested.direct] if requested is not None else []
    note = None
    if strategy != "sample" and terms is not None:
        if term_ids:
            exemplars = find_exemplars(
                terms.kg, term_ids, n=pool, seed=seed, exclude=exclude, min_len=min_len, max_len=max_len
            )
        if not exemplars:
            note = "no known protein carries the requested terms: sampled from the request alone"
            if strategy == "exemplar":
                raise InputError(
                    f"exemplar design: {note.split(':')[0]} ({', '.join(term_ids) or 'no GO term recognised'})"
                )
    designs: list[Design] = []
    if exemplars:
        picks = [exemplars[k % len(exemplars)] for k in range(pool)]
        seqs = [
            rewrite_exemplars(
                model, tokenizer, prompt, [e.sequence], rate=rate, temperature=temperature, seed=seed + k
            )[0]
            for k, e in enumerate(picks)
        ]
        designs = [
            Design(f"candidate{k + 1}", s, "exemplar", exemplar=e, exemplar_identity=identity_of(s, e.sequence))
            for k, (s, e) in enumerate(zip(seqs, picks))
        ]
    else:
        samples = sample_proteins(
            model,
            tokenizer,
            prompt,
            n=pool,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            min_len=min_len,
            max_len=max_len,
        )
        designs = [Design(f"candidate{i + 1}", s, e) for i, (s, e) in enumerate(samples)]
    if check:
        checked = check_designs(
            [d.sequence for d in designs],
            min_len=min_len,
            max_len=max_len,
            index=index,
            requested=requested,
            terms=terms,
            sensitivity=sensitivity,
        )
        for d, c in zip(designs, checked):
            d.checks = c
    for d, v in zip(designs, request_gain(model, tokenizer, q, [d.sequence for d in designs])):
        d.verification = v
    if pool > n:

        def rank(d: Design) -> tuple:
            c = d.checks
            new = c is None or c.closest is None or c.closest.identity < max_identity
            return (c is None or c.passed, new, d.carries_request is True, d.verification or float("-inf"))

        designs = sorted(designs, key=rank, reverse=True)[:n]
    for k, d in enumerate(designs):
        d.id = f"design{k + 1}"
    settings = {
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "min_len": min_len,
        "max_len": max_len,
        "length": length,
        "strategy": "exemplar" if exemplars else "sample",
        "candidates": pool,
        "max_identity": max_identity,
    }
    if exemplars:
        settings["mutation_rate"] = rate
    if note:
        settings["note"] = note
    return DesignRun(check_description(description), prompt, designs, requested, settings)
