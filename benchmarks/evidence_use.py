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

PREFIX = "Based on the record, the answer is"
PROTEIN = re.compile(r"<protein>([A-Z]+)</protein>")


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

    from instructprotein.infer.classify import context_length, score_options
    from instructprotein.instruct.evidence import HEADER, answer_room, fit_residues
    from instructprotein.model.factory import load_model_and_tokenizer

    torch.set_num_threads(args.threads)
    shards = sorted((args.instructions / "jsonl").glob(f"{args.split}-*.jsonl"))
    if not shards:
        sys.exit(f"error: no {args.split}-*.jsonl shards in {args.instructions / 'jsonl'}")
    model, tok = load_model_and_tokenizer(args.model)
    budget = context_length(model) - answer_room(context_length(model))
    prompts, groups = [], []
    for shard in shards:
        for line in shard.open(encoding="utf-8"):
            r = json.loads(line)
            head = f"{HEADER} with "
            if r["task"] != "yes_no" or head not in r["prompt"]:
                continue
            m = PROTEIN.match(r["prompt"])
            if m is None:
                continue
            rest = r["prompt"][m.end():] + PREFIX
            room = budget - len(tok.encode(f"<protein></protein>{rest}")) - 1
            if room < 1:
                continue
            prompts.append(f"<protein>{fit_residues(m.group(1), room)}</protein>{rest}")
            groups.append(majority(rest.split(head, 1)[1].split("\n", 1)[0]))
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
