"""Scale benchmark of the knowledge graph on all of Swiss-Prot 2014 (metastudent-data).

Prints build wall time and peak memory, then query latencies, each beside its budget
(issue 2: build <= 120 s, peak <= 4 GB, one protein's propagated annotations <= 10 ms,
all proteins under one term <= 1 s) and beside a baseline measured in the same run: the
same queries answered by a naive full scan of the annotation table, so the ratio shows
what the indexes buy.

    python benchmarks/kg_scale.py [--out /tmp/kg-full.sqlite] [--reuse]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def build(out: Path) -> tuple[float, float]:
    """Build in a child process so that its peak RSS is measured alone."""
    code = (
        "import resource, time, sys\n"
        "from instructprotein.formats.obo import read_obo\n"
        "from instructprotein.formats.go_sqlite import read_go_sqlite\n"
        "from instructprotein.kg.inputs import build_from_metastudent\n"
        "from instructprotein.sources.registry import resource_path\n"
        "t = time.perf_counter()\n"
        "text = [read_obo(resource_path('go-obo-2013')), read_go_sqlite(resource_path('go-sqlite'))]\n"
        f"build_from_metastudent(resource_path('swissprot-2014'), {str(out)!r}, text_sources=text)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr)
    seconds, peak_gb = map(float, result.stdout.split())
    return seconds, peak_gb


def timed(fn, *args, repeat: int = 1) -> tuple[float, object]:
    best = float("inf")
    value = None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/instructprotein-kg-full.sqlite"))
    parser.add_argument("--reuse", action="store_true", help="skip the build if --out exists")
    args = parser.parse_args()

    from instructprotein.kg.store import KnowledgeGraph

    if not (args.reuse and args.out.exists()):
        seconds, peak = build(args.out)
        print(f"build: {seconds:.1f} s wall (budget 120 s), peak RSS {peak:.2f} GB (budget 4 GB)")
    print(f"file size: {args.out.stat().st_size / 1e9:.2f} GB")

    kg = KnowledgeGraph(args.out)
    n = kg.count("protein")
    print(f"proteins {n:,}, direct annotations {kg.count('annotation'):,}, closure pairs {kg.count('closure'):,}")
    rng = random.Random(0)
    accessions = kg.accessions()
    sample = [accessions[rng.randrange(1, n + 1)] for _ in range(200)]
    kg.proteins_with("GO:0005488")  # warm the accession cache once, as a long-lived server would

    lat = [timed(kg.propagated_annotations, acc)[0] for acc in sample]
    print(
        f"propagated annotations of one protein: median {statistics.median(lat) * 1e3:.2f} ms, "
        f"p99 {sorted(lat)[int(0.99 * len(lat))] * 1e3:.2f} ms over 200 random proteins (budget 10 ms)"
    )

    # naive baseline: the same answer by scanning annotation rows without the pid key
    def naive_propagated(acc: str) -> set[int]:
        pid = kg._pid(acc)
        direct = [e for p, e in kg.con.execute("SELECT pid + 0, eid FROM annotation NOT INDEXED") if p == pid]
        return {a for e in direct for (a,) in kg.con.execute("SELECT ancestor FROM closure WHERE eid = ?", (e,))}

    t_naive, _ = timed(naive_propagated, sample[0])
    t_fast, _ = timed(kg.propagated_annotations, sample[0], repeat=3)
    print(f"  vs full scan of the annotation table: {t_naive * 1e3:.0f} ms, ratio {t_naive / t_fast:.0f}x")

    for term in ("GO:0046872", "GO:0005488", "GO:0005634", "GO:0008150"):
        seconds, proteins = timed(kg.proteins_with, term, repeat=2)
        print(f"proteins under {term} ({kg.entity(term).name}): {len(proteins):,} in {seconds:.3f} s (budget 1 s)")
    kg.close()
    print(f"benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
