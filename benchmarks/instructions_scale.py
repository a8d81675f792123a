"""Scale benchmark of the instruction builder on the full Swiss-Prot 2014 graph.

Budget (issue 3): >= 1,000,000 instructions in <= 5 minutes on 2 cores, clustering
excluded (MMseqs2 stages are timed separately and printed), peak memory <= 8 GB; the same
seed gives the same bytes. Baseline in the same run: the same generation in one worker
process, so the printed ratio is the speed-up the sharded, parallel design gives.

    python benchmarks/instructions_scale.py --kg /tmp/instructprotein-kg-full.sqlite \\
        [--out /tmp/ip-instructions] [--n 1000000]

Build the graph first (benchmarks/kg_scale.py does). The MMseqs2 stages are cached in
--out, so a second run times generation alone.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time
from pathlib import Path

from instructprotein.instruct.dataset import BuildConfig, build_instructions
from instructprotein.progress import Progress
from instructprotein.sources.packaged import packaged_benchmarks

CLUSTERING = (
    "mmseqs",
    "write sequences",
    "write query",
    "write target",
    "checksum",
    "read ",
    "write clusters",
    "write splits",
    "write removed",
)


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((folder / "jsonl").glob("*.jsonl")):
        h.update(path.read_bytes())
    return h.hexdigest()


def run(kg: Path, out: Path, n: int, workers: int) -> tuple[float, float, dict, Progress]:
    progress = Progress()
    benches = [str(p) for p in packaged_benchmarks() if "_test" in p.name or "_valid" in p.name]
    config = BuildConfig(n_train=n, workers=workers, shards=8, benchmarks=benches)
    start = time.perf_counter()
    result = build_instructions(kg, out, config, progress)
    total = time.perf_counter() - start
    clustering = sum(t for step, t in progress.timings.items() if step.startswith(CLUSTERING))
    return total, clustering, result.summary, progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kg", type=Path, default=Path("/tmp/instructprotein-kg-full.sqlite"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/instructprotein-instructions"))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--baseline-n", type=int, default=100_000, help="draws for the 1-worker vs 2-worker ratio")
    args = parser.parse_args()

    total, clustering, summary, progress = run(args.kg, args.out, args.n, workers=2)
    made = sum(v["total"] for v in summary["instructions"].values())
    print("stage timings (s):")
    for step, seconds in progress.timings.items():
        print(f"  {seconds:8.1f}  {step}")
    print(f"MMseqs2 and other clustering stages: {clustering:.1f} s (excluded from the budget; cached on rerun)")
    print(
        f"instructions: {made:,} ({summary['instructions']['train']['total']:,} train) in {total - clustering:.1f} s "
        f"without clustering (budget 300 s), {total:.1f} s in all; "
        f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB, "
        f"of the worker processes {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6:.2f} GB (budget 8 GB)"
    )
    first = digest(args.out)

    # baseline and determinism: the same seed again, one worker, fewer draws; then two workers
    one = args.out.with_name(args.out.name + "-1worker")
    two = args.out.with_name(args.out.name + "-2workers")
    for folder in (one, two):
        for sub in ("splits", "decontamination"):
            target = folder / sub
            if not target.exists():
                import shutil

                shutil.copytree(args.out / sub, target)
    t1, c1, _, _ = run(args.kg, one, args.baseline_n, workers=1)
    t2, c2, _, _ = run(args.kg, two, args.baseline_n, workers=2)
    print(
        f"{args.baseline_n:,} draws: 1 worker {t1 - c1:.1f} s, 2 workers {t2 - c2:.1f} s, "
        f"speed-up {(t1 - c1) / (t2 - c2):.2f}x; same text either way: {digest(one) == digest(two)}"
    )
    _, _, _, _ = run(args.kg, args.out, args.n, workers=2)
    print(f"same seed, same bytes on a full rerun: {digest(args.out) == first}")


if __name__ == "__main__":
    main()
