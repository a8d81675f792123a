"""The prompts of a task's items, as the model reads them: the task's cut rule, then the prompt contract's fit.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`): building every task's prompts is
one phase of a run, and the system's verification prompts (:mod:`.system`) are built the same way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from instructprotein.errors import InputError
from instructprotein.evaluate.data import Item, TaskData
from instructprotein.evaluate.homology_search import HomologySearch
from instructprotein.evaluate.homology_side import RETRIEVAL_TOP_K, _HomologySide, evidence_blocks
from instructprotein.evaluate.system import ALONE, _prepare_verification
from instructprotein.evaluate.tasks import TaskSpec

# -- prompts ------------------------------------------------------------------------------------------------


def _prompt(spec: TaskSpec, item: Item, sequence: str, context: str | None) -> str:
    from instructprotein.prompt import build_prompt, protein_text

    term = item.term_name or ""
    if spec.template is not None:
        text = spec.template.replace("{protein}", protein_text(sequence)).replace("{term}", term)
        if context:
            raise InputError(f"task {spec.name}: retrieval needs a question + prefix prompt, not a template")
        return text
    question = str(spec.question).replace("{term}", term)
    return build_prompt(sequence, question, spec.prefix, context=context, cut_above=None)


def build_prompts(
    spec: TaskSpec,
    items: Sequence[Item],
    tokenizer: Any,
    context_len: int,
    longest_candidate: int,
    contexts: Sequence[str | None] | None = None,
    *,
    max_residues: int | None = None,
) -> tuple[list[list[int]], list[str], dict[str, Any], list[str]]:
    """Token ids of every item's prompt, the sequence each read, counts, and the prompts' text.

    1. the task's rule (the paper's: above ``cut.above`` residues keep the last ``cut.keep``),
       then the model's own (``max_residues``: its preset's ``prompt_residues``, as it was tuned);
    2. each prompt fitted by the prompt contract (:func:`~instructprotein.prompt.fit`) to
       ``context - answer_room`` (or the longest candidate if that is longer), as training
       cut its prompts: the protein first, its evidence block (``contexts``) when the protein
       would go below :func:`~instructprotein.prompt.shortest_kept`; one cut per protein (its
       longest prompt decides, :func:`~instructprotein.prompt.fit_shared`), so the prompts
       about one protein still share its prefix.

    Counts of each go to the results; ``info["evidence"]`` holds the evidence block each
    prompt kept.
    """
    from instructprotein.prompt import Prompt, answer_room, cap_protein, fit, fit_shared

    ctxs = list(contexts) if contexts is not None else [None] * len(items)
    seqs = [cap_protein(i.sequence, cut_above=spec.cut_above, keep=spec.keep) for i in items]
    paper_cut = sum(1 for i, s in zip(items, seqs) if len(s) < len(i.sequence))
    model_cut = 0
    if max_residues is not None:  # a protein that fits is left as it is
        model_cut = sum(1 for s in seqs if len(s) > max_residues)
        seqs = [cap_protein(s, cut_above=None, max_residues=max_residues) for s in seqs]
    texts = [_prompt(spec, i, s, c) for i, s, c in zip(items, seqs, ctxs)]
    try:
        ids = [e.input_ids for e in tokenizer.encode_batch(texts, add_bos=True)]
    except ValueError as exc:
        raise InputError(f"task {spec.name}: cannot encode a prompt: {exc}") from None
    room = max(answer_room(context_len), longest_candidate)

    def measure(item: Item) -> Any:
        return lambda p: len(tokenizer.encode(_prompt(spec, item, p.protein or "", p.evidence)))

    fitted = [
        fit(
            Prompt(s, "", evidence=c),
            measure(i),
            context_len=context_len,
            answer_tokens=longest_candidate,
            tokens=len(n),
        )
        for i, s, c, n in zip(items, seqs, ctxs, ids)
    ]
    for item, f in zip(items, fitted):
        if not f.fits:
            extra = f.tokens - f.residues
            raise InputError(
                f"task {spec.name}, item {item.id}: the prompt without its protein takes {extra} of the model's "
                f"{context_len} tokens, leaving no room for a protein and an answer"
            )
    fitted = fit_shared(fitted, seqs)
    for n, (item, f) in enumerate(zip(items, fitted)):
        if f.protein_cut or f.evidence_cut:
            seqs[n], ctxs[n] = f.prompt.protein or "", f.prompt.evidence
            texts[n] = _prompt(spec, item, seqs[n], ctxs[n])
    redo = [n for n, f in enumerate(fitted) if f.protein_cut or f.evidence_cut]
    if redo:
        for n, e in zip(redo, tokenizer.encode_batch([texts[n] for n in redo], add_bos=True)):
            ids[n] = e.input_ids
    rule = f"above {spec.cut_above} residues keep the last {spec.keep}" if spec.cut_above else "no cut"
    rule += (
        f"; a prompt over {context_len - room} tokens (the model reads {context_len}, {room} kept for the "
        "answer) has its protein cut to fit: the first three quarters and the last quarter, joined by one X, "
        "as in training"
    )
    kept = [f.residues for f in fitted if f.protein_cut]
    if max_residues is not None:
        rule += f"; before that the model's own cut to {max_residues} residues, the length it was tuned on"
    info = {
        "paper_cut": paper_cut,
        "model_cut": model_cut,
        "context_cut": sum(1 for f in fitted if f.protein_cut),
        "evidence_cut": sum(1 for f in fitted if f.evidence_cut),
        "answer_room": room,
        "shortest_kept": min(kept) if kept else None,
        "rule": rule,
        "evidence": ctxs,
    }
    return ids, seqs, info, texts


def _prepare(
    spec: TaskSpec,
    td: TaskData,
    tokenizer: Any,
    ctx_len: int,
    side: _HomologySide | None,
    retrieval: bool,
    max_residues: int | None = None,
) -> dict[str, Any]:
    """Prompts (token ids), candidates and grouping keys of a task's items."""
    from instructprotein.evaluate.scoring import encode_candidates

    items = td.items
    if spec.kind in ("design", "rank"):  # design: generate_designs samples; rank: evaluate.rank scores
        return {"keys": [], "seconds": {}}
    if spec.kind == "describe":  # with retrieval, the homologs' GO terms, as the describe command gives them
        longest = spec.max_new_tokens
    else:
        cands = list(spec.candidates)
        cand_ids = encode_candidates(tokenizer, cands)
        longest = max(map(len, cand_ids))
    contexts = None
    if retrieval:
        assert side is not None
        contexts = evidence_blocks(spec, items, side, top_k=RETRIEVAL_TOP_K)
    prompt_ids, seqs_read, cut_info, texts = build_prompts(
        spec, items, tokenizer, ctx_len, longest, contexts, max_residues=max_residues
    )
    if contexts is not None:
        contexts = cut_info.pop("evidence")  # the blocks the prompts kept
    else:
        cut_info.pop("evidence")
    if spec.kind == "describe":
        return {"texts": texts, "read": seqs_read, "cut": cut_info, "keys": [], "seconds": {}, "contexts": contexts}
    keys = [
        hashlib.blake2b(np.asarray(p, dtype=np.int64).tobytes() + repr(cands).encode(), digest_size=16).digest()
        for p in prompt_ids
    ]
    return {
        "candidates": cands,
        "candidate_ids": cand_ids,
        "prompt_ids": prompt_ids,
        "read": seqs_read,
        "keys": keys,
        "cut": cut_info,
        "seconds": {},
        "contexts": contexts,
    }


def prepare_prompts(
    all_specs: Sequence[TaskSpec],
    fit_specs: Sequence[TaskSpec],
    data: dict[str, TaskData],
    tokenizer: Any,
    ctx_len: int,
    most: int | None,
    search: HomologySearch,
    retrieval: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every task's prompts (:func:`_prepare`, by task name; with retrieval, a choice task's prompts
    without evidence too) and describe's verification prompts, before one scoring pass over all."""
    sides, need_side = search.sides, search.need_side
    prepared = {}
    for spec in all_specs:
        if spec.kind == "describe" and spec in fit_specs:  # a validation twin is only verified, not described
            continue
        t0 = time.perf_counter()
        prepared[spec.name] = _prepare(
            spec,
            data[spec.name],
            tokenizer,
            ctx_len,
            sides.get(need_side.get(spec.name, "")),
            retrieval,
            max_residues=most,
        )
        if retrieval and spec.kind == "choice":  # what the sequence alone gives: the same prompts, no evidence
            prepared[spec.name + ALONE] = _prepare(
                spec, data[spec.name], tokenizer, ctx_len, None, False, max_residues=most
            )
        prepared[spec.name]["seconds"]["prompts"] = round(time.perf_counter() - t0, 2)
    verify_meta: dict[str, Any] = {}
    for spec in all_specs:  # describe's GO terms: every candidate verified as a yes/no question
        side = sides.get(need_side.get(spec.name, ""))
        if (
            retrieval
            and spec.kind == "describe"
            and spec.combine is not None
            and side is not None
            and "go" in spec.metrics
        ):
            verify_meta[spec.name] = _prepare_verification(
                spec, data[spec.name].items, side, tokenizer, ctx_len, most, prepared
            )
    return prepared, verify_meta
