"""Metrics and controls of a design task (the model writes proteins for text requests).

Each request is sampled ``per_request`` times under the same constrained decoding as the
``design`` command (:func:`~instructprotein.infer.generate.sample_proteins`), then every
design is judged the way the field asks (:mod:`.generation`):

- **validity**: the checks the ``design`` command prints (alphabet, length, low complexity);
- **novelty**: identity of the closest *training* protein (MMseqs2 over the training graph,
  held-out and decontaminated proteins excluded, nothing dropped for being too close: a
  memorised training protein must show up as identity 1.0);
- **diversity**: 1 - mean pairwise identity among the designs of one request, and across
  requests;
- **consistency**: the closest training protein carries every requested GO term (by
  propagation), and the mean share of requested terms it carries;
- **describe**: the model's own description of the design (function, location and process
  answers, no retrieval: the homologs' annotations would hand it the answer) names the
  requested terms, closed under the ontology.

Two controls run beside the model, in the same run and through the same checks, because a
consistency figure means nothing alone:

- **shuffled**: each design with its residues shuffled (same length and composition, order
  destroyed). Designs that carry sequence signal for the request beat their shuffles;
- **natural**: the held-out protein the request was written from (where the item has one):
  what a real protein with those annotations scores against the training graph, the
  reachable ceiling of homology-based consistency.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from instructprotein.evaluate import generation as gen
from instructprotein.evaluate.data import Item, TaskData
from instructprotein.evaluate.results import entry_head, write_predictions
from instructprotein.evaluate.stats import wilson
from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.formats.records import GO_ROOTS

GROUPS = ("model", "shuffled", "natural")
NOVEL = 0.7
"""Novelty line: a design under this identity to every training protein is new."""
MAX_PAIRS = 2000
"""Pairwise alignments for the across-request diversity: a seeded sample of this many pairs."""


def shuffled(sequence: str, key: str, seed: int) -> str:
    """The sequence's residues in a seeded random order (the same key and seed, the same order)."""
    residues = list(sequence)
    random.Random(f"{seed}:{key}").shuffle(residues)
    return "".join(residues)


def generate_designs(
    spec: TaskSpec,
    model: Any,
    tokenizer: Any,
    items: Sequence[Item],
    kg: Any,
    prep: dict[str, Any],
    progress: Any,
    side: Any = None,
) -> None:
    """Designs for every item, their shuffled controls, and the model's descriptions of all
    three groups, into ``prep``: the model's part of the task (timed as ``seconds["model"]``).

    Strategy ``exemplar``: training proteins carrying the request's terms (``side.exclude``,
    the held-out and decontaminated proteins, never used; without a side, none is excluded)
    rewritten by the model (:mod:`~instructprotein.infer.exemplars`); ``candidates`` per kept
    design, the model's own verification score picks among them (checks passed and under 70 %
    identity to the exemplar first)."""
    from instructprotein.infer.checks import check_sequence
    from instructprotein.infer.classify import context_length
    from instructprotein.infer.describe import describe
    from instructprotein.infer.exemplars import find_exemplars, identity_of, request_gain, rewrite_exemplars
    from instructprotein.infer.generate import sample_proteins
    from instructprotein.infer.inputs import Query
    from instructprotein.infer.terms import TermIndex
    from instructprotein.prompt import design_prompt

    exclude = side.exclude if side is not None else frozenset()

    t0 = time.perf_counter()
    s = spec.sampling
    ctx = context_length(model)
    designs: list[dict[str, Any]] = []
    skipped = 0
    fallback = 0
    with progress.step(f"{spec.name}: design for {len(items):,} requests", total=len(items)) as bar:
        for n, item in enumerate(items):
            prompt = design_prompt(item.label)
            room = ctx - len(tokenizer.encode(prompt)) - 1
            max_len = min(s["max_len"], room)
            if max_len < s["min_len"]:
                skipped += 1
                bar.advance()
                continue
            pool = s["per_request"] * s["candidates"]
            wanted = [t for t in (item.terms or ()) if t not in GO_ROOTS]
            exemplars = []
            if s["strategy"] == "exemplar" and kg is not None and wanted:
                exemplars = find_exemplars(
                    kg, wanted, n=pool, seed=s["seed"] + n, exclude=exclude, min_len=s["min_len"], max_len=max_len
                )
            if exemplars:
                picks = [exemplars[k % len(exemplars)] for k in range(pool)]
                seqs = [
                    rewrite_exemplars(
                        model,
                        tokenizer,
                        prompt,
                        [e.sequence],
                        rate=s["mutation_rate"],
                        temperature=s["temperature"],
                        seed=s["seed"] + 1000 * n + k,
                    )[0]
                    for k, e in enumerate(picks)
                ]
                cands = [(q, "exemplar", e.accession, identity_of(q, e.sequence)) for q, e in zip(seqs, picks)]
            else:
                fallback += s["strategy"] == "exemplar"
                samples = sample_proteins(
                    model,
                    tokenizer,
                    prompt,
                    n=pool,
                    temperature=s["temperature"],
                    top_p=s["top_p"],
                    seed=s["seed"] + n,
                    min_len=s["min_len"],
                    max_len=max_len,
                )
                cands = [(q, ended, None, None) for q, ended in samples]
            scores = (
                request_gain(model, tokenizer, item.label, [c[0] for c in cands])
                if pool > s["per_request"]
                else [None] * pool
            )

            def rank(k: int, cands: list = cands, scores: list = scores) -> tuple:
                q, _e, _a, ident = cands[k]
                ok = check_sequence(q, min_len=s["min_len"]).passed
                return (ok, ident is None or ident < NOVEL, scores[k] if scores[k] is not None else float("-inf"))

            keep = (
                sorted(range(pool), key=rank, reverse=True)[: s["per_request"]]
                if pool > s["per_request"]
                else range(pool)
            )
            for k, c in enumerate(keep):
                seq, ended, ex, ident = cands[c]
                key = f"{item.id}#{k + 1}"
                designs.append(
                    {
                        "id": key,
                        "item": n,
                        "sequence": seq,
                        "ended_by": ended,
                        "max_len": max_len,
                        "shuffled": shuffled(seq, key, s["seed"]),
                        "exemplar": ex,
                        "exemplar_identity": ident,
                        "verification": scores[c],
                    }
                )
            bar.advance()
    gen_seconds = time.perf_counter() - t0
    described: dict[str, list[set[str]]] = {g: [] for g in GROUPS}
    if "describe" in spec.metrics and designs:
        terms = TermIndex(kg)
        naturals = [i for i in items if i.sequence]
        groups = {
            "model": [Query(d["id"], d["sequence"]) for d in designs if d["sequence"]],
            "shuffled": [Query(d["id"], d["shuffled"]) for d in designs if d["sequence"]],
            "natural": [Query(i.id, i.sequence) for i in naturals],
        }
        with progress.step(f"{spec.name}: describe {sum(map(len, groups.values())):,} sequences"):
            for g, queries in groups.items():
                if not queries:
                    continue
                got = describe(
                    model,
                    tokenizer,
                    queries,
                    terms=terms,
                    retrieval=False,
                    aspects=("P",),
                    max_new_tokens=spec.max_new_tokens,
                )
                by_id = {d.id: set(d.terms.ids) if d.terms is not None else set() for d in got}
                ids = [d["id"] for d in designs] if g != "natural" else [i.id for i in naturals]
                described[g] = [by_id.get(x, set()) for x in ids]
    prep.update(
        designs=designs,
        skipped=skipped,
        described=described,
        sampled_without_exemplar=fallback,
        cut={"rule": "no protein in the prompt"},
        prompts_scored=len(items),
    )
    prep.setdefault("seconds", {}).update(model=round(time.perf_counter() - t0, 2), sampling=round(gen_seconds, 2))


def _rate(flags: Sequence[bool]) -> dict[str, Any]:
    k, n = sum(map(bool, flags)), len(flags)
    return {"rate": k / n if n else float("nan"), "k": k, "n": n, "ci95": list(wilson(k, n))}


def _with_ci(c: dict[str, Any]) -> dict[str, Any]:
    """A consistency result with the Wilson interval of its share (the count is share x designs)."""
    n = c["designs"]
    return {**c, "ci95": list(wilson(round(c["consistent_fraction"] * n) if n else 0, n))}


def _within_diversity(seqs_by_item: dict[int, list[str]]) -> dict[str, Any]:
    vals = []
    for seqs in seqs_by_item.values():
        if len(seqs) > 1:
            d = gen.diversity(seqs)
            vals.append(d["mean_identity"])
    if not vals:
        return {"diversity": float("nan"), "requests": 0}
    mean = sum(vals) / len(vals)
    return {"diversity": 1 - mean, "mean_identity": mean, "requests": len(vals)}


def _across_diversity(seqs: list[str], seed: int) -> dict[str, Any]:
    pairs = list(combinations(range(len(seqs)), 2))
    if len(pairs) > MAX_PAIRS:
        pairs = random.Random(seed).sample(pairs, MAX_PAIRS)
    if not pairs:
        return {"diversity": float("nan"), "pairs": 0}
    ids = [gen.pairwise_identity(seqs[i], seqs[j]) for i, j in pairs]
    mean = sum(ids) / len(ids)
    return {"diversity": 1 - mean, "mean_identity": mean, "max_identity": max(ids), "pairs": len(pairs)}


def finish_design(spec: TaskSpec, td: TaskData, prep: dict[str, Any], side: Any, pred_dir: Path) -> dict[str, Any]:
    """The results entry of a design task: every metric for the model's designs and both controls."""
    from instructprotein.infer.checks import check_sequence

    items = td.items
    designs = prep["designs"]
    s = spec.sampling
    requested = [{t for t in (items[d["item"]].terms or ()) if t not in GO_ROOTS} for d in designs]
    natural_items = [i for i in items if i.sequence]
    seqs = {
        "model": [d["sequence"] for d in designs],
        "shuffled": [d["shuffled"] for d in designs],
        "natural": [i.sequence for i in natural_items],
    }
    wants = {
        "model": requested,
        "shuffled": requested,
        "natural": [{t for t in (i.terms or ()) if t not in GO_ROOTS} for i in natural_items],
    }
    closest: dict[str, list[Any]] = {g: [None] * len(v) for g, v in seqs.items()}
    search_seconds = 0.0
    if side is not None and ({"novelty", "consistency"} & set(spec.metrics)):
        everything = sorted({x for v in seqs.values() for x in v if x})
        t0 = time.perf_counter()
        found = side.index.search(
            {str(n): q for n, q in enumerate(everything)},
            top_k=1,
            exclude=side.exclude,
            sensitivity=side.settings["sensitivity"],
            max_seqs=side.settings["max_seqs"],
        )
        search_seconds = time.perf_counter() - t0
        best = {q: (found[str(n)][0] if found[str(n)] else None) for n, q in enumerate(everything)}
        closest = {g: [best.get(x) if x else None for x in v] for g, v in seqs.items()}

    def terms_of(acc: str) -> set[str]:
        return set(side.propagated(acc)) if side is not None else set()

    groups: dict[str, dict[str, Any]] = {}
    for g in GROUPS:
        v = seqs[g]
        if not v:
            continue
        r: dict[str, Any] = {"sequences": len(v), "mean_length": sum(map(len, v)) / len(v)}
        if "validity" in spec.metrics:
            r["validity"] = _rate([check_sequence(x, min_len=s["min_len"]).passed for x in v])
        if "novelty" in spec.metrics and side is not None:
            r["novelty"] = gen.novelty([h.identity if h else None for h in closest[g]])
            r["identity_of_closest"] = [round(h.identity, 4) if h else None for h in closest[g]]
        if "diversity" in spec.metrics and g != "natural":
            by_item: dict[int, list[str]] = {}
            for d, x in zip(designs, v):
                by_item.setdefault(d["item"], []).append(x)
            r["diversity_within_request"] = _within_diversity(by_item)
        if "diversity" in spec.metrics:
            r["diversity_across"] = _across_diversity(v, s["seed"])
        if "consistency" in spec.metrics and side is not None:
            c = gen.annotation_consistency([h.accession if h else None for h in closest[g]], wants[g], terms_of)
            r["consistency"] = _with_ci(c)
        if "describe" in spec.metrics and prep["described"].get(g):
            r["describe"] = _with_ci(gen.describe_consistency(wants[g], prep["described"][g]))
        groups[g] = r
    if designs:
        groups["model"]["ended_by_model"] = sum(d["ended_by"] == "model" for d in designs) / len(designs)
        ex = [d["exemplar_identity"] for d in designs if d.get("exemplar_identity") is not None]
        ver = [d["verification"] for d in designs if d.get("verification") is not None]
        groups["model"]["strategy"] = {
            "strategy": s["strategy"],
            "candidates_per_design": s["candidates"],
            "mutation_rate": s["mutation_rate"],
            "from_exemplar": len(ex),
            "requests_sampled_without_exemplar": prep.get("sampled_without_exemplar", 0),
            "mean_identity_to_exemplar": sum(ex) / len(ex) if ex else None,
            "mean_verification": sum(ver) / len(ver) if ver else None,
        }

    rows = []
    for n, d in enumerate(designs):
        h = closest["model"][n]
        row = {
            "id": d["id"],
            "request": items[d["item"]].label,
            "requested": sorted(requested[n]),
            "sequence": d["sequence"],
            "ended_by": d["ended_by"],
            "closest": h.accession if h else None,
            "closest_identity": round(h.identity, 4) if h else None,
            "exemplar": d.get("exemplar"),
            "exemplar_identity": d.get("exemplar_identity"),
            "verification": d.get("verification"),
        }
        if prep["described"].get("model"):
            row["described_terms"] = len(prep["described"]["model"][n])
        rows.append(row)
    write_predictions(pred_dir, spec, rows)
    examples = [
        {
            "request": items[d["item"]].label,
            "sequence": d["sequence"],
            "closest": closest["model"][n].accession if closest["model"][n] else None,
            "identity": round(closest["model"][n].identity, 3) if closest["model"][n] else None,
        }
        for n, d in enumerate(designs[:4])
    ]
    return {
        **entry_head(spec, td, prep),
        "designs": len(designs),
        "requests_skipped": prep["skipped"],
        "design": groups,
        "baselines": {},
        "paper": spec.paper,
        "prompts_scored": prep.get("prompts_scored", len(items)),
        "prompts_reused": 0,
        "seconds": {**prep["seconds"], "search": round(search_seconds, 2)},
        "examples": examples,
    }
