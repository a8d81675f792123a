"""Candidate log-likelihoods for many prompts, the protein computed once per protein.

The scorer is :func:`instructprotein.infer.classify.score_token_groups` (the one likelihood
scorer of the project: classify is its groups of one prompt); this module gives it text.
A GO yes/no set asks about several terms per protein (go_mf_test: 22,372 questions about
3,415 proteins) and every one of those prompts starts with the same
``<protein>...</protein>Instruction: Does the protein associate with``: grouped by protein,
the longest common *token* prefix of a group runs once.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from instructprotein.errors import InputError
from instructprotein.infer.classify import OptionScores, score_token_groups

__all__ = ["encode_candidates", "score_grouped", "score_token_groups"]

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.model.tokenizer import ProteinTokenizer


def encode_candidates(tokenizer: ProteinTokenizer, candidates: Sequence[str]) -> list[list[int]]:
    """Token ids of each candidate as written (its leading space included), no bos."""
    enc = tokenizer.encode_batch(list(candidates), add_bos=False)
    out = [e.input_ids for e in enc]
    for c, ids in zip(candidates, out):
        if not ids:
            raise InputError(f"candidate {c!r} encodes to no tokens")
    return out


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
