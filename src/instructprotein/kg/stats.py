"""Counts and the annotation frequency distribution of a knowledge graph, as data and a plot.

The distribution is what debiased sampling later flattens, so it is reported the same way
here and there: counts per term, their quantiles, and the Gini coefficient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instructprotein.atomic import atomic_path
from instructprotein.formats.records import ASPECT_NAMESPACE
from instructprotein.kg.schema import PROTEIN_RELATIONS
from instructprotein.kg.store import KnowledgeGraph


def gini(counts: np.ndarray) -> float:
    """0 when every term has as many proteins as every other, towards 1 when a few have all."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def distribution(counts: dict[str, int], names: dict[str, str] | None = None, top: int = 10) -> dict:
    values = np.array(sorted(counts.values()), dtype=np.int64)
    if len(values) == 0:
        return {"terms": 0}
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        "terms": int(len(values)),
        "annotations": int(values.sum()),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "max": int(values.max()),
        "terms_under_10": int((values < 10).sum()),
        "terms_under_100": int((values < 100).sum()),
        "terms_1000_or_more": int((values >= 1000).sum()),
        "gini": round(gini(values), 4),
        "top": [{"id": k, "name": (names or {}).get(k, ""), "proteins": v} for k, v in ranked],
    }


def graph_stats(kg: KnowledgeGraph) -> dict:
    con = kg.con
    kinds = {
        f"{k}{'/' + a if a else ''}": n
        for k, a, n in con.execute(
            "SELECT kind, aspect, COUNT(*) FROM entity GROUP BY kind, aspect ORDER BY kind, aspect"
        )
    }
    relations: dict[str, int] = {}
    for kind, aspect, n in con.execute(
        "SELECT e.kind, e.aspect, COUNT(*) FROM annotation a JOIN entity e ON e.eid = a.eid GROUP BY e.kind, e.aspect"
    ):
        rel = PROTEIN_RELATIONS[(kind, aspect if kind == "go" else None)]
        relations[f"protein {rel} {kind}"] = relations.get(f"protein {rel} {kind}", 0) + n
    for rel, n in con.execute("SELECT relation, COUNT(*) FROM edge GROUP BY relation ORDER BY relation"):
        relations[f"term {rel} term"] = n
    names = dict(con.execute("SELECT id, name FROM entity WHERE kind = 'go'"))
    freq = {}
    for aspect in ASPECT_NAMESPACE:
        freq[aspect] = {
            "direct": distribution(kg.frequencies("go", aspect), names),
            "propagated": distribution(kg.frequencies("go", aspect, propagated=True), names),
        }
    return {
        "path": str(kg.path),
        "source": kg.meta.get("source"),
        "ontology": f"{kg.meta.get('ontology_source')} {kg.meta.get('ontology_version')}".strip(),
        "proteins": kg.count("protein"),
        "entities": kinds,
        "relations": relations,
        "propagated_go_closure_pairs": kg.count("closure"),
        "build": kg.build_counts(),
        "frequency": freq,
    }


def plot_frequencies(kg: KnowledgeGraph, out: str | Path) -> Path:
    """Rank-frequency (log-log) and histogram of proteins per GO term, per aspect."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"F": "tab:blue", "P": "tab:green", "C": "tab:red"}
    for aspect, namespace in ASPECT_NAMESPACE.items():
        for propagated, style in ((False, "-"), (True, "--")):
            counts = np.sort(np.array(list(kg.frequencies("go", aspect, propagated).values())))[::-1]
            if len(counts) == 0:
                continue
            label = f"{namespace.replace('_', ' ')} ({'propagated' if propagated else 'direct'})"
            axes[0].loglog(np.arange(1, len(counts) + 1), counts, style, color=colours[aspect], label=label, lw=1.2)
            if not propagated:
                bins = np.logspace(0, np.log10(max(counts.max(), 10)) + 0.1, 30)
                axes[1].hist(
                    counts, bins=bins, histtype="step", color=colours[aspect], label=namespace.replace("_", " "), lw=1.5
                )
    axes[0].set(xlabel="term rank", ylabel="proteins annotated", title="Rank-frequency of GO terms")
    axes[0].legend(fontsize=7)
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="proteins per term (direct)",
        ylabel="terms",
        title="How many terms have n proteins",
    )
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{kg.count('protein'):,} proteins, {kg.count('annotation'):,} direct annotations")
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return out
