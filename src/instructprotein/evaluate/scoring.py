"""Candidate log-likelihoods for many prompts, the protein computed once per protein.

:func:`instructprotein.infer.classify.score_options` runs one forward pass per prompt and
scores all options on its cache. A GO yes/no set asks about several terms per protein
(go_mf_test: 22,372 questions about 3,415 proteins) and every one of those prompts starts
with the same ``<protein>...</protein>Instruction: Does the protein associate with``: here
prompts are grouped (by protein), the longest common *token* prefix of a group runs once,
and the rows of the group run as one right-padded batch on its cache, at positions ``P,
P+1, ...``: per prompt one row, its remaining tokens + its longest candidate's tokens but
the last (the logits after the remaining tokens give every candidate's first-token score),
and one more row for each other candidate of more than one token. With one-token answers
(`` yes`` / `` no`` in most vocabularies) a prompt costs one row. One prompt per group is
``score_options``' scheme.

The common prefix is found on token ids, not text, so nothing assumes where the BPE splits;
it stops one token short of the shortest prompt so every row has a token whose logits
predict the candidate's first token. The result is the same :class:`OptionScores` as
:mod:`~instructprotein.infer.classify` (first-token score, full-option sum, token counts),
so :func:`~instructprotein.infer.classify.decide` applies, and the test checks the numbers
against :func:`~instructprotein.infer.classify.score_naive`.

Rows are run ``max_rows`` at a time; between chunks the cache is cropped back to the prefix
and re-expanded from its first row (``crop`` + ``batch_select_indices``), so the prefix is
never recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

import torch

from instructprotein.errors import InputError
from instructprotein.infer.classify import (
    OptionScores,
    cache_argument,
    context_length,
    keep_logits,
    returned_cache,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.model.tokenizer import ProteinTokenizer


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


def encode_candidates(tokenizer: ProteinTokenizer, candidates: Sequence[str]) -> list[list[int]]:
    """Token ids of each candidate as written (its leading space included), no bos."""
    enc = tokenizer.encode_batch(list(candidates), add_bos=False)
    out = [e.input_ids for e in enc]
    for c, ids in zip(candidates, out):
        if not ids:
            raise InputError(f"candidate {c!r} encodes to no tokens")
    return out


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
    import time

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
            results[i] = OptionScores(names[i], list(per_names[i]), [len(c) for c in cs], first[m], tot,
                                      [c[0] for c in cs])  # fmt: skip
        if on_group is not None:
            on_group(members, time.perf_counter() - t0)
    return [r for r in results if r is not None]


def score_grouped(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompts: Sequence[str],
    candidates: Sequence[str],
    groups: Sequence[Hashable] | None = None,
    *,
    ids: Sequence[str] | None = None,
    max_rows: int = 64,
) -> list[OptionScores]:
    """:func:`score_token_groups` on text prompts and candidates (each candidate as written)."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not one string")
    try:
        prompt_ids = [e.input_ids for e in tokenizer.encode_batch(list(prompts), add_bos=True)]
    except ValueError as exc:
        raise InputError(f"cannot encode a prompt: {exc}") from None
    cand_ids = encode_candidates(tokenizer, candidates)
    return score_token_groups(model, prompt_ids, cand_ids, groups, ids=ids, candidates=candidates, max_rows=max_rows)
