"""``report.md`` and its plots, from the results the runner wrote to ``results.json``.

The report is made from the results dictionary alone (:func:`write_report`), so it can be
redrawn from a ``results.json`` at any time (:func:`report_from_file`). Plots are PNG files
next to the report: an overview of every task (model beside baselines, 95 % intervals), and
per task a confusion matrix per rule, per-class accuracy, and a reliability diagram.
The cells and rows of its tables are :mod:`.report_rows` (the command line prints them too),
the plots :mod:`.report_plots`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructprotein.atomic import write_text
from instructprotein.evaluate.report_plots import plot_calibration, plot_confusion, plot_overview, plot_per_class
from instructprotein.evaluate.report_rows import (
    BASELINE_NAMES,
    EXTRA_ROWS,
    RULE_NAMES,
    RULES,
    _rate_cell,
    baseline_cell,
    describe_rows,
    design_rows,
    paper_cell,
    pct,
    predictor_entries,
    rank_rows,
    recipe_rows,
    summary_rows,
    with_ci,
)

__all__ = [
    "BASELINE_NAMES",
    "EXTRA_ROWS",
    "RANK_RULES",
    "RULES",
    "RULE_NAMES",
    "baseline_cell",
    "describe_rows",
    "design_rows",
    "paper_cell",
    "pct",
    "plot_calibration",
    "plot_confusion",
    "plot_overview",
    "plot_per_class",
    "predictor_entries",
    "rank_rows",
    "render_markdown",
    "report_from_file",
    "summary_rows",
    "with_ci",
    "write_report",
]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render_markdown(results: dict[str, Any], images: dict[str, dict[str, str]] | None = None) -> str:
    images = images or {}
    m = results["model"]
    h = results.get("homology", {})
    dec = results.get("decontamination", {})
    lines = [
        "# Evaluation report",
        "",
        (
            f"- model: `{m['path']}` ({m['architecture']}, {m['parameters']:,} parameters, context {m['context_length']}, "
            f"config sha256 `{(m['config_sha256'] or '')[:16]}`, weights `{m['weights']['file']}` "
            f"sha256 `{(m['weights']['sha256'] or 'not hashed')[:16]}`)"
        ),
        (
            f"- created {results['created']}, seed {results['seed']}, limit {results['limit'] or 'none (every item)'}, "
            f"retrieval in prompts: {'yes' if results.get('retrieval') else 'no'}; {results['seconds']} s in all"
        ),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if k != "platform"),
    ]
    if results.get("knowledge_graph"):
        kg = results["knowledge_graph"]
        lines.append(
            f"- training graph (homology, term frequencies): `{kg['path']}` (content hash `{(kg['content_hash'] or '')[:12]}`)"
        )
    if dec.get("dir"):
        lines.append(
            f"- decontamination: `{dec['dir']}`: {dec['removed']:,} proteins at >= {dec['min_identity']} identity to a "
            f"benchmark sequence removed from training"
            + (
                ""
                if dec.get("applies_to_homology_graph")
                else " (that list is for another graph; the identity threshold applies)"
            )
        )
    if h.get("enabled"):
        lines.append(
            f"- **homology transfer is decontaminated like the training data: hits at >= {h['max_identity']} identity "
            f"are dropped**, and proteins the model never trained on (decontaminated, valid/test splits) are not searched. "
            f"MMseqs2 easy-search -s {h['sensitivity']:g}, max-seqs {h['max_seqs']}, e-value {h['evalue']:g}."
        )
    lines += [
        "",
        (
            "Scoring: the model's log-probability of each candidate answer right after the prompt. **first token "
            "(paper)**: the candidates' first tokens only, argmax (the paper's rule); **full option**: the whole "
            "candidate's log-likelihood. Accuracy in %, with its 95 % Wilson interval; AUPR with a 95 % bootstrap "
            "interval (1,000 resamples). Baselines on the same items: majority class (from the train split where "
            "the task has one), homology transfer (best labelled hit, coverage = share of items with one; others get "
            "the majority class), composition classifier (amino-acid + dipeptide frequencies, logistic regression, "
            "trained on the task's train split), term-frequency prior (* its accuracy uses the threshold best on the "
            "test items: an upper bound)."
        ),
        "",
        "## Summary",
        "",
    ]
    rows = summary_rows(results)
    header = [
        "task",
        "n",
        "rule",
        "accuracy [95 % CI]",
        "AUPR [95 % CI]",
        "majority",
        "homology best",
        "homology vote",
        "composition",
        "term freq.",
        "paper",
    ]
    keys = [
        "task",
        "n",
        "rule",
        "accuracy",
        "aupr",
        "majority",
        "homology",
        "homology_vote",
        "composition",
        "term_frequency",
        "paper",
    ]
    lines.append(_md_table(header, [[r[k] for k in keys] for r in rows]))
    recipes = recipe_rows(results)
    if recipes:
        lines += [
            "",
            (
                "How the system answers each kind of question: the combination of the model, the vote, the best hit "
                "and the sequence reader is kept only where its cross-validated accuracy on the validation split "
                "beats the best hit's label (the reader and the prior where no homolog is found) by more than one "
                "standard error; otherwise the simpler recipe answers:"
            ),
            "",
            _md_table(
                [
                    "kind",
                    "validation questions",
                    "recipe",
                    "CV accuracy, combined",
                    "CV accuracy, homology first",
                    "gain ± SE (points)",
                    "first task",
                ],
                recipes,
            ),
        ]
    gen_rows = describe_rows(results)
    if gen_rows:
        lines += [
            "",
            (
                "Generation tasks (greedy answers; BLEU-4 and ROUGE-L against the reference text; GO terms named "
                "in the answer, closed under the ontology, against the protein's true terms: mean precision / recall "
                "/ F1 per protein; baselines: the best decontaminated homolog's terms, the top-k identity-weighted "
                "vote (F-max), the naive term-frequency scores (F-max)):"
            ),
            "",
            _md_table(
                [
                    "task",
                    "n",
                    "BLEU-4",
                    "ROUGE-L",
                    "GO P / R / F1",
                    "homology best P / R / F1",
                    "homology vote F-max",
                    "naive F-max",
                ],
                gen_rows,
            ),
        ]
    design = design_rows(results)
    if design:
        lines += [
            "",
            (
                "Design tasks (validity: the design command's checks; novelty: 1 - identity of the closest "
                "training protein, MMseqs2; diversity: 1 - mean pairwise identity among one request's designs; "
                "consistency: the closest training protein carries every requested GO term; describe: the model's "
                "own description of the sequence names them; 95 % Wilson intervals). Shuffled: each design's "
                "residues in random order; natural: the held-out protein the request was written from:"
            ),
            "",
            _md_table(["task", "sequences", "validity", "novelty", "diversity", "consistency", "describe"], design),
        ]
    ranked = rank_rows(results)
    if ranked:
        lines += [
            "",
            (
                "Ranking tasks (which of the candidate requests is the protein's own: each request in the model's "
                "design prompt, the protein's residues scored after it; mean log-probability is the paper's rule; "
                "right when the true request scores strictly highest; accuracy %, 95 % Wilson interval; homology: "
                "the closest decontaminated training protein's GO terms rank the candidates):"
            ),
            "",
            _md_table(["task", "n", "mean log-prob (paper)", "sum log-prob", "chance", "homology", "paper"], ranked),
        ]
    if "overview" in images.get("_", {}):
        lines += ["", f"![overview]({images['_']['overview']})"]
    for name, t in results["tasks"].items():
        if "design" in t:
            lines += _design_section(name, t)
            continue
        if "ranking" in t:
            lines += _rank_section(name, t)
            continue
        if "model" not in t:
            lines += _describe_section(name, t)
            continue
        res = t["task"]["resolved"]
        lines += _section_head(name, t)
        d = t["data"]["test"]
        src = f"`{d.get('source')}`" + (
            f" (`{Path(d['file']).name}`, sha256 `{d['sha256'][:12]}`)" if d.get("sha256") else ""
        )
        lines += [
            "",
            f"- items: {t['n']:,} of {d.get('items_in_source', t['n']):,} from {src}; classes "
            + ", ".join(f"{k} {v}" for k, v in sorted(d.get("class_counts", {}).items(), key=lambda kv: -kv[1])),
        ]
        if d.get("reading"):
            lines.append("- reading the data: " + ", ".join(f"{k}: {v:,}" for k, v in d["reading"].items()))
        if d.get("heldout"):
            lines.append("- held-out set: " + ", ".join(f"{k} {v}" for k, v in d["heldout"].items()))
        tr = t["data"].get("train")
        if tr:
            lines.append(
                f"- train split for baselines: `{tr['source']}` ({tr['n']:,} items)"
                + (f"; {tr['note']}" if tr.get("note") else "")
            )
        lines.append(f"- prompt: `{res['prompt']}`; candidates: " + ", ".join(f"`{c!s}`" for c in res["candidates"]))
        c = t["cut"]
        lines.append(
            f"- sequence cut: {c['rule']}. Items cut: {c['paper_cut']} by the task's rule, {c['context_cut']} to fit "
            "the model's context" + (f" (shortest kept {c['shortest_kept']} residues)" if c["shortest_kept"] else "")
        )
        lines.append(
            f"- time: {t['seconds']}; prompts scored {t['prompts_scored']:,}, reused from another task {t['prompts_reused']:,}"
        )
        rows2 = []
        for label, r in predictor_entries(t):
            rows2.append(
                [
                    label,
                    with_ci(r),
                    with_ci(r, "aupr", "aupr_ci95") if "aupr" in r else "-",
                    f"{r['calibration']['ece']:.3f}" if r.get("calibration") else "-",
                    ", ".join(f"{k} {v}" for k, v in r["predicted"].items() if v),
                ]
            )
        for b, r in t["baselines"].items():
            extra = ""
            if "coverage" in r:
                extra = f"coverage {pct(r['coverage'])} %"
                if r.get("accuracy_covered"):
                    extra += f"; on covered items {with_ci(r['accuracy_covered'])}"
                if r.get("median_identity") is not None:
                    extra += f"; median identity of the best hit {r['median_identity']:.2f}"
            if b == "majority":
                extra = f"class {r['class']} (from {r['source']})"
            if b == "term_frequency":
                extra = f"threshold {r['threshold']:g} proteins (chosen on the test items: upper bound)"
            rows2.append(
                [
                    BASELINE_NAMES.get(b, b),
                    with_ci(r),
                    with_ci(r, "aupr", "aupr_ci95") if "aupr" in r else "-",
                    "-",
                    extra,
                ]
            )
        if t.get("paper"):
            rows2.append(["paper (reported)", ", ".join(f"{k} {v:g}" for k, v in t["paper"].items()), "-", "-", ""])
        lines += [
            "",
            _md_table(["predictor", "accuracy [95 % CI]", "AUPR [95 % CI]", "ECE", "notes / predicted classes"], rows2),
        ]
        if t["model"]["first_token"].get("ties"):
            lines += [
                "",
                f"First-token ties: {t['model']['first_token']['ties']} items ({t['model']['first_token']['tie_note']}).",
            ]
        pc_rows = []
        for cls in res["classes"]:
            row = [cls, str(t["model"]["sum"]["per_class"][cls]["n"])]
            row += [with_ci(t["model"][rule]["per_class"][cls]) for rule in RULES]
            row += [
                pct(t["baselines"][b]["per_class"][cls]["accuracy"]) if b in t["baselines"] else "-"
                for b in ("homology_best", "composition")
            ]
            pc_rows.append(row)
        lines += [
            "",
            "Per class (accuracy = recall of the true class, %):",
            "",
            _md_table(["class", "n", "first token", "full option", "homology best", "composition"], pc_rows),
        ]
        for kind, title in (
            ("confusion", "confusion"),
            ("per_class", "per-class accuracy"),
            ("calibration", "calibration"),
        ):
            if kind in images.get(name, {}):
                lines += ["", f"![{name} {title}]({images[name][kind]})"]
    return "\n".join(lines) + "\n"


def _section_head(name: str, t: dict[str, Any]) -> list[str]:
    """A task section's title, description and notes."""
    lines = ["", f"## {name}", "", t["description"] + "."]
    return lines + (["", t["notes"]] if t.get("notes") else [])


def _rank_section(name: str, t: dict[str, Any]) -> list[str]:
    d = t["data"]["test"]
    res = t["task"]["resolved"]
    c = t.get("cut") or {}
    lines = _section_head(name, t) + [
        "",
        f"- items: {t['n']:,} of {d.get('items_in_source', t['n']):,} from `{d.get('source')}`"
        + (f"; reading: {', '.join(f'{k} {v:,}' for k, v in d['reading'].items())}" if d.get("reading") else ""),
        f"- prompt: `{res.get('prompt')}`"
        + (f"; request `{res['request']}`" if res.get("request") else "")
        + (f"; descriptions `{res['descriptions']}`" if res.get("descriptions") else ""),
        f"- proteins cut to fit the context: {c.get('context_cut', 0)}"
        + (f" (shortest kept {c['shortest_kept']} residues)" if c.get("shortest_kept") else ""),
        f"- time: {t['seconds']}; prompts scored {t['prompts_scored']:,}",
        "",
    ]
    rows = [
        [
            f"model, {RANK_RULES.get(r, r)}",
            with_ci(v),
            f"{v.get('mean_rank', float('nan')):.2f}",
            f"{v.get('mrr', float('nan')):.3f}",
        ]
        for r, v in t["ranking"].items()
    ]
    for b, v in t.get("baselines", {}).items():
        extra = f" (coverage {pct(v['coverage'])} %)" if "coverage" in v else ""
        rows.append(
            [
                b + extra,
                with_ci(v),
                f"{v['mean_rank']:.2f}" if "mean_rank" in v else "-",
                f"{v['mrr']:.3f}" if "mrr" in v else "-",
            ]
        )
    if t.get("paper"):
        rows.append(["paper (reported)", ", ".join(f"{k} {v:g}" for k, v in t["paper"].items()), "-", "-"])
    lines.append(_md_table(["predictor", "accuracy [95 % CI]", "mean rank of the true request", "MRR"], rows))
    return lines


RANK_RULES = {"mean": "mean log-probability (paper)", "sum": "sum log-probability"}


def _strategy_line(st: dict[str, Any] | None) -> list[str]:
    if not st:
        return []
    line = (
        f"- strategy: {st['strategy']}, the best of {st['candidates_per_design']} candidates per design kept by the "
        "model's own verification (mean log-prob gain of the design under its request over a neutral one)"
    )
    if st.get("from_exemplar"):
        line += (
            f"; {st['from_exemplar']} designs rewritten from a training protein carrying the request "
            f"(mean identity to it {pct(st['mean_identity_to_exemplar'])} %)"
        )
    if st.get("requests_sampled_without_exemplar"):
        line += (
            f"; {st['requests_sampled_without_exemplar']} requests no training protein carries, sampled from the text"
        )
    if st.get("mean_verification") is not None:
        line += f"; mean verification {st['mean_verification']:+.3f}"
    return [line]


def _design_section(name: str, t: dict[str, Any]) -> list[str]:
    res = t["task"]["resolved"]
    d = t["data"]["test"]
    lines = _section_head(name, t)
    lines += [
        "",
        (
            f"- requests: {t['n']:,} from `{d.get('source')}`, {t['designs']:,} designs ({t['requests_skipped']} "
            "requests too long for the model's context left out)"
        ),
        f"- sampling: {res.get('sampling')}",
        *_strategy_line(t.get("design", {}).get("model", {}).get("strategy")),
        f"- time: {t['seconds']}",
        "",
        _md_table(
            [
                "sequences",
                "n",
                "mean length",
                "validity",
                "novel (< 70 % identity)",
                "diversity within / across",
                "consistency (mean recall)",
                "describe (mean recall)",
            ],
            [
                [
                    g,
                    f"{r['sequences']:,}",
                    f"{r['mean_length']:.0f}",
                    _rate_cell(r.get("validity")),
                    pct(r.get("novelty", {}).get("novel_fraction")),
                    f"{pct(r.get('diversity_within_request', {}).get('diversity'))} / {pct(r.get('diversity_across', {}).get('diversity'))}",
                    f"{_rate_cell(r.get('consistency'), 'consistent_fraction')} ({pct(r.get('consistency', {}).get('mean_recall'))})",
                    f"{_rate_cell(r.get('describe'), 'consistent_fraction')} ({pct(r.get('describe', {}).get('mean_recall'))})",
                ]
                for g, r in t["design"].items()
            ],
        ),
        "",
        "Examples (request / design / closest training protein):",
        "",
    ]
    for ex in t.get("examples", []):
        lines.append(
            f"- {ex['request']!r}: `{ex['sequence'][:60]}{'...' if len(ex['sequence']) > 60 else ''}` "
            f"({len(ex['sequence'])} aa) / {ex['closest'] or 'no hit'}"
            + (f" at {ex['identity']:.2f}" if ex.get("identity") is not None else "")
        )
    return lines


def _verified_go_lines(t: dict[str, Any]) -> list[str]:
    """The system's verified GO terms per aspect beside the homology vote and the naive predictor."""
    aspects = t.get("system_go") or {}
    if not aspects:
        return []
    rows = []
    for a, r in aspects.items():
        s, v, n = r["system"], r["homology_vote"], r["naive"]
        at = s.get("at_validation_threshold", {})
        rows.append(
            [
                a,
                str(s.get("proteins", "-")),
                pct(s["f_max"]),
                pct(v["f_max"]),
                pct(n["f_max"]),
                pct(s.get("aupr_pooled")),
                pct(v.get("aupr_pooled")),
                f"{pct(at.get('f1'))} (t = {at.get('threshold')})",
                f"{r['verified_by_model']:,} of {r['pairs']:,}",
            ]
        )
    return [
        "",
        "GO terms, verified and ranked (CAFA F-max %, pooled AUPR %; the system's threshold fit on validation):",
        "",
        _md_table(
            [
                "aspect",
                "proteins",
                "system F-max",
                "homology vote F-max",
                "naive F-max",
                "system AUPR",
                "vote AUPR",
                "system F1 at its validation threshold",
                "pairs verified by the model",
            ],
            rows,
        ),
    ]


def _describe_section(name: str, t: dict[str, Any]) -> list[str]:
    res = t["task"]["resolved"]
    d = t["data"]["test"]
    lines = _section_head(name, t)
    lines += _verified_go_lines(t)
    lines += [
        "",
        f"- items: {t['n']:,} from `{d.get('source')}`"
        + (f"; held-out set: {d['heldout']}" if d.get("heldout") else ""),
        (
            f"- prompt: `{res['prompt']}`; greedy, at most {res.get('max_new_tokens')} new tokens; GO aspect "
            f"{res.get('go_aspect') or 'all'}"
        ),
        f"- sequence cut: {t['cut']['rule']}",
        f"- time: {t['seconds']}",
        "",
        "Examples (answer / reference):",
        "",
    ]
    for ex in t.get("examples", []):
        lines.append(f"- `{ex['id']}`: {ex['answer']!r} / {ex['reference']!r}")
    return lines


def write_report(results: dict[str, Any], out_dir: str | Path, *, plots: bool = True) -> Path:
    """``report.md`` (and the plots, unless ``plots`` is false) in ``out_dir``."""
    out = Path(out_dir)
    images: dict[str, dict[str, str]] = {}
    if plots:
        fig_dir = out / "plots"
        fig_dir.mkdir(parents=True, exist_ok=True)
        if any("model" in t for t in results["tasks"].values()):
            plot_overview(results, fig_dir / "overview.png")
            images["_"] = {"overview": "plots/overview.png"}
        for name, t in results["tasks"].items():
            if "model" not in t:
                continue
            images[name] = {}
            for kind, fn in (
                ("confusion", plot_confusion),
                ("per_class", plot_per_class),
                ("calibration", plot_calibration),
            ):
                fn(t, fig_dir / f"{name}_{kind}.png")
                images[name][kind] = f"plots/{name}_{kind}.png"
    path = out / "report.md"
    write_text(path, render_markdown(results, images))
    return path


def report_from_file(results_json: str | Path, out_dir: str | Path | None = None) -> Path:
    """Redraw the report of a ``results.json``."""
    p = Path(results_json)
    results = json.loads(p.read_text(encoding="utf-8"))
    return write_report(results, out_dir or p.parent)
