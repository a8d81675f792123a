"""Speed of zero-shot classification: KV-cached batched scoring against one prompt at a time.

Same model, same inputs, same tokens: N DeepLoc test sequences (the packaged
``deeploc_subcellular_test``) with the paper's location prompt and its 10 options. The
batched scorer runs each prompt once and all its options on the prompt's key-value cache;
the naive scorer runs prompt + option once per option. Prints both times, the ratio (the
issue asks for >= 5x) and whether the predictions of every rule agree.

The model is the tiny preset's shape with random weights (speed does not depend on what
was learnt); its position table is widened to ``--context`` (2,048, as OPT-1.3B's) so the
paper's cut (above 1,024 residues keep the last 1,000) applies as it is.

    python benchmarks/classify_speed.py [--n 200] [--threads 1] [--preset tiny]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="sequences (first N of the test set)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared machine)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--context", type=int, default=2048, help="model positions (OPT's 2,048 by default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from _models import random_model
    from instructprotein.formats.benchmarks import read_labelled_sequences
    from instructprotein.infer.classify import RULES, score_naive, score_options
    from instructprotein.infer.inputs import clean_sequence
    from instructprotein.infer.prompts import LOCATION_LABELS, LOCATION_PREFIX, LOCATION_QUESTION, build_prompt
    from instructprotein.sources.packaged import packaged_benchmark

    torch.set_num_threads(args.threads)
    model, tok, preset = random_model(args.preset, {"model.context_length": args.context})
    model.to(args.device)
    records = read_labelled_sequences(packaged_benchmark("deeploc_subcellular_test"))[: args.n]
    prompts = [build_prompt(clean_sequence(r.sequence), LOCATION_QUESTION, LOCATION_PREFIX) for r in records]
    ids = [f"deeploc_test:{r.line}" for r in records]
    lengths = [len(tok.encode(p)) for p in prompts]
    option_tokens = [len(tok.encode(" " + o, add_bos=False)) for o in LOCATION_LABELS]
    print(
        f"model: {preset.name} shape (hidden {preset.model.hidden_size}, {preset.model.num_layers} layers), "
        f"random weights, {args.context} positions; device {args.device}, torch threads {args.threads}; "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"inputs: {len(prompts)} DeepLoc test sequences, prompt tokens mean {sum(lengths) / len(lengths):.0f} "
        f"(min {min(lengths)}, max {max(lengths)}); 10 options of {min(option_tokens)}-{max(option_tokens)} tokens"
    )

    score_options(model, tok, prompts[:2], LOCATION_LABELS)  # warm-up
    score_naive(model, tok, prompts[:2], LOCATION_LABELS)

    t = time.perf_counter()
    fast = score_options(model, tok, prompts, LOCATION_LABELS, ids=ids)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = score_naive(model, tok, prompts, LOCATION_LABELS, ids=ids)
    t_slow = time.perf_counter() - t

    pairs = [(a, b) for f, s in zip(fast, slow) for a, b in zip(f.total + f.first_token, s.total + s.first_token)]
    worst = max(abs(a - b) for a, b in pairs)
    print(f"batched, prefix cache shared by the options: {t_fast:8.2f} s  ({len(prompts) / t_fast:6.1f} prompts/s)")
    print(f"naive, one pass per (prompt, option):        {t_slow:8.2f} s  ({len(prompts) / t_slow:6.1f} prompts/s)")
    print(f"ratio naive / batched: {t_slow / t_fast:.1f}x  (issue: >= 5x)")
    for rule in RULES:
        agree = sum(f.best(rule) == s.best(rule) for f, s in zip(fast, slow))
        print(f"predictions agree ({rule}): {agree}/{len(fast)}")
    print(f"largest score difference: {worst:.2e} (log-probability)")


if __name__ == "__main__":
    main()
