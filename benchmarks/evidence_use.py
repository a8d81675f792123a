"""Does a tuned model read its homologs' yes/no evidence? p(yes) when they say yes against when they say no.

The instruction set's yes/no questions with a term-evidence block (``Homologs with X?
62% identical: yes. ...``) are asked again with the evaluation's answer prefix ("Based on
the record, the answer is") and scored " no" against " yes" by the full-option rule. The
questions are grouped by what most homologs say; the printed ratio is mean p(yes) where
they say yes over mean p(yes) where they say no. A model that ignores the evidence reads
1.0; one that copies it reads well above (the baseline it is measured against is that
same model on the other group, in the same run).

Why a benchmark of its own: on the tiny default this skill appears in some tuning runs and
not in others with the same validation loss, and it decides the yes/no tasks (metal ion
binding, held-out GO); this tells within a minute, from the instruction set alone,
whether a model has it.

    python benchmarks/evidence_use.py --model WORKDIR/runs/finetune/model \
        --instructions WORKDIR/instructions [--split valid] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

PROMPT = re.compile(r"<protein>([A-Z]+)</protein>Instruction: ([^\n]*)\n(.*)\n\nOutput: $", re.DOTALL)
"""A yes/no instruction with its evidence block: sequence, block, question."""


def majority(block: str) -> str:
    """What most homologs in a term-evidence block say: yes, no or tie (unknown counts for neither)."""
    yes, no = block.count(": yes."), block.count(": no.")
    return "yes" if yes > no else "no" if no > yes else "tie"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--instructions", required=True, type=Path, help="dataset folder of `instructions build`")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from instructprotein.evaluate.tasks import load_task
    from instructprotein.infer.classify import context_length, prompt_residues, score_options
    from instructprotein.infer.prompts import fitted_prompt
    from instructprotein.instruct.evidence import HEADER, answer_room
    from instructprotein.model.factory import load_model_and_tokenizer

    torch.set_num_threads(args.threads)
    shards = sorted((args.instructions / "jsonl").glob(f"{args.split}-*.jsonl"))
    if not shards:
        sys.exit(f"error: no {args.split}-*.jsonl shards in {args.instructions / 'jsonl'}")
    prefix = load_task("metal_ion_binding").prefix  # the evaluated yes/no tasks' answer start
    model, tok = load_model_and_tokenizer(args.model)
    ctx = context_length(model)
    prompts, groups = [], []
    for shard in shards:
        for line in shard.open(encoding="utf-8"):
            r = json.loads(line)
            m = PROMPT.match(r["prompt"]) if r["task"] == "yes_no" else None
            if m is None or not m.group(2).startswith(f"{HEADER} with "):
                continue
            sequence, block, question = m.groups()
            # cut as training and evaluation cut: the prompt leaves answer_room tokens free
            text, _ = fitted_prompt(tok, sequence, question, prefix, context=block, context_len=ctx,
                                    reserve=answer_room(ctx), cut_above=None, max_residues=prompt_residues(model))
            prompts.append(text)
            groups.append(majority(block))
    if not prompts:
        sys.exit(f"error: no yes/no questions with term evidence in {args.split}")
    scores = score_options(model, tok, prompts, [" no", " yes"])
    p_yes: dict[str, list[float]] = defaultdict(list)
    for group, s in zip(groups, scores):
        p_yes[group].append(float(torch.softmax(torch.tensor(s.total), 0)[1]))
    print(f"model {args.model}; {len(prompts)} yes/no questions with term evidence ({args.split} split)")
    print(f"{'homologs mostly say':<20} {'n':>5} {'mean p(yes)':>12}")
    for group in ("yes", "no", "tie"):
        if p_yes[group]:
            print(f"{group:<20} {len(p_yes[group]):>5} {sum(p_yes[group]) / len(p_yes[group]):>12.3f}")
    if p_yes["yes"] and p_yes["no"]:
        ratio = (sum(p_yes["yes"]) / len(p_yes["yes"])) / (sum(p_yes["no"]) / len(p_yes["no"]))
        print(f"ratio p(yes | homologs yes) / p(yes | homologs no): {ratio:.2f}x (1.00x: evidence ignored)")


if __name__ == "__main__":
    main()
