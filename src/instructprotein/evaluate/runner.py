"""The runner: tasks in, ``results.json`` + ``report.md`` + plots out, baselines beside the model.

:func:`evaluate` does, in this order (so every user error surfaces before the model runs):

1. load and validate every task file (:mod:`.tasks`);
2. open the knowledge graph(s), the decontamination list and the held-out split, and read
   every task's items, mapping labels to classes (:mod:`.data`, :mod:`.heldout`);
3. open the model and check it has the protein tokens;
4. search every test sequence once against the training graph for the homology baselines
   (one MMseqs2 run per graph, decontaminated, :mod:`.baselines`);
5. per task: build the paper's prompts (the task's cut rule, then the prompt contract's fit
   to the model's context, :func:`~instructprotein.prompt.fit`, counted in the results), score every candidate once with both rules (:mod:`.scoring`:
   first token, the paper's rule, and the full option's log-likelihood), and compute
   accuracy with its Wilson interval, AUPR with a bootstrap interval, per-class accuracy,
   confusion matrix, calibration; the baselines on the same items;
6. write ``results.json`` (every number with the exact task definition, model, seed,
   versions and settings behind it), ``predictions/{task}.jsonl``, ``report.md`` and the
   plots (:mod:`.report`).

Identical prompts are scored once per run (DeepLoc's binary test sequences are all in its
10-class test set, with the same prompt).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructprotein.atomic import write_text
from instructprotein.errors import InputError
from instructprotein.evaluate import stats
from instructprotein.evaluate.baselines import (
    CompositionModel,
    TermFrequency,
    majority_class,
)
from instructprotein.evaluate.data import Item, TaskData, load_task_data
from instructprotein.evaluate.homology_side import (  # noqa: F401 (_homology_baseline: re-exported)
    RETRIEVAL_TOP_K,
    _evidence,
    _homology_baseline,
    _HomologySide,
    _reuse_decontamination_hits,
    evidence_blocks,
)
from instructprotein.evaluate.provenance import _sha256, check_protein_tokens, model_info, versions  # noqa: F401
from instructprotein.evaluate.results import entry_head, write_predictions
from instructprotein.evaluate.system import ALONE, _describe_system, _fit_combination, _prepare_verification
from instructprotein.evaluate.tasks import TaskSpec, load_task
from instructprotein.jsonable import json_default as _json_default
from instructprotein.progress import Progress

RULES = ("first_token", "sum")
RULE_NAMES = {"first_token": "first token (paper)", "sum": "full option"}
DEFAULT_MAX_IDENTITY = 0.7
_COMPOSITION: dict[bytes, CompositionModel] = {}


# -- prompts ------------------------------------------------------------------------------------------------


def _prompt(spec: TaskSpec, item: Item, sequence: str, context: str | None) -> str:
    from instructprotein.prompt import build_prompt, protein_text

    term = item.term_name or ""
    if spec.template is not None:
        text = spec.template.replace("{protein}", protein_text(sequence)).replace("{term}", term)
        if context:
            raise InputError(f"task {spec.name}: retrieval needs a question + prefix prompt, not a template")
        return text
    question = str(spec.question).replace("{term}", term)
    return build_prompt(sequence, question, spec.prefix, context=context, cut_above=None)


def build_prompts(
    spec: TaskSpec,
    items: Sequence[Item],
    tokenizer: Any,
    context_len: int,
    longest_candidate: int,
    contexts: Sequence[str | None] | None = None,
    *,
    max_residues: int | None = None,
) -> tuple[list[list[int]], list[str], dict[str, Any], list[str]]:
    """Token ids of every item's prompt, the sequence each read, counts, and the prompts' text.

    1. the task's rule (the paper's: above ``cut.above`` residues keep the last ``cut.keep``),
       then the model's own (``max_residues``: its preset's ``prompt_residues``, as it was tuned);
    2. each prompt fitted by the prompt contract (:func:`~instructprotein.prompt.fit`) to
       ``context - answer_room`` (or the longest candidate if that is longer), as training
       cut its prompts: the protein first, its evidence block (``contexts``) when the protein
       would go below :func:`~instructprotein.prompt.shortest_kept`; one cut per protein (its
       longest prompt decides, :func:`~instructprotein.prompt.fit_shared`), so the prompts
       about one protein still share its prefix.

    Counts of each go to the results; ``info["evidence"]`` holds the evidence block each
    prompt kept.
    """
    from instructprotein.prompt import Prompt, answer_room, cap_protein, fit, fit_shared

    ctxs = list(contexts) if contexts is not None else [None] * len(items)
    seqs = [cap_protein(i.sequence, cut_above=spec.cut_above, keep=spec.keep) for i in items]
    paper_cut = sum(1 for i, s in zip(items, seqs) if len(s) < len(i.sequence))
    model_cut = 0
    if max_residues is not None:  # a protein that fits is left as it is
        model_cut = sum(1 for s in seqs if len(s) > max_residues)
        seqs = [cap_protein(s, cut_above=None, max_residues=max_residues) for s in seqs]
    texts = [_prompt(spec, i, s, c) for i, s, c in zip(items, seqs, ctxs)]
    try:
        ids = [e.input_ids for e in tokenizer.encode_batch(texts, add_bos=True)]
    except ValueError as exc:
        raise InputError(f"task {spec.name}: cannot encode a prompt: {exc}") from None
    room = max(answer_room(context_len), longest_candidate)

    def measure(item: Item) -> Any:
        return lambda p: len(tokenizer.encode(_prompt(spec, item, p.protein or "", p.evidence)))

    fitted = [
        fit(
            Prompt(s, "", evidence=c),
            measure(i),
            context_len=context_len,
            answer_tokens=longest_candidate,
            tokens=len(n),
        )
        for i, s, c, n in zip(items, seqs, ctxs, ids)
    ]
    for item, f in zip(items, fitted):
        if not f.fits:
            extra = f.tokens - f.residues
            raise InputError(
                f"task {spec.name}, item {item.id}: the prompt without its protein takes {extra} of the model's "
                f"{context_len} tokens, leaving no room for a protein and an answer"
            )
    fitted = fit_shared(fitted, seqs)
    for n, (item, f) in enumerate(zip(items, fitted)):
        if f.protein_cut or f.evidence_cut:
            seqs[n], ctxs[n] = f.prompt.protein or "", f.prompt.evidence
            texts[n] = _prompt(spec, item, seqs[n], ctxs[n])
    redo = [n for n, f in enumerate(fitted) if f.protein_cut or f.evidence_cut]
    if redo:
        for n, e in zip(redo, tokenizer.encode_batch([texts[n] for n in redo], add_bos=True)):
            ids[n] = e.input_ids
    rule = f"above {spec.cut_above} residues keep the last {spec.keep}" if spec.cut_above else "no cut"
    rule += (
        f"; a prompt over {context_len - room} tokens (the model reads {context_len}, {room} kept for the "
        "answer) has its protein cut to fit: the first three quarters and the last quarter, joined by one X, "
        "as in training"
    )
    kept = [f.residues for f in fitted if f.protein_cut]
    if max_residues is not None:
        rule += f"; before that the model's own cut to {max_residues} residues, the length it was tuned on"
    info = {
        "paper_cut": paper_cut,
        "model_cut": model_cut,
        "context_cut": sum(1 for f in fitted if f.protein_cut),
        "evidence_cut": sum(1 for f in fitted if f.evidence_cut),
        "answer_room": room,
        "shortest_kept": min(kept) if kept else None,
        "rule": rule,
        "evidence": ctxs,
    }
    return ids, seqs, info, texts


# -- the metrics of one prediction set ---------------------------------------------------------------------


def summarise(
    spec: TaskSpec, true: Sequence[str], pred: Sequence[str], probs: np.ndarray | None, *, seed: int = 0
) -> dict[str, Any]:
    """Accuracy [Wilson 95 %], per class, confusion, prediction counts; with ``probs`` (items x classes)
    also calibration and, where the task asks, AUPR [bootstrap 95 %]."""
    classes = spec.classes
    t = [classes.index(x) for x in true]
    p = [classes.index(x) for x in pred]
    correct = [a == b for a, b in zip(t, p)]
    out = stats.accuracy_summary(correct)
    matrix = stats.confusion(t, p, len(classes))
    out["per_class"] = stats.per_class(matrix, classes)
    out["confusion"] = matrix.tolist()
    out["predicted"] = {c: int(v) for c, v in zip(classes, matrix.sum(axis=0))}
    if probs is not None:
        conf = probs[np.arange(len(p)), p]
        out["calibration"] = stats.calibration(conf, correct)
        if "aupr" in spec.metrics and spec.positive is not None:
            pos = classes.index(spec.positive)
            y = [x == pos for x in t]
            out["aupr"] = stats.average_precision(probs[:, pos], y)
            out["aupr_ci95"] = list(stats.bootstrap_average_precision(probs[:, pos], y, seed=seed))
    return out


# -- evaluate ----------------------------------------------------------------------------------------------


def evaluate(
    model_path: str | Path,
    tasks: Sequence[str | Path | TaskSpec],
    *,
    out_dir: str | Path,
    limit: int | None = None,
    kg: str | Path | None = None,
    decontamination_dir: str | Path | None = None,
    instructions_dir: str | Path | None = None,
    seed: int = 0,
    max_identity: float | None = None,
    homology: bool = True,
    sensitivity: float = 4.0,
    max_seqs: int = 1000,
    retrieval: bool = False,
    device: str | None = None,
    max_rows: int = 64,
    plots: bool = True,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate a model folder on ``tasks``; write ``results.json``, ``report.md`` and plots into ``out_dir``.

    ``kg``: the knowledge graph the homology baseline and the term-frequency prior read as
    the training graph (default: the instruction set's graph). ``decontamination_dir``: the
    folder with ``removed.tsv`` (default: ``instructions_dir/decontamination``);
    ``instructions_dir``: the instruction set (its splits give the held-out tasks and say
    which proteins were trained on). ``max_identity``: homology hits at or above it are
    dropped (default: the decontamination's threshold, else 0.7). ``retrieval``: put the
    top-3 decontaminated homologs' annotations in the prompt (for models trained that way).
    ``threads``: torch threads while scoring (on a machine shared with other busy processes,
    1 avoids OpenMP threads spin-waiting on each other, which made a forward pass 12x slower
    here). Returns the results (as written to ``results.json``).
    """
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _evaluate(
            model_path,
            tasks,
            out_dir=out_dir,
            limit=limit,
            kg=kg,
            decontamination_dir=decontamination_dir,
            instructions_dir=instructions_dir,
            seed=seed,
            max_identity=max_identity,
            homology=homology,
            sensitivity=sensitivity,
            max_seqs=max_seqs,
            retrieval=retrieval,
            device=device,
            max_rows=max_rows,
            plots=plots,
            progress=progress,
        )
    finally:
        torch.set_num_threads(before)


def _evaluate(
    model_path: str | Path,
    tasks: Sequence[str | Path | TaskSpec],
    *,
    out_dir: str | Path,
    limit: int | None,
    kg: str | Path | None,
    decontamination_dir: str | Path | None,
    instructions_dir: str | Path | None,
    seed: int,
    max_identity: float | None,
    homology: bool,
    sensitivity: float,
    max_seqs: int,
    retrieval: bool,
    device: str | None,
    max_rows: int,
    plots: bool,
    progress: Progress | None,
) -> dict[str, Any]:
    from instructprotein.kg.store import KnowledgeGraph

    progress = progress or Progress()
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [t if isinstance(t, TaskSpec) else load_task(t) for t in tasks]
    if not specs:
        raise InputError("no task given; list them with `instructprotein evaluate --list`")
    names = [s.name for s in specs]
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise InputError(f"task(s) given twice: {', '.join(dup)}")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be positive, got {limit}")

    # -- graphs, decontamination, held-out split -------------------------------------------------------------
    heldout = None
    if instructions_dir is not None:
        from instructprotein.evaluate.heldout import HeldOut

        heldout = HeldOut(instructions_dir, out_dir=out)
    kg_obj = KnowledgeGraph(kg) if kg is not None else (heldout.kg if heldout is not None else None)
    if decontamination_dir is None and instructions_dir is not None:
        candidate = Path(instructions_dir) / "decontamination"
        decontamination_dir = candidate if (candidate / "removed.tsv").is_file() else None
    decon_info: dict[str, Any] = {"dir": None}
    removed: frozenset[str] = frozenset()
    decon_identity = None
    if decontamination_dir is not None:
        from instructprotein.instruct.decontaminate import Decontamination

        dec = Decontamination.load(decontamination_dir)
        decon_identity = dec.parameters.get("min_identity")
        same = kg_obj is not None and dec.parameters.get("kg_content_hash") == kg_obj.meta.get("content_hash")
        removed = dec.excluded if same else frozenset()
        decon_info = {
            "dir": str(Path(decontamination_dir).resolve()),
            "min_identity": decon_identity,
            "min_coverage": dec.parameters.get("min_coverage"),
            "removed": len(dec.removed),
            "applies_to_homology_graph": bool(same),
        }
    if max_identity is None:
        max_identity = decon_identity or (heldout.min_identity if heldout else None) or DEFAULT_MAX_IDENTITY

    # -- data (all of it before the model) ---------------------------------------------------------------------
    data: dict[str, TaskData] = {}
    with progress.step("read the tasks' data", total=len(specs)) as bar:
        for spec in specs:
            if spec.needs_kg and kg_obj is None:
                raise InputError(f"task {spec.name} needs a knowledge graph for GO term names (give kg=...)")
            kg_for = heldout.kg if (spec.test.heldout and heldout is not None) else kg_obj
            data[spec.name] = load_task_data(spec, kg=kg_for, heldout=heldout, limit=limit, seed=seed)
            bar.advance()
    # the system's answer: each combined task's validation twin, to fit its kind's weights on
    from instructprotein.evaluate import system as sysm

    twins: dict[str, TaskSpec] = {}
    if retrieval:
        for spec in specs:
            if (
                spec.combine is not None
                and spec.homology is not None
                and spec.combine.kind not in {t.combine.kind for t in twins.values() if t.combine}
            ):
                twins[sysm.VALID_PREFIX + spec.combine.kind] = spec

    # -- the model -----------------------------------------------------------------------------------------
    import torch

    from instructprotein.infer.classify import context_length, prompt_residues
    from instructprotein.model.factory import load_model_and_tokenizer

    mpath = Path(model_path).expanduser()
    with progress.step("load the model"):
        model, tokenizer = load_model_and_tokenizer(mpath)
        check_protein_tokens(tokenizer, model, mpath)
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(dev).eval()
    ctx_len, most = context_length(model), prompt_residues(model)
    minfo = model_info(mpath, model, tokenizer)
    from instructprotein.infer import combine as comb

    stored = comb.load(mpath)
    want = sysm.fingerprint(minfo, instructions_dir)
    kinds = {k for t in twins.values() for k in sysm.stored_kinds(t)}
    combination_info: dict[str, Any] = {"file": str(mpath / comb.FILE), "kinds": sorted(kinds)}
    fit_specs: list[TaskSpec] = []
    if kinds and sysm.usable(stored, kinds, want):
        combination_info["source"] = "stored (fit for this model and split)"
    elif kinds and heldout is None:
        if sysm.usable(stored, kinds, {"model_weights_sha256": want["model_weights_sha256"]}):
            combination_info["source"] = "stored (fit for this model; no instruction set given to check its split)"
        else:
            stored = None
            combination_info["source"] = "none: fitting needs the instruction set's validation split (instructions_dir)"
    elif kinds:
        # kinds fit for this model and split are kept; the others (or all, for another model) are fit now
        stored = stored if sysm.usable(stored, set(), want) else None
        have = set(stored.kinds) if stored is not None else set()
        twin_specs = [sysm.validation_spec(t) for t in twins.values() if not sysm.stored_kinds(t) <= have]
        with progress.step("read the validation items of the system's combination", total=len(twin_specs)) as bar:
            for vs in twin_specs:
                try:
                    data[vs.name] = load_task_data(vs, kg=heldout.kg, heldout=heldout, limit=None, seed=seed)
                    fit_specs.append(vs)
                except InputError as exc:  # e.g. a validation split without such proteins
                    combination_info.setdefault("skipped", {})[vs.combine.kind if vs.combine else vs.name] = str(exc)
                bar.advance()
    all_specs = specs + fit_specs

    # -- homology: one search per graph ------------------------------------------------------------------------
    settings = {"top_k": 20, "sensitivity": sensitivity, "max_seqs": max_seqs, "evalue": 1e-3}
    sides: dict[str, _HomologySide] = {}
    homology_info: dict[str, Any] = {"enabled": bool(homology), "max_identity": max_identity, **settings}
    need_side = {
        s.name: ("heldout" if s.test.heldout else "benchmark")
        for s in all_specs
        if (homology and s.homology is not None) or retrieval or s.term_frequency or s.kind == "design"
    }
    searching = {
        s.name for s in all_specs if ((homology and s.homology is not None) or retrieval) and s.kind != "design"
    }
    if need_side:
        not_train = heldout.not_train() if heldout is not None else frozenset()
        if "benchmark" in need_side.values():
            if kg_obj is None:
                raise InputError("homology transfer needs a knowledge graph (give kg=... or instructions_dir=...)")
            same_as_split = heldout is not None and kg_obj.meta.get("content_hash") == heldout.kg.meta.get(
                "content_hash"
            )
            exclude = removed | (not_train if same_as_split else frozenset())
            sides["benchmark"] = _HomologySide(kg_obj, exclude, max_identity, settings)
            homology_info["benchmark_graph"] = {
                "kg": str(kg_obj.path),
                "content_hash": kg_obj.meta.get("content_hash"),
                "excluded_decontaminated": len(removed),
                "excluded_not_in_train_split": len(not_train) if same_as_split else 0,
                "proteins": kg_obj.count("protein"),
            }
        if "heldout" in need_side.values():
            assert heldout is not None
            shared = sides.get("benchmark")  # the same graph: one index, one search, each side's exclusions after
            same_graph = shared is not None and shared.kg.meta.get("content_hash") == heldout.kg.meta.get(
                "content_hash"
            )
            sides["heldout"] = _HomologySide(
                heldout.kg, not_train | removed, max_identity, settings, shared.index if same_graph else None
            )
            homology_info["heldout_graph"] = {
                "kg": str(heldout.kg.path),
                "content_hash": heldout.kg.meta.get("content_hash"),
                "excluded_not_in_train_split": len(not_train),
                "proteins": heldout.kg.count("protein"),
                "train_proteins": len(heldout.train_accessions()),
            }
        wanted = {
            key: [
                i.sequence for n, where in need_side.items() if where == key and n in searching for i in data[n].items
            ]
            for key in sides
        }
        if "benchmark" in sides and decontamination_dir is not None and decon_info.get("applies_to_homology_graph"):
            homology_info["reused_decontamination_hits"] = _reuse_decontamination_hits(
                sides["benchmark"], decontamination_dir, dec.parameters, wanted["benchmark"], settings
            )
        if len(sides) == 2 and sides["benchmark"].index is sides["heldout"].index:
            # one MMseqs2 run for both: the index keeps raw hits per sequence, each side filters its own
            everything = sorted(set(wanted["benchmark"] + wanted["heldout"]))
            if everything:
                with progress.step(f"homology search ({len(everything):,} sequences, both sides)"):
                    t0 = time.perf_counter()
                    sides["benchmark"].index.search(
                        {str(i): q for i, q in enumerate(everything)},
                        top_k=1,
                        sensitivity=settings["sensitivity"],
                        max_seqs=settings["max_seqs"],
                    )
                    homology_info["search_seconds"] = round(time.perf_counter() - t0, 1)
        for key, side in sides.items():
            if not wanted[key]:
                continue
            with progress.step(f"homology search ({key} graph, {len(set(wanted[key])):,} sequences)"):
                side.search(wanted[key])
            homology_info[f"{key}_search_seconds"] = round(side.seconds, 1)

    # -- prompts of every task, then one scoring pass over all of them ------------------------------------------
    prepared = {}
    for spec in all_specs:
        if spec.kind == "describe" and spec in fit_specs:  # a validation twin is only verified, not described
            continue
        t0 = time.perf_counter()
        prepared[spec.name] = _prepare(
            spec,
            data[spec.name],
            tokenizer,
            ctx_len,
            sides.get(need_side.get(spec.name, "")),
            retrieval,
            max_residues=most,
        )
        if retrieval and spec.kind == "choice":  # what the sequence alone gives: the same prompts, no evidence
            prepared[spec.name + ALONE] = _prepare(
                spec, data[spec.name], tokenizer, ctx_len, None, False, max_residues=most
            )
        prepared[spec.name]["seconds"]["prompts"] = round(time.perf_counter() - t0, 2)
    verify_meta: dict[str, Any] = {}
    for spec in all_specs:  # describe's GO terms: every candidate verified as a yes/no question
        side = sides.get(need_side.get(spec.name, ""))
        if (
            retrieval
            and spec.kind == "describe"
            and spec.combine is not None
            and side is not None
            and "go" in spec.metrics
        ):
            verify_meta[spec.name] = _prepare_verification(
                spec, data[spec.name].items, side, tokenizer, ctx_len, most, prepared
            )
    _score_all(model, prepared, max_rows, progress)
    combination = (
        _fit_combination(
            fit_specs, data, prepared, sides, need_side, stored, want, mpath, combination_info, progress, verify_meta
        )
        if kinds
        else None
    )
    for spec in specs:
        if spec.kind == "describe":
            _generate(spec, model, tokenizer, prepared[spec.name], progress)
        if spec.kind == "design":
            from instructprotein.evaluate.design import generate_designs

            kg_terms = heldout.kg if (spec.test.heldout and heldout is not None) else kg_obj
            generate_designs(
                spec,
                model,
                tokenizer,
                data[spec.name].items,
                kg_terms,
                prepared[spec.name],
                progress,
                side=sides.get(need_side.get(spec.name, "")),
            )
        if spec.kind == "rank":
            from instructprotein.evaluate.rank import score_rank

            score_rank(spec, model, tokenizer, data[spec.name].items, prepared[spec.name], progress, max_rows=max_rows)

    # -- metrics and baselines per task ---------------------------------------------------------------------
    results: dict[str, Any] = {}
    pred_dir = out / "predictions"
    pred_dir.mkdir(exist_ok=True)
    for spec in specs:
        t0 = time.perf_counter()
        side = sides.get(need_side.get(spec.name, ""))
        with progress.step(f"{spec.name}: metrics and baselines"):
            if spec.kind == "describe":
                from instructprotein.evaluate.describe import finish_describe

                kg_terms = heldout.kg if (spec.test.heldout and heldout is not None) else kg_obj
                verified = (
                    _describe_system(
                        spec, data[spec.name].items, verify_meta.get(spec.name), prepared, combination, side
                    )
                    if spec.name in verify_meta
                    else None
                )
                res = finish_describe(
                    spec, data[spec.name], prepared[spec.name], side, kg_terms, homology, pred_dir, verified=verified
                )
            elif spec.kind == "design":
                from instructprotein.evaluate.design import finish_design

                res = finish_design(spec, data[spec.name], prepared[spec.name], side, pred_dir)
            elif spec.kind == "rank":
                from instructprotein.evaluate.rank import finish_rank

                res = finish_rank(spec, data[spec.name], prepared[spec.name], side, seed, pred_dir)
            else:
                res = _finish(
                    spec,
                    data[spec.name],
                    prepared[spec.name],
                    side,
                    homology,
                    seed,
                    pred_dir,
                    alone=prepared.get(spec.name + ALONE),
                    combination=combination,
                )
        res["seconds"]["baselines_and_metrics"] = round(time.perf_counter() - t0, 2)
        res["seconds"]["total"] = round(sum(v for k, v in res["seconds"].items() if k != "total"), 2)
        results[spec.name] = res

    summary = {
        "format": "instructprotein-evaluation/1",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": minfo,
        "seed": seed,
        "limit": limit,
        "retrieval": retrieval,
        "versions": versions(),
        "knowledge_graph": {"path": str(kg_obj.path), "content_hash": kg_obj.meta.get("content_hash")}
        if kg_obj
        else None,
        "instructions_dir": str(Path(instructions_dir).resolve()) if instructions_dir else None,
        "decontamination": decon_info,
        "homology": homology_info,
        "combination": combination_info if kinds else None,
        "rules": {r: RULE_NAMES[r] for r in RULES},
        "tasks": results,
        "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    write_text(out / "results.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    from instructprotein.evaluate.report import write_report

    write_report(summary, out, plots=plots)
    return summary


def _prepare(
    spec: TaskSpec,
    td: TaskData,
    tokenizer: Any,
    ctx_len: int,
    side: _HomologySide | None,
    retrieval: bool,
    max_residues: int | None = None,
) -> dict[str, Any]:
    """Prompts (token ids), candidates and grouping keys of a task's items."""
    from instructprotein.evaluate.scoring import encode_candidates

    items = td.items
    if spec.kind in ("design", "rank"):  # design: generate_designs samples; rank: evaluate.rank scores
        return {"keys": [], "seconds": {}}
    if spec.kind == "describe":  # with retrieval, the homologs' GO terms, as the describe command gives them
        longest = spec.max_new_tokens
    else:
        cands = list(spec.candidates)
        cand_ids = encode_candidates(tokenizer, cands)
        longest = max(map(len, cand_ids))
    contexts = None
    if retrieval:
        assert side is not None
        contexts = evidence_blocks(spec, items, side, top_k=RETRIEVAL_TOP_K)
    prompt_ids, seqs_read, cut_info, texts = build_prompts(
        spec, items, tokenizer, ctx_len, longest, contexts, max_residues=max_residues
    )
    if contexts is not None:
        contexts = cut_info.pop("evidence")  # the blocks the prompts kept
    else:
        cut_info.pop("evidence")
    if spec.kind == "describe":
        return {"texts": texts, "read": seqs_read, "cut": cut_info, "keys": [], "seconds": {}, "contexts": contexts}
    keys = [
        hashlib.blake2b(np.asarray(p, dtype=np.int64).tobytes() + repr(cands).encode(), digest_size=16).digest()
        for p in prompt_ids
    ]
    return {
        "candidates": cands,
        "candidate_ids": cand_ids,
        "prompt_ids": prompt_ids,
        "read": seqs_read,
        "keys": keys,
        "cut": cut_info,
        "seconds": {},
        "contexts": contexts,
    }


def _score_all(model: Any, prepared: dict[str, dict[str, Any]], max_rows: int, progress: Progress) -> None:
    """Score every distinct (prompt, candidates) of every task once, prompts grouped by the sequence read.

    Adds ``scores`` (per item), ``prompts_scored`` / ``prompts_reused`` and ``seconds["model"]``
    (each group's time shared among its prompts by rows, charged to the task that asked first).
    """
    from instructprotein.evaluate.scoring import score_token_groups

    entries: dict[bytes, tuple[str, int]] = {}  # key -> (task, item index) of its first occurrence
    for name, p in prepared.items():
        p["prompts_scored"] = 0
        p["seconds"]["model"] = 0.0
        for n, k in enumerate(p["keys"]):
            if k not in entries:
                entries[k] = (name, n)
                p["prompts_scored"] += 1
        p["prompts_reused"] = len(p["keys"]) - p["prompts_scored"]
    order = list(entries.items())
    prompt_ids = [prepared[t]["prompt_ids"][n] for _, (t, n) in order]
    cand_ids = [prepared[t]["candidate_ids"] for _, (t, n) in order]
    names = [prepared[t]["candidates"] for _, (t, n) in order]
    groups = [prepared[t]["read"][n] for _, (t, n) in order]
    ids = [f"{t}#{n}" for _, (t, n) in order]
    proteins = len(set(groups))

    with progress.step(f"score {len(order):,} prompts about {proteins:,} proteins", total=len(order)) as bar:

        def charge(members: list[int], seconds: float) -> None:
            rows = sum(len(cand_ids[m]) for m in members)
            for m in members:
                task = order[m][1][0]
                prepared[task]["seconds"]["model"] += seconds * len(cand_ids[m]) / rows
            bar.advance(len(members))

        scored = score_token_groups(
            model, prompt_ids, cand_ids, groups, ids=ids, candidates=names, max_rows=max_rows, on_group=charge
        )
    by_key = {k: s for (k, _), s in zip(order, scored)}
    for p in prepared.values():
        p["scores"] = [by_key[k] for k in p["keys"]]
        p["seconds"]["model"] = round(p["seconds"]["model"], 2)


def _generate(
    spec: TaskSpec, model: Any, tokenizer: Any, prep: dict[str, Any], progress: Progress, batch: int = 8
) -> None:
    """Greedy answers of a describe task (batched, left-padded), into ``prep["answers"]``."""
    from instructprotein.infer.generate import generate_answers

    t0 = time.perf_counter()
    texts = prep["texts"]
    answers: list[str] = []
    with progress.step(f"{spec.name}: generate {len(texts):,} answers", total=len(texts)) as bar:
        for i in range(0, len(texts), batch):
            chunk = texts[i : i + batch]
            answers += generate_answers(model, tokenizer, chunk, max_new_tokens=spec.max_new_tokens)
            bar.advance(len(chunk))
    prep["answers"] = answers
    prep["seconds"]["model"] = round(time.perf_counter() - t0, 2)
    prep["prompts_scored"] = len(texts)
    prep["prompts_reused"] = 0


def _finish(
    spec: TaskSpec,
    td: TaskData,
    prep: dict[str, Any],
    side: _HomologySide | None,
    homology: bool,
    seed: int,
    pred_dir: Path,
    *,
    alone: dict[str, Any] | None = None,
    combination: Any = None,
) -> dict[str, Any]:
    from instructprotein.evaluate.system import class_probabilities, system_probabilities

    items = td.items
    cands = prep["candidates"]
    scores = prep["scores"]
    seqs_read = prep["read"]
    true = [i.label for i in items]
    model_res: dict[str, Any] = {}
    per_item: dict[str, Any] = {}
    for rule in RULES:
        probs = class_probabilities(spec, cands, scores, rule)
        best = [s.best(rule) for s in scores]
        pred = [spec.candidates[cands[b]] for b in best]
        ties = sum(1 for s, b in zip(scores, best) if sum(1 for x in s.scores(rule) if x == s.scores(rule)[b]) > 1)
        r = summarise(spec, true, pred, probs, seed=seed)
        r["ties"] = ties
        model_res[rule] = r
        per_item[rule] = (pred, probs)
    if model_res["first_token"]["ties"]:
        model_res["first_token"]["tie_note"] = (
            "candidates that share their first token tie under the first-token rule; the first in the task's "
            "candidate order wins"
        )

    # what the sequence alone gives, and the system's answer (model + homologs, fit on validation)
    extra: dict[str, Any] = {}
    alone_probs = class_probabilities(spec, cands, alone["scores"], "sum") if alone is not None else None
    if alone_probs is not None:
        pred = [spec.classes[j] for j in alone_probs.argmax(axis=1)]
        extra["model_alone"] = summarise(spec, true, pred, alone_probs, seed=seed)
        per_item["model_alone"] = (pred, alone_probs)
    weights = combination.get(spec.combine.kind) if (combination is not None and spec.combine) else None
    if weights is not None and side is not None and spec.homology is not None and weights.classes == spec.classes:
        sys_probs = system_probabilities(weights, spec, per_item["sum"][1], alone_probs, _evidence(spec, items, side))
        pred = [spec.classes[j] for j in sys_probs.argmax(axis=1)]
        r = summarise(spec, true, pred, sys_probs, seed=seed)
        r.update({"kind": weights.kind, "weights": weights.weights, "alpha": weights.alpha, "fit": weights.fit})
        extra["system"] = r
        per_item["system"] = (pred, sys_probs)

    # baselines
    base: dict[str, Any] = {}
    train_labels = [i.label for i in td.train] if td.train else None
    maj_from = "train" if train_labels else "test"
    fallback = majority_class(train_labels or true, spec.classes)
    if spec.majority:
        r = summarise(spec, true, [fallback] * len(items), None)
        r.update({"class": fallback, "source": maj_from})
        base["majority"] = r
    baseline_preds: dict[str, list[str]] = {}
    if spec.composition and td.train:
        key = hashlib.blake2b(
            repr(([i.sequence for i in td.train], [i.label for i in td.train], spec.classes, seed)).encode(),
            digest_size=16,
        ).digest()
        if key not in _COMPOSITION:
            _COMPOSITION.clear()  # one at a time: tasks sharing a train split come in a row
            _COMPOSITION[key] = CompositionModel(
                [i.sequence for i in td.train], [i.label for i in td.train], spec.classes, seed=seed
            )
        comp = _COMPOSITION[key]
        pred, probs = comp.predict([i.sequence for i in items])
        r = summarise(spec, true, pred, probs, seed=seed)
        r.pop("calibration", None)
        r.update(comp.info)
        base["composition"] = r
        baseline_preds["composition"] = pred
    if spec.term_frequency and side is not None and spec.positive is not None:
        tf = TermFrequency(side.kg, side.exclude)
        freq = np.array([tf(str(i.term)) for i in items], dtype=float)
        y = np.array([x == spec.positive for x in true])
        acc, thr = stats.best_threshold_accuracy(freq, y)
        lo, hi = stats.wilson(round(acc * len(items)), len(items))
        base["term_frequency"] = {
            "accuracy": acc,
            "ci95": [lo, hi],
            "n": len(items),
            "threshold": thr,
            "threshold_note": "threshold chosen on the test items themselves (an upper bound)",
            "aupr": stats.average_precision(freq, y),
            "aupr_ci95": list(stats.bootstrap_average_precision(freq, y, seed=seed)),
            "excluded_proteins": len(side.exclude),
        }
    if homology and spec.homology is not None and side is not None:
        h = _homology_baseline(spec, items, side, fallback)
        covered = np.array(h["covered"], dtype=bool)
        for kind in ("best", "vote"):
            r = summarise(spec, true, h[kind], None)
            r["coverage"] = float(covered.mean()) if len(covered) else float("nan")
            r["covered"] = int(covered.sum())
            r["fallback"] = f"majority class ({fallback}, from {maj_from})"
            if covered.any():
                sub = [a == b for a, b, c in zip(true, h[kind], covered) if c]
                r["accuracy_covered"] = stats.accuracy_summary(sub)
            if kind == "vote":
                r["k"] = spec.homology.k
            base[f"homology_{kind}"] = r
            baseline_preds[f"homology_{kind}"] = h[kind]
        ids = [x for x in h["identity"] if x is not None]
        base["homology_best"]["median_identity"] = float(np.median(ids)) if ids else None

    # predictions file
    rows = []
    for n, item in enumerate(items):
        row: dict[str, Any] = {"id": item.id, "label": item.label}
        if item.term:
            row["term"] = item.term
        if item.term_name:
            row["term_name"] = item.term_name
        row["residues_read"] = len(seqs_read[n])
        if prep.get("contexts") is not None:
            row["evidence"] = prep["contexts"][n]
        for rule in (*RULES, "model_alone", "system"):
            if rule not in per_item:
                continue
            pred, probs = per_item[rule]
            row[rule] = {
                "prediction": pred[n],
                "probabilities": {c: round(float(p), 5) for c, p in zip(spec.classes, probs[n])},
            }
        for k, v in baseline_preds.items():
            row[k] = v[n]
        rows.append(row)
    write_predictions(pred_dir, spec, rows)

    return {
        **entry_head(spec, td, prep),
        **extra,
        "model": model_res,
        "baselines": base,
        "paper": spec.paper,
        "prompts_scored": prep["prompts_scored"],
        "prompts_reused": prep["prompts_reused"],
        "seconds": dict(prep["seconds"]),
    }
