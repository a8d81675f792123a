"""What ``instructions stats`` shows: counts per split and task, and term frequency before and
after debiased sampling (Gini, entropy, the most frequent terms, a rank-frequency plot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from instructprotein.atomic import atomic_path
from instructprotein.errors import InputError
from instructprotein.instruct.sampling import entropy_bits
from instructprotein.kg.stats import gini


def read_frequency(out_dir: Path) -> list[tuple[str, str, str, int, float, int]]:
    """(term, name, group, triples before, expected draws after, actual draws after) per term.

    Before and after are compared on the same total (expected counts among as many draws
    as there are triples), so the comparison measures the sampler, not the draw size.
    """
    path = out_dir / "frequency.tsv"
    if not path.exists():
        raise InputError("no frequency.tsv: build the dataset with `instructprotein instructions build`", out_dir)
    rows = []
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            term, name, group, before, expected, drawn = line.rstrip("\n").split("\t")
            rows.append((term, name, group, int(before), float(expected), int(drawn)))
    return rows


def instruction_stats(out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    summary_path = out_dir / "instructions.json"
    if not summary_path.exists():
        raise InputError("no instructions.json: build the dataset with `instructprotein instructions build`", out_dir)
    summary = json.loads(summary_path.read_text())
    rows = read_frequency(out_dir)
    before = np.array([r[3] for r in rows], dtype=np.float64)
    after = np.array([r[4] for r in rows], dtype=np.float64)
    drawn = np.array([r[5] for r in rows], dtype=np.float64)
    top = 10
    return {
        "summary": summary,
        "terms": len(rows),
        "before": {
            "gini": round(gini(before), 4),
            "entropy_bits": round(entropy_bits(before), 3),
            "top_share": round(float(np.sort(before)[::-1][:top].sum() / max(before.sum(), 1)), 4),
        },
        "after": {
            "gini": round(gini(after), 4),
            "entropy_bits": round(entropy_bits(after), 3),
            "top_share": round(float(np.sort(after)[::-1][:top].sum() / max(after.sum(), 1)), 4),
            "terms_drawn": int((drawn > 0).sum()),
            "draws": int(drawn.sum()),
        },
        "top_before": [(r[0], r[1], r[3], round(r[4], 1)) for r in sorted(rows, key=lambda r: -r[3])[:top]],
        "top_after": [(r[0], r[1], r[3], round(r[4], 1)) for r in sorted(rows, key=lambda r: -r[4])[:top]],
    }


def plot_sampling(out_dir: str | Path, out: str | Path) -> Path:
    """Rank-frequency of terms: triples in the graph (train split) vs draws after sampling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_frequency(Path(out_dir))
    before = np.sort(np.array([r[3] for r in rows], dtype=np.float64))[::-1]
    after = np.sort(np.array([r[4] for r in rows], dtype=np.float64))[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.loglog(
        np.arange(1, len(before) + 1), before / before.sum(), label=f"triples in the graph (Gini {gini(before):.2f})"
    )
    ax.loglog(
        np.arange(1, len(after) + 1),
        after / after.sum(),
        label=f"expected after debiased sampling (Gini {gini(after):.2f})",
    )
    ax.set(xlabel="term rank", ylabel="share of instructions", title="Term frequency before and after sampling")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return out
