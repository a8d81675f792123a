"""What the model computes in a run: one scoring pass over every task's prompts, then describe's
answers, the designs and the ranks.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`): this is the phase that needs the
model; everything before it only reads inputs, everything after only counts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from instructprotein.evaluate.data import TaskData
from instructprotein.evaluate.homology_search import HomologySearch
from instructprotein.evaluate.run_inputs import RunInputs
from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.progress import Progress


def _score_all(model: Any, prepared: dict[str, dict[str, Any]], max_rows: int, progress: Progress) -> None:
    """Score every distinct (prompt, candidates) of every task once, prompts grouped by the sequence read.

    Adds ``scores`` (per item), ``prompts_scored`` / ``prompts_reused`` and ``seconds["model"]``
    (each group's time shared among its prompts by rows, charged to the task that asked first).
    """
    from instructprotein.evaluate.scoring import score_token_groups

    entries: dict[bytes, tuple[str, int]] = {}  # key -> (task, item index) of its first occurrence
    for name, p in prepared.items():
        p["prompts_scored"] = 0
        p["seconds"]["model"] = 0.0
        for n, k in enumerate(p["keys"]):
            if k not in entries:
                entries[k] = (name, n)
                p["prompts_scored"] += 1
        p["prompts_reused"] = len(p["keys"]) - p["prompts_scored"]
    order = list(entries.items())
    prompt_ids = [prepared[t]["prompt_ids"][n] for _, (t, n) in order]
    cand_ids = [prepared[t]["candidate_ids"] for _, (t, n) in order]
    names = [prepared[t]["candidates"] for _, (t, n) in order]
    groups = [prepared[t]["read"][n] for _, (t, n) in order]
    ids = [f"{t}#{n}" for _, (t, n) in order]
    proteins = len(set(groups))

    with progress.step(f"score {len(order):,} prompts about {proteins:,} proteins", total=len(order)) as bar:

        def charge(members: list[int], seconds: float) -> None:
            rows = sum(len(cand_ids[m]) for m in members)
            for m in members:
                task = order[m][1][0]
                prepared[task]["seconds"]["model"] += seconds * len(cand_ids[m]) / rows
            bar.advance(len(members))

        scored = score_token_groups(
            model, prompt_ids, cand_ids, groups, ids=ids, candidates=names, max_rows=max_rows, on_group=charge
        )
    by_key = {k: s for (k, _), s in zip(order, scored)}
    for p in prepared.values():
        p["scores"] = [by_key[k] for k in p["keys"]]
        p["seconds"]["model"] = round(p["seconds"]["model"], 2)


def _generate(
    spec: TaskSpec, model: Any, tokenizer: Any, prep: dict[str, Any], progress: Progress, batch: int = 8
) -> None:
    """Greedy answers of a describe task (batched, left-padded), into ``prep["answers"]``."""
    from instructprotein.infer.generate import generate_answers

    t0 = time.perf_counter()
    texts = prep["texts"]
    answers: list[str] = []
    with progress.step(f"{spec.name}: generate {len(texts):,} answers", total=len(texts)) as bar:
        for i in range(0, len(texts), batch):
            chunk = texts[i : i + batch]
            answers += generate_answers(model, tokenizer, chunk, max_new_tokens=spec.max_new_tokens)
            bar.advance(len(chunk))
    prep["answers"] = answers
    prep["seconds"]["model"] = round(time.perf_counter() - t0, 2)
    prep["prompts_scored"] = len(texts)
    prep["prompts_reused"] = 0


def run_generation(
    specs: Sequence[TaskSpec],
    model: Any,
    tokenizer: Any,
    data: dict[str, TaskData],
    prepared: dict[str, dict[str, Any]],
    src: RunInputs,
    search: HomologySearch,
    progress: Progress,
    *,
    max_rows: int,
) -> None:
    """Describe's greedy answers, design's samples and rank's scores, into each task's ``prepared`` entry."""
    heldout, kg_obj = src.heldout, src.kg
    sides, need_side = search.sides, search.need_side
    for spec in specs:
        if spec.kind == "describe":
            _generate(spec, model, tokenizer, prepared[spec.name], progress)
        if spec.kind == "design":
            from instructprotein.evaluate.design import generate_designs

            kg_terms = heldout.kg if (spec.test.heldout and heldout is not None) else kg_obj
            generate_designs(
                spec,
                model,
                tokenizer,
                data[spec.name].items,
                kg_terms,
                prepared[spec.name],
                progress,
                side=sides.get(need_side.get(spec.name, "")),
            )
        if spec.kind == "rank":
            from instructprotein.evaluate.rank import score_rank

            score_rank(spec, model, tokenizer, data[spec.name].items, prepared[spec.name], progress, max_rows=max_rows)
