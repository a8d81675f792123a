"""The report's PNG plots: an overview of every task, and per choice task its confusion
matrices, per-class accuracy and reliability diagram.

Kept apart from the markdown so the report's text reads without the drawing code (matplotlib
is imported only when a plot is drawn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instructprotein.evaluate.report_rows import BASELINE_NAMES, RULE_NAMES, RULES, pct, predictor_entries


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(task: dict[str, Any], path: Path) -> None:
    import numpy as np

    plt = _plt()
    classes = task["task"]["resolved"]["classes"]
    k = len(classes)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 0.9 * k, 2.4 + 0.45 * k), squeeze=False)
    for ax, rule in zip(axes[0], RULES):
        m = np.array(task["model"][rule]["confusion"], dtype=float)
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{RULE_NAMES[rule]}: {pct(task['model'][rule]['accuracy'])} %", fontsize=9)
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{int(m[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.suptitle(f"{task['task']['name']}: confusion (rows normalised, counts shown)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_per_class(task: dict[str, Any], path: Path) -> None:
    import numpy as np

    plt = _plt()
    classes = task["task"]["resolved"]["classes"]
    series: list[tuple[str, dict[str, Any]]] = [(RULE_NAMES[r], task["model"][r]["per_class"]) for r in RULES]
    for b in ("homology_best", "composition"):
        if b in task["baselines"]:
            series.append((BASELINE_NAMES[b], task["baselines"][b]["per_class"]))
    x = np.arange(len(classes))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5, 1.0 * len(classes) + 2), 3.6))
    for s, (label, pc) in enumerate(series):
        acc = [pc[c]["accuracy"] if pc[c]["n"] else 0 for c in classes]
        lo = [max(0.0, a - pc[c]["ci95"][0]) if pc[c]["n"] else 0 for a, c in zip(acc, classes)]
        hi = [max(0.0, pc[c]["ci95"][1] - a) if pc[c]["n"] else 0 for a, c in zip(acc, classes)]
        ax.bar(x + (s - (len(series) - 1) / 2) * width, acc, width, label=label, yerr=[lo, hi], capsize=2)
    ax.set_xticks(
        x,
        [f"{c}\n(n={task['model']['sum']['per_class'][c]['n']})" for c in classes],
        fontsize=7,
        rotation=30 if len(classes) > 4 else 0,
        ha="right" if len(classes) > 4 else "center",
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (recall) per true class")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{task['task']['name']}: per-class accuracy, 95 % Wilson intervals", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_calibration(task: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    for (label, entry), marker in zip(predictor_entries(task), ("D", "o", "s", "^")):
        cal = entry.get("calibration")
        if not cal:
            continue
        pts = [(b["confidence"], b["accuracy"], b["n"]) for b in cal["bins"] if b["n"]]
        if not pts:
            continue
        xs, ys, _ns = zip(*pts)
        ax.plot(xs, ys, marker=marker, label=f"{label.split(':')[0]} (ECE {cal['ece']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"{task['task']['name']}: reliability", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_overview(results: dict[str, Any], path: Path) -> None:
    import numpy as np

    plt = _plt()
    names = [n for n, t in results["tasks"].items() if "model" in t]
    if not names:
        return
    series = [("first token (paper)", "first_token"), ("full option", "sum")]
    extra = [
        b
        for b in ("majority", "homology_best", "composition")
        if any(b in results["tasks"][n]["baselines"] for n in names)
    ]
    width = 0.8 / (len(series) + len(extra))
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names) + 2), 4))
    s = 0
    for label, rule in series:
        acc = [results["tasks"][n]["model"][rule]["accuracy"] for n in names]
        ci = [results["tasks"][n]["model"][rule]["ci95"] for n in names]
        # clipped at 0: a Wilson bound can sit a rounding error inside an accuracy of exactly 0 or 1
        err = [[max(0.0, a - c[0]) for a, c in zip(acc, ci)], [max(0.0, c[1] - a) for a, c in zip(acc, ci)]]
        ax.bar(x + (s - (len(series) + len(extra) - 1) / 2) * width, acc, width, yerr=err, capsize=2, label=label)
        s += 1
    for b in extra:
        acc = [results["tasks"][n]["baselines"].get(b, {}).get("accuracy", 0) for n in names]
        ax.bar(x + (s - (len(series) + len(extra) - 1) / 2) * width, acc, width, label=BASELINE_NAMES[b], alpha=0.7)
        s += 1
    for i, n in enumerate(names):
        p = results["tasks"][n].get("paper", {}).get("accuracy")
        if p is not None:
            ax.plot(
                [i - 0.45, i + 0.45],
                [p / 100, p / 100],
                color="black",
                lw=1.5,
                label="paper" if i == 0 or "paper" not in ax.get_legend_handles_labels()[1] else None,
            )
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("accuracy by task: model (95 % Wilson) beside baselines", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
