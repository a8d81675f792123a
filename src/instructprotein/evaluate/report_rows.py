"""Results as table cells: the rows both ``report.md`` and the command line's summary print.

Kept apart from the markdown and the plots so the ``evaluate`` command can print its table
without the report, and both always format a number the same way.
"""

from __future__ import annotations

import math
from typing import Any

RULES = ("first_token", "sum")
RULE_NAMES = {"first_token": "first token (paper)", "sum": "full option"}
BASELINE_NAMES = {
    "majority": "majority class",
    "homology_best": "homology, best hit",
    "homology_vote": "homology, top-k vote",
    "composition": "composition + LR",
    "term_frequency": "term frequency",
}


def pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}f}"


def with_ci(r: dict[str, Any] | None, key: str = "accuracy", ci: str = "ci95") -> str:
    if not r or r.get(key) is None:
        return "-"
    lo, hi = r.get(ci, [None, None])
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return pct(r[key])
    return f"{pct(r[key])} [{pct(lo)}–{pct(hi)}]"


def baseline_cell(task: dict[str, Any], name: str) -> str:
    b = task["baselines"].get(name)
    if not b:
        return "-"
    text = pct(b["accuracy"])
    if name.startswith("homology"):
        text += f" (cov. {pct(b['coverage'], 0)} %)"
    if name == "majority":
        text += f" ({b['source']})"
    if name == "term_frequency":
        text += f", AUPR {pct(b['aupr'])}*"
    return text


def paper_cell(task: dict[str, Any]) -> str:
    p = task.get("paper") or {}
    return ", ".join(f"{v:g}" + ("" if k == "accuracy" else f" ({k.upper()})") for k, v in p.items()) or "-"


EXTRA_ROWS = {"system": "system: model + homologs (the answer users get)", "model_alone": "model alone, no evidence"}
"""Predictors of a choice task besides the model's two rules, as results.json names them."""
SYSTEM_ROWS = {
    "combined": EXTRA_ROWS["system"],
    "homology_first": "system: best hit, sequence read where none (the answer users get)",
}
"""The system's row, by the recipe validation picked (:data:`instructprotein.infer.combine.RECIPES`)."""


def predictor_entries(t: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, entry) of every predictor of a choice task that is not a baseline: the system's
    answer first, then the model with its evidence under each rule, then the model alone."""
    out = (
        [(SYSTEM_ROWS.get(t["system"].get("recipe", "combined"), EXTRA_ROWS["system"]), t["system"])]
        if "system" in t
        else []
    )
    out += [(f"model, {RULE_NAMES[rule]}", t["model"][rule]) for rule in RULES]
    if "model_alone" in t:
        out.append((EXTRA_ROWS["model_alone"], t["model_alone"]))
    return out


def recipe_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per question kind the system answered: the recipe validation picked and why."""
    seen: dict[str, list[str]] = {}
    for name, t in results.get("tasks", {}).items():
        s = t.get("system") or {}
        sel = (s.get("fit") or {}).get("selection")
        if not s.get("kind") or s["kind"] in seen:
            continue
        cv = (sel or {}).get("cv_accuracy", {})
        seen[s["kind"]] = [
            s["kind"],
            str((s.get("fit") or {}).get("questions", "-")),
            s.get("recipe", "combined"),
            pct(cv.get("combined")),
            pct(cv.get("homology_first")),
            f"{100 * sel['gain']:+.1f} ± {100 * sel['standard_error']:.1f}" if sel else "not compared",
            name,
        ]
    return list(seen.values())


def summary_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per (task, predictor): the table of the report and of the command line."""
    rows = []
    for name, t in results["tasks"].items():
        if "model" not in t:  # describe tasks have their own table
            continue
        for label, m in predictor_entries(t):
            rows.append(
                {
                    "task": name,
                    "n": f"{t['n']:,}",
                    "rule": label.removeprefix("model, "),
                    "accuracy": with_ci(m),
                    "aupr": with_ci(m, "aupr", "aupr_ci95") if "aupr" in m else "-",
                    "majority": baseline_cell(t, "majority"),
                    "homology": baseline_cell(t, "homology_best"),
                    "homology_vote": baseline_cell(t, "homology_vote"),
                    "composition": baseline_cell(t, "composition"),
                    "term_frequency": baseline_cell(t, "term_frequency"),
                    "paper": paper_cell(t),
                }
            )
    return rows


def _prf(r: dict[str, Any] | None) -> str:
    if not r or "precision" not in r:
        return "-"
    return f"{pct(r['precision'])} / {pct(r['recall'])} / {pct(r['f1'])}"


def describe_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, t in results["tasks"].items():
        if "generated" not in t:
            continue
        g, b = t["generated"], t["baselines"]
        rows.append(
            [
                name,
                f"{t['n']:,}",
                pct(g.get("bleu")),
                pct(g.get("rouge_l")),
                _prf(g.get("go")),
                _prf(b.get("homology_best"))
                + (f" (cov. {pct(b['homology_best']['coverage'], 0)} %)" if "homology_best" in b else ""),
                pct(b.get("homology_vote", {}).get("f_max")),
                pct(b.get("naive", {}).get("f_max")),
            ]
        )
    return rows


def _rate_cell(r: dict[str, Any] | None, key: str = "rate") -> str:
    if not r or r.get(key) is None:
        return "-"
    lo, hi = r.get("ci95", (None, None))
    return f"{pct(r[key])} [{pct(lo)}, {pct(hi)}]" if lo is not None else pct(r[key])


def design_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per (design task, group): model designs, shuffled controls, natural proteins."""
    rows = []
    for name, t in results["tasks"].items():
        for group, r in t.get("design", {}).items():
            div = r.get("diversity_within_request") or r.get("diversity_across") or {}
            rows.append(
                [
                    f"{name} ({group})",
                    f"{r['sequences']:,}",
                    _rate_cell(r.get("validity")),
                    pct(r.get("novelty", {}).get("novelty")),
                    pct(div.get("diversity")),
                    _rate_cell(r.get("consistency"), "consistent_fraction"),
                    _rate_cell(r.get("describe"), "consistent_fraction"),
                ]
            )
    return rows


def rank_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per ranking task: the model by both rules beside chance, homology and the paper."""
    rows = []
    for name, t in results["tasks"].items():
        if "ranking" not in t:
            continue
        b = t.get("baselines", {})
        hom = with_ci(b["homology"]) + f" (cov. {pct(b['homology']['coverage'], 0)} %)" if "homology" in b else "-"
        rows.append(
            [
                name,
                f"{t['n']:,}",
                with_ci(t["ranking"]["mean"]),
                with_ci(t["ranking"]["sum"]),
                pct(b["chance"]["accuracy"]) if "chance" in b else "-",
                hom,
                paper_cell(t),
            ]
        )
    return rows
