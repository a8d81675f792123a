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
        --instructions WORKDIR/instructions [--split valid] [--threads 2] [--kind location]

``--kind location`` asks the location questions that carry a location-evidence block
(``Homologs: 62% identical: nucleus (nucleolus). ...``) with the location tasks' prefix and
ten candidates, and prints how often the model's top class is the class most homologs
name, with the block and again with the block replaced by ``Homologs: none found.`` in
the same run; the ratio of the two is the lift the evidence gives (1.00x: ignored). The
held-out location task is decided by this skill.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

PROMPT = re.compile(r"<protein>([A-Z]+)</protein>Instruction: ([^\n]*)\n(.*)\n\nOutput: $", re.DOTALL)
"""A yes/no instruction with its evidence block: sequence, block, question."""


def majority(block: str) -> str:
    """What most homologs in a term-evidence block say: yes, no or tie (unknown counts for neither)."""
    yes, no = block.count(": yes."), block.count(": no.")
    return "yes" if yes > no else "no" if no > yes else "tie"


def majority_class(block: str, classes: list[str]) -> str | None:
    """The class most homologs in a location-evidence block lead with (best homolog first on ties)."""
    votes: dict[str, int] = {}
    for part in re.findall(r"\d+% identical: ([^.]*)\.", block):
        lead = part.split(" (")[0].lower()
        hit = min(((lead.find(c), c) for c in classes if c in lead), default=None)
        if hit is not None:
            votes[hit[1]] = votes.get(hit[1], 0) + 1
    return max(votes, key=lambda c: votes[c]) if votes else None  # dicts keep order: first named wins ties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--instructions", required=True, type=Path, help="dataset folder of `instructions build`")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kind", choices=("yes_no", "location"), default="yes_no")
    args = parser.parse_args()

    import torch

    from instructprotein.infer.classify import context_length, prompt_residues
    from instructprotein.model.factory import load_model_and_tokenizer
    from instructprotein.prompt import fit_prompt

    torch.set_num_threads(args.threads)
    shards = sorted((args.instructions / "jsonl").glob(f"{args.split}-*.jsonl"))
    if not shards:
        sys.exit(f"error: no {args.split}-*.jsonl shards in {args.instructions / 'jsonl'}")
    model, tok = load_model_and_tokenizer(args.model)
    ctx = context_length(model)

    def cut(sequence: str, question: str, block: str, prefix: str) -> str:
        # cut as training and evaluation cut: the prompt leaves answer_room tokens free
        return fit_prompt(
            tok,
            sequence,
            question,
            prefix,
            context=block,
            context_len=ctx,
            cut_above=None,
            max_residues=prompt_residues(model),
        ).prompt.text

    records = [json.loads(line) for shard in shards for line in shard.open(encoding="utf-8")]
    probe = location_lift if args.kind == "location" else yes_no_ratio
    probe(records, cut, model, tok, f"model {args.model}", args.split)


def yes_no_ratio(records: list[dict], cut: Callable[..., str], model, tok, name: str, split: str) -> None:
    """Mean p(yes) where most homologs say yes against where most say no."""
    import torch

    from instructprotein.evaluate.tasks import load_task
    from instructprotein.infer.classify import score_options
    from instructprotein.instruct.evidence import HEADER

    prefix = load_task("metal_ion_binding").prefix  # the evaluated yes/no tasks' answer start
    prompts, groups = [], []
    for r in records:
        m = PROMPT.match(r["prompt"]) if r["task"] == "yes_no" else None
        if m is None or not m.group(2).startswith(f"{HEADER} with "):
            continue
        sequence, block, question = m.groups()
        prompts.append(cut(sequence, question, block, prefix))
        groups.append(majority(block))
    if not prompts:
        sys.exit(f"error: no yes/no questions with term evidence in {split}")
    scores = score_options(model, tok, prompts, [" no", " yes"])
    p_yes: dict[str, list[float]] = defaultdict(list)
    for group, s in zip(groups, scores):
        p_yes[group].append(float(torch.softmax(torch.tensor(s.total), 0)[1]))
    print(f"{name}; {len(prompts)} yes/no questions with term evidence ({split} split)")
    print(f"{'homologs mostly say':<20} {'n':>5} {'mean p(yes)':>12}")
    for group in ("yes", "no", "tie"):
        if p_yes[group]:
            print(f"{group:<20} {len(p_yes[group]):>5} {sum(p_yes[group]) / len(p_yes[group]):>12.3f}")
    if p_yes["yes"] and p_yes["no"]:
        ratio = (sum(p_yes["yes"]) / len(p_yes["yes"])) / (sum(p_yes["no"]) / len(p_yes["no"]))
        print(f"ratio p(yes | homologs yes) / p(yes | homologs no): {ratio:.2f}x (1.00x: evidence ignored)")


def location_lift(records: list[dict], cut: Callable[..., str], model, tok, name: str, split: str) -> None:
    """Agreement of the model's top class with the homologs' class, with their block and without it."""
    import torch

    from instructprotein.evaluate.tasks import load_task
    from instructprotein.infer.classify import score_options
    from instructprotein.instruct.evidence import HEADER, NONE_FOUND

    task = load_task("heldout_location")

    classes = [c.strip() for c in task.candidates]
    with_block, without, wanted = [], [], []
    for r in records:
        m = PROMPT.match(r["prompt"]) if r["task"] == "location" else None
        if m is None or not m.group(2).startswith(f"{HEADER}:"):
            continue
        sequence, block, question = m.groups()
        target = majority_class(block, classes)
        if target is None:
            continue
        with_block.append(cut(sequence, question, block, task.prefix))
        without.append(cut(sequence, question, NONE_FOUND, task.prefix))
        wanted.append(classes.index(target))
    if not wanted:
        sys.exit(f"error: no location questions with location evidence in {split}")
    rates = []
    for prompts in (with_block, without):
        scores = score_options(model, tok, prompts, list(task.candidates))
        top = [max(range(len(classes)), key=lambda k: s.first_token[k]) for s in scores]
        p = [float(torch.softmax(torch.tensor(s.first_token), 0)[w]) for s, w in zip(scores, wanted)]
        rates.append((sum(t == w for t, w in zip(top, wanted)) / len(wanted), sum(p) / len(p)))
    counts = {c: wanted.count(k) for k, c in enumerate(classes) if wanted.count(k)}
    print(f"{name}; {len(wanted)} location questions with location evidence ({split} split)")
    print("homologs' class: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda x: -x[1])))
    print(f"{'prompt':<26} {'top class = homologs':>21} {'mean p(that class)':>19}")
    for label, (rate, p) in zip(("with the homologs' block", "with 'none found'"), rates):
        print(f"{label:<26} {rate:>21.3f} {p:>19.3f}")
    print(
        f"lift: agreement with the block / without it: {rates[0][0] / max(rates[1][0], 1e-9):.2f}x "
        "(1.00x: evidence ignored)"
    )


if __name__ == "__main__":
    main()
