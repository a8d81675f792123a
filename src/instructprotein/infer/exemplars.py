"""Exemplar-conditioned design and the model's own verification of a design.

A small model samples proteins that look like proteins but carry nothing of the request
(``heldout_design`` measured the closest training protein carrying the request for 0 % of
plain samples, no better than shuffled residues). Natural proteins that carry the requested
GO terms do carry it; a design that stays near one of them, but not too near, inherits
that while being new. This is PoET's idea (condition generation on homologs of the family
wanted) in the form a causal LM that was never trained with exemplars in its prompt can use:

1. **retrieve** exemplars: graph proteins carrying the most requested terms (by
   propagation), within the length bounds, none of the excluded ones (held-out and
   decontaminated proteins in an evaluation);
2. **rewrite** each: the model reads the design prompt followed by the exemplar's residues
   (one forward pass), and at a seeded ``rate`` of positions a residue is replaced by one
   sampled from the model's next-residue distribution there (the exemplar's own residue
   excluded). The result keeps about ``1 - rate`` of the exemplar: at the default 0.4,
   about 60 % identity, under the 70 % novelty line;
3. **verify** (:func:`request_gain`): the model's own score of whether a sequence fits the
   request, the mean log-probability per residue after the request minus after a neutral
   request ("Design a protein."): positive when the request makes the sequence more likely.
   It is the ranking score of ``heldout_design_rank`` (``kind: rank``) against a fixed reference.

The closest training protein and whether it carries the request are the checks
(:mod:`.checks`) every design already gets; :func:`~instructprotein.infer.generate.design`
samples more candidates than asked and keeps the ones those checks and this score prefer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from instructprotein.infer.classify import context_length

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.kg.store import KnowledgeGraph
    from instructprotein.model.tokenizer import ProteinTokenizer

MUTATION_RATE = 0.4
"""Share of an exemplar's residues the model rewrites: designs keep about 60 % identity to it."""
NEUTRAL_REQUEST = "Design a protein."
"""The reference request of :func:`request_gain`."""
POOL_LIMIT = 5000
"""Carriers looked at per request, at most (a seeded sample of the best-matching ones)."""


@dataclass(frozen=True)
class Exemplar:
    """A natural protein a design starts from, and how many requested terms it carries."""

    accession: str
    sequence: str
    carried: int
    of: int

    def to_dict(self) -> dict[str, Any]:
        return {"accession": self.accession, "length": len(self.sequence), "carries": f"{self.carried}/{self.of}"}


def find_exemplars(
    kg: KnowledgeGraph,
    terms: Iterable[str],
    *,
    n: int,
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
    min_len: int = 1,
    max_len: int | None = None,
) -> list[Exemplar]:
    """Up to ``n`` distinct graph proteins carrying the most of ``terms`` (by propagation), a
    seeded draw among the best; none when no protein carries any of them."""
    wanted = [t for t in dict.fromkeys(terms)]
    counts: dict[str, int] = {}
    for t in wanted:
        try:
            carriers = kg.proteins_with(t)
        except KeyError:
            continue
        for a in carriers:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return []
    rng = random.Random(f"{seed}:{','.join(sorted(wanted))}")
    out: list[Exemplar] = []
    for level in sorted(set(counts.values()), reverse=True):
        group = sorted(a for a, c in counts.items() if c == level and a not in exclude)
        rng.shuffle(group)
        group = group[:POOL_LIMIT]
        for start in range(0, len(group), 64):  # read sequences a chunk at a time: most requests need a few
            chunk = group[start : start + 64]
            seqs = _sequences(kg, chunk)
            for a in chunk:
                s = seqs.get(a)
                if s and len(s) >= min_len and (max_len is None or len(s) <= max_len) and set(s) <= _STANDARD:
                    out.append(Exemplar(a, s, level, len(wanted)))
                    if len(out) == n:
                        return out
        if out:  # only the best-matching level, unless it had none usable
            return out
    return out


_STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")


def _sequences(kg: KnowledgeGraph, accessions: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(accessions), 500):
        chunk = list(accessions[i : i + 500])
        marks = ",".join("?" * len(chunk))
        for acc, seq in kg.con.execute(f"SELECT accession, sequence FROM protein WHERE accession IN ({marks})", chunk):
            out[acc] = seq
    return out


def identity_of(design: str, exemplar: str) -> float:
    """Identity of a rewritten exemplar to its exemplar: substitutions only, so position by
    position over the design's length."""
    if not design:
        return 0.0
    return sum(a == b for a, b in zip(design, exemplar)) / len(design)


def _residue_ids(tokenizer: ProteinTokenizer, sequence: str) -> list[int]:
    ids = tokenizer.residue_ids
    return [ids.get(a, tokenizer.unknown_residue_id) for a in sequence]


@torch.inference_mode()
def rewrite_exemplars(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    prompt: str,
    exemplars: Sequence[str],
    *,
    rate: float = MUTATION_RATE,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Each exemplar with a seeded ``rate`` of its residues replaced by residues the model
    samples at that position after ``prompt`` (ending in ``<protein>``) and the exemplar's
    preceding residues; never the exemplar's own residue. Exemplars longer than the context
    leaves are cut to their first residues."""
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    ids = tokenizer.encode(prompt)
    room = context_length(model) - len(ids) - 1
    letters = sorted(a for a in tokenizer.residue_ids if a in _STANDARD)
    allowed = torch.tensor([tokenizer.residue_ids[a] for a in letters], device=model.device)
    out = []
    gen = torch.Generator().manual_seed(seed)
    for k, ex in enumerate(exemplars):
        ex = ex[:room]
        rng = random.Random(f"{seed}:{k}:{ex[:20]}")
        where = [i for i in range(len(ex)) if rng.random() < rate]
        if not where:
            out.append(ex)
            continue
        inputs = torch.tensor([ids + _residue_ids(tokenizer, ex)], device=model.device)
        logits = model(input_ids=inputs).logits[0].float()
        # logits at position len(ids) - 1 + i predict residue i
        rows = logits[[len(ids) - 1 + i for i in where]].index_select(1, allowed) / max(temperature, 1e-6)
        for r, i in enumerate(where):
            rows[r, letters.index(ex[i])] = float("-inf")
        probs = torch.softmax(rows, dim=-1).cpu()
        picks = torch.multinomial(probs, 1, generator=gen).squeeze(1).tolist()
        seq = list(ex)
        for i, p in zip(where, picks):
            seq[i] = letters[p]
        out.append("".join(seq))
    return out


@torch.inference_mode()
def request_gain(
    model: PreTrainedModel, tokenizer: ProteinTokenizer, question: str, sequences: Sequence[str], batch: int = 16
) -> list[float | None]:
    """Per sequence: mean log-probability per residue after the request minus after
    :data:`NEUTRAL_REQUEST` (None for an empty sequence). Sequences longer than the context
    leaves are scored on their first residues. Rows are right-padded, ``batch`` at a time."""
    from instructprotein.infer.prompts import design_prompt

    prompts = [tokenizer.encode(design_prompt(q)) for q in (question, NEUTRAL_REQUEST)]
    room = context_length(model) - max(map(len, prompts))
    pad = int(getattr(model.config, "pad_token_id", 0) or 0)
    rows: list[tuple[int, int, list[int], int]] = []  # (sequence, prompt 0/1, ids, residues)
    for n, s in enumerate(sequences):
        if s:
            res = _residue_ids(tokenizer, s[:room])
            rows += [(n, k, p + res, len(res)) for k, p in enumerate(prompts)]
    means: dict[tuple[int, int], float] = {}
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        width = max(len(r[2]) for r in chunk)
        inputs = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, (_n, _k, ids, _m) in enumerate(chunk):
            inputs[j, : len(ids)] = torch.tensor(ids)
            mask[j, : len(ids)] = 1
        logp = torch.log_softmax(
            model(input_ids=inputs.to(model.device), attention_mask=mask.to(model.device)).logits.float(), -1
        )
        for j, (n, k, ids, m) in enumerate(chunk):
            start = len(ids) - m  # first residue's position; the logits one before predict it
            target = torch.tensor(ids[start:], device=logp.device)
            means[(n, k)] = float(logp[j, start - 1 : len(ids) - 1].gather(-1, target.unsqueeze(-1)).sum()) / m
    return [means[(n, 0)] - means[(n, 1)] if (n, 0) in means else None for n in range(len(sequences))]
