"""Speed of the full evaluation: every built-in task on the tiny model, per-task times.

The issue's bar: all built-in tasks on the tiny model in at most 15 minutes on 2 cores. This
runs :func:`instructprotein.evaluate.runner.evaluate` on every built-in task (the held-out
ones only with ``--instructions``), prints each task's time split into prompts, model
scoring, and baselines + metrics, the homology search time, and the total against the bar.

Baseline measured in the same run (machines here are noisy, GUIDE section 5): the GO yes/no
scoring of ``--ratio-n`` proteins of go_mf_test with the protein prefix shared across a
protein's terms (:mod:`instructprotein.evaluate.scoring`) against classify's scorer (one
forward pass per prompt, :func:`instructprotein.infer.classify.score_options`); the ratio
is printed with a check that both give the same numbers.

The model is the one given (``--model``, e.g. the trained tiny model) or, without one, the
tiny preset's shape with random weights (speed does not depend on what was learnt).

    python benchmarks/evaluate_speed.py [--model DIR] [--kg KG] [--instructions DIR]
        [--threads 1] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

BAR_SECONDS = 15 * 60


def go_ratio(model_dir: Path, kg_path: str | None, n_proteins: int, threads: int) -> None:
    """Grouped (prefix shared per protein) against per-prompt scoring on GO yes/no items."""
    import numpy as np
    import torch

    from instructprotein.evaluate.scoring import score_grouped
    from instructprotein.formats.benchmarks import read_go_pairs
    from instructprotein.infer.classify import score_options
    from instructprotein.infer.prompts import build_prompt
    from instructprotein.kg.store import KnowledgeGraph
    from instructprotein.model.factory import load_model_and_tokenizer
    from instructprotein.sources.packaged import packaged_benchmark

    torch.set_num_threads(threads)
    model, tok = load_model_and_tokenizer(model_dir)
    model.eval()
    ctx = model.config.max_position_embeddings
    names = {}
    kg = KnowledgeGraph(kg_path) if kg_path else None
    prompts, groups = [], []
    for prot in read_go_pairs(packaged_benchmark("go_mf_test"))[:n_proteins]:
        seq = prot.sequence[-(ctx - 64) :]
        for term, _ in prot.pairs:
            if term not in names:
                try:
                    names[term] = kg.entity(term).name if kg else term
                except KeyError:
                    names[term] = term
            prompts.append(
                build_prompt(
                    seq,
                    f"Does the protein associate with {names[term]}?",
                    "Based on the record, the answer is",
                    cut_above=None,
                )
            )
            groups.append(seq)
    lengths = [len(e.input_ids) for e in tok.encode_batch(prompts, add_bos=True)]
    keep = [n for n, k in enumerate(lengths) if k + 4 <= ctx]  # a long term name can overflow the context
    prompts, groups = [prompts[n] for n in keep], [groups[n] for n in keep]
    t = time.perf_counter()
    fast = score_grouped(model, tok, prompts, [" no", " yes"], groups)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    ref = score_options(model, tok, prompts, ["no", "yes"])
    t_ref = time.perf_counter() - t
    diff = max(float(np.max(np.abs(np.array(a.total) - np.array(b.total)))) for a, b in zip(fast, ref))
    print(f"\nGO yes/no, {len(prompts)} items about {len(set(groups))} proteins (go_mf_test):")
    print(f"  protein prefix shared (evaluate.scoring) {t_fast:7.1f} s")
    print(f"  one pass per prompt (classify)           {t_ref:7.1f} s")
    print(f"  ratio {t_ref / max(t_fast, 1e-9):.1f}x; largest score difference {diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: the tiny preset with random weights)")
    parser.add_argument("--kg", help="knowledge graph for GO names, homology and term frequencies")
    parser.add_argument("--instructions", help="instruction set folder (held-out tasks, splits, decontamination)")
    parser.add_argument("--tasks", default="all", help="comma-separated task names, or all")
    parser.add_argument("--limit", type=int, default=None, help="items per task (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared machine)")
    parser.add_argument("--no-homology", action="store_true", help="skip the MMseqs2 homology baseline")
    parser.add_argument("--ratio-n", type=int, default=150, help="go_mf proteins for the grouped-vs-per-prompt ratio")
    parser.add_argument("--out", help="output folder (default: a temporary one)")
    args = parser.parse_args()

    import os

    from instructprotein.evaluate.commands import expand_tasks
    from instructprotein.evaluate.runner import evaluate
    from instructprotein.progress import RichProgress

    tmp = tempfile.TemporaryDirectory(prefix="evaluate-speed-")
    if args.model and Path(args.model).is_dir():
        model_dir = Path(args.model)
        what = f"{model_dir}"
    else:
        from _models import random_model
        from instructprotein.model.factory import save_model

        model, tok, _ = random_model("tiny")
        model_dir = save_model(model, tok, Path(tmp.name) / "model")
        what = "tiny preset, random weights"
    names = expand_tasks(args.tasks.split(","))
    if not args.instructions:
        names = [n for n in names if not str(n).startswith("heldout_")]
    if not args.kg and not args.instructions:
        names = [n for n in names if str(n) != "go_mf"]
        print("no --kg: go_mf (needs GO names) skipped")
    out = Path(args.out) if args.out else Path(tmp.name) / "evaluation"
    print(
        f"model: {what}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {args.threads}; tasks: {', '.join(map(str, names))}"
    )
    progress = RichProgress()
    start = time.perf_counter()
    cpu_start = time.process_time()
    try:
        r = evaluate(
            model_dir,
            names,
            out_dir=out,
            limit=args.limit,
            kg=args.kg,
            instructions_dir=args.instructions,
            homology=not args.no_homology,
            threads=args.threads,
            progress=progress,
        )
    finally:
        progress.stop()
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(f"\n{'task':24s} {'items':>7s} {'prompts':>8s} {'model s':>8s} {'baselines s':>12s} {'total s':>8s}")
    for name, t in r["tasks"].items():
        s = t["seconds"]
        print(
            f"{name:24s} {t['n']:7,d} {t['prompts_scored']:8,d} {s.get('model', 0):8.1f} "
            f"{s.get('baselines_and_metrics', 0):12.1f} {s.get('total', 0):8.1f}"
        )
    h = r["homology"]
    searches = {k: v for k, v in h.items() if k.endswith("_search_seconds")}
    print(
        "homology search: "
        + (", ".join(f"{k.removesuffix('_search_seconds')} {v} s" for k, v in searches.items()) or "none")
    )
    print(
        f"total {total:.0f} s wall ({total / 60:.1f} min) against the bar of {BAR_SECONDS / 60:.0f} min: "
        f"{'within' if total <= BAR_SECONDS else 'OVER'}; this process used {cpu:.0f} s of CPU "
        f"(MMseqs2 runs in its own processes; on a machine shared with other jobs wall time exceeds CPU time)"
    )
    print(f"report: {out / 'report.md'}")
    if args.ratio_n > 0 and (args.kg or args.instructions):
        kg = args.kg or r["knowledge_graph"]["path"]
        go_ratio(model_dir, kg, args.ratio_n, args.threads)


if __name__ == "__main__":
    main()
