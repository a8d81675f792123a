"""The runner: tasks in, ``results.json`` + ``report.md`` + plots out, baselines beside the model.

:func:`evaluate` does, in this order (so every user error surfaces before the model runs):

1. load and validate every task file (:mod:`.tasks`, :func:`.run_inputs.load_specs`);
2. open the knowledge graph(s), the decontamination list and the held-out split, and read
   every task's items, mapping labels to classes (:mod:`.run_inputs`, :mod:`.data`, :mod:`.heldout`);
3. open the model and check it has the protein tokens; decide which of the system's
   combination weights are reused and which are fit (:mod:`.combination_plan`);
4. search every test sequence once against the training graph for the homology baselines
   (one MMseqs2 run per graph, decontaminated, :mod:`.homology_search`, :mod:`.baselines`);
5. per task: build the paper's prompts (the task's cut rule, then the prompt contract's fit
   to the model's context, :func:`~instructprotein.prompt.fit`, counted in the results;
   :mod:`.task_prompts`), score every candidate once with both rules (:mod:`.model_runs`,
   :mod:`.scoring`: first token, the paper's rule, and the full option's log-likelihood), and
   compute accuracy with its Wilson interval, AUPR with a bootstrap interval, per-class
   accuracy, confusion matrix, calibration; the baselines on the same items (:mod:`.choice_results`);
6. write ``results.json`` (every number with the exact task definition, model, seed,
   versions and settings behind it), ``predictions/{task}.jsonl``, ``report.md`` and the
   plots (:mod:`.report`).

Identical prompts are scored once per run (DeepLoc's binary test sequences are all in its
10-class test set, with the same prompt).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from instructprotein.atomic import write_text
from instructprotein.evaluate.choice_results import RULE_NAMES, RULES, _finish, summarise  # noqa: F401 (summarise: re-exported)
from instructprotein.evaluate.combination_plan import plan_combination, validation_twins
from instructprotein.evaluate.data import TaskData
from instructprotein.evaluate.homology_search import HomologySearch, search_homologs
from instructprotein.evaluate.homology_side import _homology_baseline  # noqa: F401 (re-exported)
from instructprotein.evaluate.model_runs import _score_all, run_generation
from instructprotein.evaluate.provenance import _sha256, check_protein_tokens, model_info, versions  # noqa: F401
from instructprotein.evaluate.run_inputs import DEFAULT_MAX_IDENTITY, RunInputs, load_specs, open_inputs, read_task_data  # noqa: F401
from instructprotein.evaluate.system import ALONE, _describe_system, _fit_combination
from instructprotein.evaluate.task_prompts import _prepare, build_prompts, prepare_prompts  # noqa: F401 (_prepare, build_prompts: re-exported)
from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.jsonable import json_default as _json_default
from instructprotein.progress import Progress

# -- evaluate ----------------------------------------------------------------------------------------------


def evaluate(
    model_path: str | Path,
    tasks: Sequence[str | Path | TaskSpec],
    *,
    out_dir: str | Path,
    limit: int | None = None,
    task_limits: Mapping[str, int] | None = None,
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
    ``task_limits``: a smaller cap for named tasks (the main job's on the paper's 22,256 GO-MF
    questions). ``threads``: torch threads while scoring (on a machine shared with other busy processes,
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
            task_limits=task_limits,
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
    task_limits: Mapping[str, int] | None,
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
    progress = progress or Progress()
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = load_specs(tasks, limit)

    # -- graphs, decontamination, held-out split; the data (all of it before the model) ----------------------
    src = open_inputs(
        out,
        kg=kg,
        decontamination_dir=decontamination_dir,
        instructions_dir=instructions_dir,
        max_identity=max_identity,
    )
    data = read_task_data(specs, src, limit=limit, seed=seed, progress=progress, task_limits=task_limits)
    twins = validation_twins(specs, retrieval)

    # -- the model, and which of the system's weights are reused and which are fit now ------------------------
    import torch

    from instructprotein.infer.classify import context_length, prompt_residues

    model, tokenizer, mpath = _load_model(model_path, device, progress)
    ctx_len, most = context_length(model), prompt_residues(model)
    minfo = model_info(mpath, model, tokenizer)
    plan = plan_combination(twins, mpath, minfo, instructions_dir, src.heldout, data, seed=seed, progress=progress)
    all_specs = specs + plan.fit_specs

    # -- homology: one search per graph ------------------------------------------------------------------------
    search = search_homologs(
        all_specs,
        data,
        src,
        homology=homology,
        retrieval=retrieval,
        sensitivity=sensitivity,
        max_seqs=max_seqs,
        progress=progress,
    )

    # -- prompts of every task, then one scoring pass over all of them ------------------------------------------
    prepared, verify_meta = prepare_prompts(
        all_specs, plan.fit_specs, data, tokenizer, ctx_len, most, search, retrieval
    )
    _score_all(model, prepared, max_rows, progress)
    combination = (
        _fit_combination(
            plan.fit_specs,
            data,
            prepared,
            search.sides,
            search.need_side,
            plan.stored,
            plan.want,
            mpath,
            plan.info,
            progress,
            verify_meta,
        )
        if plan.kinds
        else None
    )
    run_generation(specs, model, tokenizer, data, prepared, src, search, progress, max_rows=max_rows)

    # -- metrics and baselines per task, then results.json, report.md and the plots ------------------------------
    results = _finish_tasks(
        specs,
        data,
        prepared,
        src,
        search,
        verify_meta,
        combination,
        homology=homology,
        seed=seed,
        out=out,
        progress=progress,
    )
    kg_obj = src.kg
    summary = {
        "format": "instructprotein-evaluation/1",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": minfo,
        "seed": seed,
        "limit": limit,
        "task_limits": dict(task_limits) if task_limits else None,
        "retrieval": retrieval,
        "versions": versions(),
        "knowledge_graph": {"path": str(kg_obj.path), "content_hash": kg_obj.meta.get("content_hash")}
        if kg_obj
        else None,
        "instructions_dir": str(Path(instructions_dir).resolve()) if instructions_dir else None,
        "decontamination": src.decon_info,
        "homology": search.info,
        "combination": plan.info if plan.kinds else None,
        "rules": {r: RULE_NAMES[r] for r in RULES},
        "tasks": results,
        "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    write_text(out / "results.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    from instructprotein.evaluate.report import write_report

    write_report(summary, out, plots=plots)
    return summary


def _load_model(model_path: str | Path, device: str | None, progress: Progress) -> tuple[Any, Any, Path]:
    """The model (on ``device``, default the GPU if there is one, in eval mode), its tokenizer and folder."""
    import torch

    from instructprotein.model.factory import load_model_and_tokenizer

    mpath = Path(model_path).expanduser()
    with progress.step("load the model"):
        model, tokenizer = load_model_and_tokenizer(mpath)
        check_protein_tokens(tokenizer, model, mpath)
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(dev).eval()
    return model, tokenizer, mpath


def _finish_tasks(
    specs: Sequence[TaskSpec],
    data: dict[str, TaskData],
    prepared: dict[str, dict[str, Any]],
    src: RunInputs,
    search: HomologySearch,
    verify_meta: dict[str, Any],
    combination: Any,
    *,
    homology: bool,
    seed: int,
    out: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Each task's metrics and baselines, by its kind, and its ``predictions/{task}.jsonl``."""
    heldout, kg_obj = src.heldout, src.kg
    sides, need_side = search.sides, search.need_side
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
    return results
