"""Zero-shot choice among options by the model's likelihood, with the shared prefix run once.

Three rules, computed together from one pass (``rule`` only picks which one decides):

- ``first_token``, the paper's rule: log p(first token of the option | prompt), argmax.
  Options that start with the same token get the same score (``Choice.tied`` says so);
- ``sum``: log p(option | prompt), the sum over the option's tokens: the probability the
  model gives that exact continuation. **The default** (:data:`DEFAULT_RULE`): it is a
  proper likelihood, comparable across options of any length, and never ties on a shared
  first token. It leans toward options of fewer tokens;
- ``mean``: the sum divided by the number of tokens, which removes that lean but favours
  options whose later tokens are easy (the tail of a multi-token word).

How the scoring works (:func:`score_token_groups`, the one likelihood scorer of the project;
evaluation calls it through :mod:`~instructprotein.evaluate.scoring`): prompts are grouped
(classify: each prompt alone; evaluation: the prompts about one protein), the longest common
*token* prefix of a group runs once, and the rows of the group run as one right-padded batch
on its key-value cache, at positions ``P, P+1, ...``: per prompt one row, its remaining tokens
+ its longest option's tokens but the last (the logits after the remaining tokens give every
option's first-token score), and one more row for each other option of more than one token.
The prefix is found on token ids, not text, so nothing assumes where the BPE splits; it stops
one token short of the shortest prompt so every row has a token whose logits predict the
option's first token. Rows run ``max_rows`` at a time; between chunks the cache is cropped
back to the prefix and re-expanded from its first row (``crop`` + ``batch_select_indices``).
Against :func:`score_naive`, one forward pass over prompt + option per (prompt, option), the
prefix is computed once instead of once per option: ``benchmarks/classify_speed.py`` measures
the ratio. Both give the same numbers up to float rounding (the tests check it).

Long proteins and long evidence: prompts are fitted by the prompt contract
(:func:`~instructprotein.prompt.fit_prompt`): the paper's cut (above 1,024 residues keep the
last 1,000; parameters ``cut_above`` / ``keep``), then as in training (a prompt longer than
``context - answer_room`` keeps its protein's first three quarters and last quarter, joined
by one X, and its evidence block gives way before the protein goes below
:func:`~instructprotein.prompt.shortest_kept`); a prompt that still exceeds the model's
context (a question alone too long) is an :class:`~instructprotein.errors.InputError`
naming the item.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from instructprotein.errors import InputError
from instructprotein.infer.inputs import Query, check_fits, clean_sequence
from instructprotein.prompt import CUT_ABOVE, KEEP_LAST, fit_prompt, option_text

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.model.tokenizer import ProteinTokenizer

Rule = Literal["first_token", "sum", "mean"]
RULES: tuple[str, ...] = ("first_token", "sum", "mean")
DEFAULT_RULE: Rule = "sum"


def cache_argument(model: PreTrainedModel) -> str:
    """The keyword a model's ``forward`` takes its key-value cache by: ``cache`` (transformers
    >= 5.2x) or ``past_key_values`` (older releases; newer ones still take it, with a warning)."""
    return _cache_argument(type(model))


@functools.cache
def _cache_argument(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def keep_logits(model: PreTrainedModel, n: int) -> dict[str, int]:
    """``logits_to_keep=n`` where the model takes it: the output layer then runs on the last
    ``n`` positions only (a 4k-token vocabulary over a 1,000-token prompt is most of a
    small model's work). Callers index logits from the end, so either way works."""
    return {"logits_to_keep": n} if _takes_logits_to_keep(type(model)) else {}


@functools.cache
def _takes_logits_to_keep(cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def returned_cache(output: Any) -> Any:
    """The key-value cache of a forward pass's output, under either name."""
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output["past_key_values"]


def context_length(model: PreTrainedModel) -> int:
    """Positions the model reads (OPT: ``max_position_embeddings``); a very large number if unknown."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30


def prompt_residues(model: PreTrainedModel) -> int | None:
    """Residues of a prompt's protein the model was tuned to read (``model.prompt_residues`` of
    its preset, kept in its config); None: as many as its context holds."""
    value = getattr(model.config, "prompt_residues", None)
    return value if isinstance(value, int) and value > 0 else None


@dataclass
class OptionScores:
    """Log-likelihoods of every option after one prompt."""

    id: str
    options: list[str]
    token_counts: list[int]
    first_token: list[float]
    total: list[float]
    first_token_ids: list[int] = field(default_factory=list)

    @property
    def mean(self) -> list[float]:
        return [t / n for t, n in zip(self.total, self.token_counts)]

    def scores(self, rule: Rule = DEFAULT_RULE) -> list[float]:
        _check_rule(rule)
        return {"first_token": self.first_token, "sum": self.total, "mean": self.mean}[rule]

    def best(self, rule: Rule = DEFAULT_RULE) -> int:
        s = self.scores(rule)
        return max(range(len(s)), key=s.__getitem__)

    def probabilities(self, rule: Rule = DEFAULT_RULE) -> list[float]:
        """The scores turned into a distribution over the options (softmax).

        For ``first_token`` and ``sum`` this is the model's probability of each option
        renormalised over the options given; for ``mean`` it is a normalised geometric mean
        per token (a ranking weight rather than a probability).
        """
        s = self.scores(rule)
        top = max(s)
        w = [math.exp(x - top) for x in s]
        z = sum(w)
        return [x / z for x in w]


@dataclass
class Choice:
    """The option a rule picks for one item, with everything behind the decision."""

    id: str
    rule: str
    index: int
    answer: str
    probabilities: list[float]
    options: list[str]
    scores: OptionScores
    tied: bool = False  # the winner shares its score with another option (first_token on a shared first token)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "answer": self.answer,
            "index": self.index,
            "rule": self.rule,
            "tied": self.tied,
            "options": [
                {
                    "option": o,
                    "probability": round(p, 6),
                    "first_token": round(f, 6),
                    "sum": round(t, 6),
                    "mean": round(m, 6),
                    "tokens": n,
                }
                for o, p, f, t, m, n in zip(
                    self.options,
                    self.probabilities,
                    self.scores.first_token,
                    self.scores.total,
                    self.scores.mean,
                    self.scores.token_counts,
                )
            ],
        }


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise InputError(f"unknown scoring rule {rule!r}; use one of {', '.join(RULES)}")


def _per_prompt_options(options: Sequence[str] | Sequence[Sequence[str]], n: int) -> list[list[str]]:
    if not options:
        raise InputError("no options given")
    if all(isinstance(o, str) for o in options):
        shared = list(options)  # type: ignore[arg-type]
        per = [shared] * n
    else:
        per = [list(o) for o in options]  # type: ignore[arg-type]
        if len(per) != n:
            raise InputError(f"{len(per)} option lists for {n} prompts")
    for opts in per:
        if len(opts) < 2:
            raise InputError(f"at least two options are needed to choose among, got {opts!r}")
        for o in opts:
            if not isinstance(o, str) or not o.strip():
                raise InputError(f"an option must be non-empty text, got {o!r}")
        if len({o.strip() for o in opts}) != len(opts):
            raise InputError(f"options repeat: {opts!r}")
    return per


def _prepare(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompts: Sequence[str],
    options: Sequence[str] | Sequence[Sequence[str]],
    ids: Sequence[str] | None,
) -> tuple[list[str], list[list[int]], list[list[str]], dict[str, list[int]]]:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not one string")
    names = list(ids) if ids is not None else [f"item {i + 1}" for i in range(len(prompts))]
    if len(names) != len(prompts):
        raise ValueError(f"{len(names)} ids for {len(prompts)} prompts")
    per = _per_prompt_options(options, len(prompts))
    distinct = sorted({o for opts in per for o in opts})
    encoded = tokenizer.encode_batch([option_text(o) for o in distinct], add_bos=False) if distinct else []
    option_ids = {o: e.input_ids for o, e in zip(distinct, encoded)}
    for o, t in option_ids.items():
        if not t:
            raise InputError(f"option {o!r} encodes to no tokens")
    try:
        prompt_ids = [e.input_ids for e in tokenizer.encode_batch(list(prompts), add_bos=True)]
    except ValueError as exc:
        raise InputError(f"cannot encode a prompt: {exc}") from None
    ctx = context_length(model)
    for name, p, opts in zip(names, prompt_ids, per):
        check_fits(name, len(p), ctx, reserve=max(len(option_ids[o]) for o in opts))
    return names, prompt_ids, per, option_ids


def score_options(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompts: Sequence[str],
    options: Sequence[str] | Sequence[Sequence[str]],
    ids: Sequence[str] | None = None,
) -> list[OptionScores]:
    """Log-likelihood of every option after every prompt; the prompt's cache is shared by its options.

    ``options``: one list shared by all prompts, or one list per prompt. Options are
    written after the prompt with one leading space (:func:`~instructprotein.prompt.option_text`).
    Scored by :func:`score_token_groups`, each prompt a group of its own.
    """
    names, prompt_ids, per, option_ids = _prepare(model, tokenizer, prompts, options, ids)
    return score_token_groups(
        model, prompt_ids, [[option_ids[o] for o in opts] for opts in per], ids=names, candidates=per
    )


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        i = 0
        limit = min(n, len(s))
        while i < limit and s[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


@torch.inference_mode()
def score_token_groups(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    candidate_ids: Sequence[Sequence[int]] | Sequence[Sequence[Sequence[int]]],
    groups: Sequence[Hashable] | None = None,
    *,
    ids: Sequence[str] | None = None,
    candidates: Sequence[str] | Sequence[Sequence[str]] | None = None,
    max_rows: int = 64,
    on_group: Callable[[list[int], float], None] | None = None,
) -> list[OptionScores]:
    """Scores of every candidate after every prompt (token ids, bos included).

    ``candidate_ids``: one list of candidates (each a list of token ids) shared by all
    prompts, or one such list per prompt (``candidates`` likewise gives their names).
    ``groups``: a key per prompt; prompts with the same key share their common token prefix
    (default: each prompt alone). ``on_group(members, seconds)`` is called after each group.
    """
    n = len(prompt_ids)
    shared = bool(candidate_ids) and isinstance(candidate_ids[0][0], int)
    per_cands: list[Sequence[Sequence[int]]] = [candidate_ids] * n if shared else list(candidate_ids)  # type: ignore[list-item]
    if candidates is None:
        per_names: list[list[str]] = [[str(k) for k in range(len(c))] for c in per_cands]
    elif candidates and isinstance(candidates[0], str):
        per_names = [[str(c).strip() for c in candidates]] * n
    else:
        per_names = [[str(c).strip() for c in cs] for cs in candidates]  # type: ignore[union-attr]
    names = list(ids) if ids is not None else [f"item {i + 1}" for i in range(n)]
    keys = list(groups) if groups is not None else list(range(n))
    if len(keys) != n or len(names) != n or len(per_cands) != n or len(per_names) != n:
        raise ValueError("prompt_ids, candidates, groups and ids differ in length")
    ctx = context_length(model)
    for name, p, cs in zip(names, prompt_ids, per_cands):
        if len(p) < 2:
            raise InputError(f"{name}: a prompt needs at least two tokens")
        longest = max(len(c) for c in cs)
        if len(p) + longest > ctx:
            raise InputError(f"{name}: the prompt is {len(p)} tokens plus {longest} to score; the model reads {ctx}")
    order: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    model.eval()
    device = model.device
    pad = int(getattr(model.config, "pad_token_id", 0) or 0)
    results: list[OptionScores | None] = [None] * n
    for members in order.values():
        t0 = time.perf_counter()
        seqs = [prompt_ids[i] for i in members]
        n_prefix = min(_common_prefix(seqs), min(len(s) for s in seqs) - 1)
        prefix = torch.tensor([list(seqs[0][:n_prefix])], device=device)
        res = model(input_ids=prefix, use_cache=True, **keep_logits(model, 1))
        cache = returned_cache(res)
        # one row per prompt gives every candidate's first-token score (and completes the longest
        # candidate); each other candidate of more than one token needs a row of its own
        rows: list[tuple[int, int, bool]] = []
        for m, i in enumerate(members):
            cs = per_cands[i]
            lead = max(range(len(cs)), key=lambda k: len(cs[k]))
            rows.append((m, lead, True))
            rows += [(m, k, False) for k in range(len(cs)) if k != lead and len(cs[k]) > 1]
        first = [[0.0] * len(per_cands[i]) for i in members]
        total: list[list[float | None]] = [[None] * len(per_cands[i]) for i in members]
        batch_size = 1
        for start in range(0, len(rows), max_rows):
            chunk = rows[start : start + max_rows]
            if start > 0:
                extra = cache.get_seq_length() - n_prefix
                if extra > 0:
                    cache.crop(-extra)  # negative: remove this many (old and new transformers alike)
            if len(chunk) != batch_size or start > 0:
                cache.batch_select_indices(torch.zeros(len(chunk), dtype=torch.long, device=device))
            batch_size = len(chunk)
            tails = [list(seqs[m][n_prefix:]) for m, _, _ in chunk]
            cands = [list(per_cands[members[m]][k]) for m, k, _ in chunk]
            width = max(len(t) + len(c) - 1 for t, c in zip(tails, cands))
            inputs = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), n_prefix + width), dtype=torch.long)
            mask[:, :n_prefix] = 1
            targets = torch.zeros((len(chunk), width), dtype=torch.long)
            valid = torch.zeros((len(chunk), width), dtype=torch.bool)
            starts = []
            for row, (tail, cand) in enumerate(zip(tails, cands)):
                seq = tail + cand[:-1]
                inputs[row, : len(seq)] = torch.tensor(seq)
                mask[row, n_prefix : n_prefix + len(seq)] = 1
                s = len(tail) - 1  # logits here predict the candidate's first token
                targets[row, s : s + len(cand)] = torch.tensor(cand)
                valid[row, s : s + len(cand)] = True
                starts.append(s)
            positions = torch.arange(n_prefix, n_prefix + width).expand(len(chunk), width)
            out = model(
                input_ids=inputs.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=True,
                **{cache_argument(model): cache},
            )
            logp = torch.log_softmax(out.logits.float(), dim=-1)
            picked = logp.gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1) * valid.to(device)
            sums = picked.sum(dim=1).tolist()
            for row, (m, k, lead) in enumerate(chunk):
                total[m][k] = sums[row]
                if lead:
                    ids_ = torch.tensor([c[0] for c in per_cands[members[m]]], device=device)
                    first[m] = logp[row, starts[row]].index_select(0, ids_).tolist()
        for m, i in enumerate(members):
            cs = per_cands[i]
            tot = [first[m][k] if t is None else t for k, t in enumerate(total[m])]  # one-token candidates
            results[i] = OptionScores(
                names[i], list(per_names[i]), [len(c) for c in cs], first[m], tot, [c[0] for c in cs]
            )
        if on_group is not None:
            on_group(members, time.perf_counter() - t0)
    return [r for r in results if r is not None]


@torch.inference_mode()
def score_naive(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompts: Sequence[str],
    options: Sequence[str] | Sequence[Sequence[str]],
    ids: Sequence[str] | None = None,
) -> list[OptionScores]:
    """The reference: one forward pass over prompt + option for every (prompt, option), no cache.

    Same tokens and the same numbers as :func:`score_options` (up to float rounding); kept
    for tests and for ``benchmarks/classify_speed.py``.
    """
    names, prompt_ids, per, option_ids = _prepare(model, tokenizer, prompts, options, ids)
    model.eval()
    device = model.device
    out: list[OptionScores] = []
    for name, p, opts in zip(names, prompt_ids, per):
        first, total, counts = [], [], []
        for o in opts:
            t = option_ids[o]
            ids_t = torch.tensor([p + t], device=device)
            # logits at positions len(p)-1 .. len(p)+len(t)-2 predict the option's tokens
            res = model(input_ids=ids_t, use_cache=False, **keep_logits(model, len(t) + 1))
            logits = res.logits[0, -(len(t) + 1) : -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            picked = logp.gather(-1, torch.tensor(t, device=device).unsqueeze(-1)).squeeze(-1)
            first.append(float(picked[0]))
            total.append(float(picked.sum()))
            counts.append(len(t))
        firsts = [option_ids[o][0] for o in opts]
        out.append(OptionScores(name, [o.strip() for o in opts], counts, first, total, firsts))
    return out


def decide(scores: OptionScores, rule: Rule = DEFAULT_RULE) -> Choice:
    """The option ``rule`` picks, with its probabilities among the options."""
    s = scores.scores(rule)
    best = scores.best(rule)
    tied = sum(1 for x in s if x == s[best]) > 1
    return Choice(scores.id, rule, best, scores.options[best], scores.probabilities(rule), scores.options, scores, tied)


def _longest_option(tokenizer: ProteinTokenizer, options: Sequence[str] | Sequence[Sequence[str]]) -> int:
    flat = [o for opts in options for o in ([opts] if isinstance(opts, str) else opts)] if options else []
    strings = [o for o in flat if isinstance(o, str) and o.strip()]
    if not strings:
        return 0
    return max(len(e.input_ids) for e in tokenizer.encode_batch([option_text(o) for o in strings], add_bos=False))


def check_options_fit(
    tokenizer: ProteinTokenizer, options: Sequence[str] | Sequence[Sequence[str]], context: int
) -> None:
    """:class:`InputError` naming the option when one alone takes over half the model's context.

    Without this a 5,000-character option surfaced as "the prompt is N tokens ... give a
    shorter sequence", blaming the protein for what the option did.
    """
    flat = [o for opts in options for o in ([opts] if isinstance(opts, str) else opts)] if options else []
    strings = [(i, o) for i, o in enumerate(flat) if isinstance(o, str) and o.strip()]
    if not strings or max(len(option_text(o).encode()) for _, o in strings) <= context // 2:
        return  # a byte-level BPE token covers at least one byte: nothing to encode
    encoded = tokenizer.encode_batch([option_text(o) for _, o in strings], add_bos=False)
    for (i, o), e in zip(strings, encoded):
        n = len(e.input_ids)
        if n > context // 2:
            raise InputError(
                f"option {i + 1} ({o[:40]!r}...) is {n} tokens, but the model reads at most "
                f"{context} tokens in all and an option may take at most half: give a shorter option"
            )


def classify(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    sequences: Sequence[str | Query],
    question: str | Sequence[str],
    options: Sequence[str] | Sequence[Sequence[str]],
    *,
    prefix: str = "",
    rule: Rule = DEFAULT_RULE,
    contexts: Sequence[str | None] | None = None,
    cut_above: int | None = CUT_ABOVE,
    keep: int = KEEP_LAST,
    naive: bool = False,
) -> list[Choice]:
    """Pick one option per sequence: ``{protein}Instruction: {question}\\n\\nOutput: {prefix} {option}``.

    ``sequences``: normalised residue strings or :class:`~instructprotein.infer.inputs.Query`
    (whose ids name the items in errors); ``question``: one for all, or one per sequence;
    ``contexts``: an optional retrieval block per sequence (``Homologs: ...``, see
    :mod:`~instructprotein.infer.retrieval`), written before the question. ``naive`` scores
    one prompt at a time (the reference, for checking and timing).
    """
    _check_rule(rule)
    if isinstance(sequences, str):
        sequences = [sequences]
    queries = [
        q if isinstance(q, Query) else Query(f"item {i + 1}", clean_sequence(q, f"item {i + 1}"))
        for i, q in enumerate(sequences)
    ]
    questions = [question] * len(queries) if isinstance(question, str) else list(question)
    if len(questions) != len(queries):
        raise InputError(f"{len(questions)} questions for {len(queries)} sequences")
    if any(not q.strip() for q in questions):
        raise InputError("empty question")
    ctxs = list(contexts) if contexts is not None else [None] * len(queries)
    if len(ctxs) != len(queries):
        raise InputError(f"{len(ctxs)} retrieval contexts for {len(queries)} sequences")
    ctx = context_length(model)
    check_options_fit(tokenizer, options, ctx)
    longest = _longest_option(tokenizer, options)  # the prompt ends where training cut its prompts
    most = prompt_residues(model)
    prompts = [
        fit_prompt(
            tokenizer,
            q.sequence,
            qu,
            prefix,
            context=c,
            context_len=ctx,
            answer_tokens=longest,
            cut_above=cut_above,
            keep=keep,
            max_residues=most,
        ).prompt.text
        for q, qu, c in zip(queries, questions, ctxs)
    ]
    scorer = score_naive if naive else score_options
    scored = scorer(model, tokenizer, prompts, options, ids=[q.id for q in queries])
    return [decide(s, rule) for s in scored]
