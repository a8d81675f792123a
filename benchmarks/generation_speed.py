"""Generation speed with the key-value cache against without it (tokens per second).

Two workloads on the same model, each run with ``use_cache=True`` (transformers' default,
what describe and design use) and ``use_cache=False`` (every step re-reads the whole
sequence):

- describe-like: greedy decoding of ``--new`` tokens (forced: ``min_new_tokens``) after the
  function question about a DeepLoc test protein of about ``--residues`` residues, batch 1;
- design: ``sample_proteins`` (constrained decoding, top-p sampling, a seed) writing
  ``--n-designs`` sequences of exactly ``--design-len`` residues (min_len = max_len).

The outputs with and without the cache are compared (greedy: identical tokens expected).
The model is the tiny preset's shape with random weights, as in ``classify_speed.py``.

    python benchmarks/generation_speed.py [--new 128] [--residues 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", type=int, default=128, help="tokens to generate (greedy workload)")
    parser.add_argument("--residues", type=int, default=300, help="length of the protein in the prompt")
    parser.add_argument("--n-designs", type=int, default=4)
    parser.add_argument("--design-len", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--context", type=int, default=2048, help="model positions (OPT's 2,048: prompt + new tokens must fit)"
    )
    args = parser.parse_args()

    import torch

    from _models import random_model
    from instructprotein.formats.benchmarks import read_labelled_sequences
    from instructprotein.infer.generate import design_question, sample_proteins
    from instructprotein.infer.inputs import clean_sequence
    from instructprotein.infer.prompts import FUNCTION_QUESTION, build_prompt, design_prompt
    from instructprotein.sources.packaged import packaged_benchmark

    torch.set_num_threads(args.threads)
    model, tok, preset = random_model(args.preset, {"model.context_length": args.context})
    model.to(args.device)
    records = read_labelled_sequences(packaged_benchmark("deeploc_subcellular_test"))
    seq = min((clean_sequence(r.sequence) for r in records[:500]), key=lambda s: abs(len(s) - args.residues))
    prompt = build_prompt(seq, FUNCTION_QUESTION)
    ids = torch.tensor([tok.encode(prompt)], device=args.device)
    print(
        f"model: {preset.name} shape (hidden {preset.model.hidden_size}, {preset.model.num_layers} layers, "
        f"{preset.model.context_length} positions), random weights; "
        f"device {args.device}, torch threads {args.threads}"
    )

    def greedy(use_cache: bool) -> tuple[float, list[int]]:
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=args.new,
                min_new_tokens=args.new,
                do_sample=False,
                use_cache=use_cache,
                pad_token_id=tok.pad_token_id,
            )
        return time.perf_counter() - t, out[0, ids.shape[1] :].tolist()

    greedy(True)  # warm-up
    t_cache, a = greedy(True)
    t_plain, b = greedy(False)
    print(f"\ngreedy, batch 1, prompt {ids.shape[1]} tokens ({len(seq)} residues), {args.new} new tokens:")
    print(f"  with KV cache:    {t_cache:7.2f} s  {args.new / t_cache:8.1f} tokens/s")
    print(f"  without KV cache: {t_plain:7.2f} s  {args.new / t_plain:8.1f} tokens/s")
    print(f"  ratio: {t_plain / t_cache:.1f}x; identical tokens: {a == b}")

    dprompt = design_prompt(design_question("binds zinc ion and is located in nucleus"))
    n, length = args.n_designs, args.design_len

    def sample(use_cache: bool) -> tuple[float, list[tuple[str, str]]]:
        t = time.perf_counter()
        out = sample_proteins(model, tok, dprompt, n=n, seed=0, min_len=length, max_len=length, use_cache=use_cache)
        return time.perf_counter() - t, out

    sample(True)
    s_cache, x = sample(True)
    s_plain, y = sample(False)
    total = n * (length + 1)
    print(f"\ndesign: sampling (top-p 0.95, constrained), {n} sequences x {length} residues (+ </protein>):")
    print(f"  with KV cache:    {s_cache:7.2f} s  {total / s_cache:8.1f} tokens/s")
    print(f"  without KV cache: {s_plain:7.2f} s  {total / s_plain:8.1f} tokens/s")
    print(f"  ratio: {s_plain / s_cache:.1f}x; identical sequences: {x == y}")


if __name__ == "__main__":
    main()
