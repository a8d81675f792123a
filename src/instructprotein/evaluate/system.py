"""The answer users get, evaluated: the model and its homologs combined, fit on validation items.

The runner scores three things for every choice task that declares ``combine:``: the model
with its homologs' block in the prompt (``model``), the model asked without it
(``model_alone``), and the homologs themselves (the homology baselines). This module turns
them into the system's answer (:mod:`instructprotein.infer.combine`), whose weights are fit
on the task's *validation* twin (the same prompt, candidates and homology rule, items from the
instruction set's ``valid`` split) and stored in the model folder, so that ``describe``,
``classify`` and the HTTP API answer exactly as the evaluation measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructprotein.evaluate.data import Item, TaskData
from instructprotein.evaluate.homology_side import _evidence, _HomologySide
from instructprotein.evaluate.tasks import TaskSpec, load_task
from instructprotein.infer.combine import Combination, Evidence, KindWeights, fit
from instructprotein.progress import Progress

VALID_PREFIX = "valid_"
READ_KINDS = ("location", "membrane", "metal")
"""Held-out kinds whose system also reads the sequence (:mod:`instructprotein.infer.reader`),
trained on the same kind's ``train`` split: one label per protein. GO yes/no questions ask
about a different term each time, which one composition model cannot answer."""


def class_probabilities(spec: TaskSpec, candidates: Sequence[str], scores: Sequence[Any], rule: str) -> np.ndarray:
    """Items x classes: each candidate's probability (over the candidates) added to its class."""
    class_idx = [spec.classes.index(spec.candidates[c]) for c in candidates]
    cand = np.array([s.probabilities(rule) for s in scores], dtype=float).reshape(len(scores), len(candidates))
    out = np.zeros((len(scores), len(spec.classes)))
    for j, ci in enumerate(class_idx):
        out[:, ci] += cand[:, j]
    return out


def validation_spec(spec: TaskSpec) -> TaskSpec:
    """The task's validation twin: its prompt, candidates and homology rule on held-out
    ``valid`` items; held-out labels (location words, yes / no) mapped to the task's classes
    through its candidates (" plasma membrane" -> membrane-bound)."""
    assert spec.combine is not None
    labels = {c.strip(): cls for c, cls in spec.candidates.items()}
    rule = spec.homology
    if rule is not None and rule.rule == "carries_term" and rule.yes and rule.no:  # yes / no items: the rule's classes
        labels.update({"yes": rule.yes, "no": rule.no})
    if spec.format == "go_pairs":
        labels = dict(spec.labels or {})
    valid = spec.combine.validation
    reads = valid.heldout in READ_KINDS and spec.format != "go_pairs"
    return dataclasses.replace(
        spec,
        name=VALID_PREFIX + spec.combine.kind,
        test=valid,
        train=dataclasses.replace(valid, split="train", proteins=None) if reads else None,
        labels=labels,
        majority=False,
        composition=False,
        term_frequency=False,
        paper={},
    )


def stored_kinds(spec: TaskSpec) -> set[str]:
    """The kinds a task's answers need: a describe task one per GO aspect (``describe_F`` ...)."""
    assert spec.combine is not None
    if spec.kind == "describe":
        return {f"{spec.combine.kind}_{a}" for a in ("F", "P", "C")}
    return {spec.combine.kind}


def fingerprint(model_info: dict[str, Any], instructions_dir: str | Path | None) -> dict[str, Any]:
    """What a stored combination was fit for: the model's weights, the instruction set's splits,
    the reader's features and the recipes compared (a different model, split, reader or set of
    recipes means a refit: weights fit before would otherwise be kept forever)."""
    from instructprotein.infer.combine import RECIPES
    from instructprotein.infer.reader import READER_FEATURES

    splits = Path(instructions_dir) / "splits" if instructions_dir else None
    digest = None
    if splits is not None and splits.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in splits.rglob("*") if p.is_file()):
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
        digest = h.hexdigest()
    return {
        "model_weights_sha256": (model_info.get("weights") or {}).get("sha256"),
        "splits": digest,
        "reader_features": READER_FEATURES,
        "recipes": ",".join(RECIPES),
    }


def usable(stored: Combination | None, kinds: set[str], want: dict[str, Any]) -> bool:
    """Whether a stored combination covers ``kinds`` and was fit for this model and split."""
    if stored is None or not kinds <= set(stored.kinds):
        return False
    got = stored.source.get("fingerprint", {})
    return all(got.get(k) == v for k, v in want.items() if v is not None)


def train_reader(spec: TaskSpec, train: Sequence[Item] | None, seed: int = 0) -> dict[str, Any] | None:
    """The kind's sequence reader, trained on its held-out ``train`` items (None without them)."""
    from instructprotein.evaluate.baselines import CompositionModel
    from instructprotein.infer.reader import READER_FEATURES, Reader

    items = [i for i in train or () if i.label in spec.classes]
    if len({i.label for i in items}) < 2:
        return None
    comp = CompositionModel(
        [i.sequence for i in items],
        [i.label for i in items],
        spec.classes,
        seed=seed,
        features=READER_FEATURES,
        criterion="log_loss",
    )
    present = [spec.classes[j] for j in comp.present]
    lr = comp.model
    return Reader(present, lr.mean, lr.scale, lr.w, READER_FEATURES).to_dict() | {"train": dict(comp.info)}


def with_reads(weights: KindWeights, items: Sequence[Item], evidence: Sequence[Evidence]) -> list[Evidence]:
    """``evidence`` with the kind's reading of each item's sequence attached (unchanged without a reader)."""
    if weights.reader is None:
        return list(evidence)
    reads = weights.read([i.sequence for i in items])
    return [dataclasses.replace(ev, read=r) for ev, r in zip(evidence, reads)]


def fit_kind(
    spec: TaskSpec,
    labels: Sequence[str],
    model: np.ndarray,
    alone: np.ndarray | None,
    evidence: Sequence[Evidence],
    items: Sequence[Item] | None = None,
    train: Sequence[Item] | None = None,
) -> KindWeights:
    """One kind's weights from its validation twin's scored items (and its reader, trained on
    ``train``, when the twin has train items)."""
    assert spec.combine is not None and spec.homology is not None
    reader = train_reader(spec, train) if (train and items is not None) else None
    if reader is not None:
        assert items is not None
        probe = KindWeights(spec.combine.kind, spec.classes, {}, 0.0, {}, reader=reader)
        evidence = with_reads(probe, items, evidence)
    questions = [(model[i], None if alone is None else alone[i], evidence[i], labels[i]) for i in range(len(labels))]
    kw = fit(spec.combine.kind, spec.classes, questions, k=spec.homology.k, reader=reader, select=True)
    kw.fit["validation"] = spec.test.describe()
    return kw


def system_probabilities(
    weights: KindWeights,
    spec: TaskSpec,
    model: np.ndarray,
    alone: np.ndarray | None,
    evidence: Sequence[Evidence],
    items: Sequence[Item] | None = None,
) -> np.ndarray:
    """Items x classes: the combined distribution of every item (``items``: their sequences,
    for a kind that reads them)."""
    if items is not None:
        evidence = with_reads(weights, items, evidence)
    return (
        np.stack(
            [
                weights.probabilities(model[i], None if alone is None else alone[i], evidence[i], spec.classes)
                for i in range(len(evidence))
            ]
        )
        if len(evidence)
        else np.zeros((0, len(spec.classes)))
    )


ALONE = "#alone"
"""Suffix of the prepared entry that asks a task's questions without the homologs' block."""


def _fit_combination(
    fit_specs: Sequence[TaskSpec],
    data: dict[str, TaskData],
    prepared: dict[str, dict[str, Any]],
    sides: dict[str, _HomologySide],
    need_side: dict[str, str],
    stored: Any,
    want: dict[str, Any],
    model_dir: Path,
    info: dict[str, Any],
    progress: Progress,
    verify_meta: dict[str, Any] | None = None,
) -> Any:
    """Fit every kind on its validation twin (or keep the stored fit) and store it in the model folder."""
    from instructprotein.errors import InputError as _InputError

    if not fit_specs:
        return stored
    combination = Combination(dict(stored.kinds) if stored is not None else {}, {"fingerprint": want})
    with progress.step(
        f"fit the system's combination ({len(fit_specs)} kinds, validation split)", total=len(fit_specs)
    ) as bar:
        for vs in fit_specs:
            assert vs.combine is not None
            prep, side = prepared.get(vs.name), sides.get(need_side.get(vs.name, ""))
            if side is None:
                continue
            items = data[vs.name].items
            if vs.kind == "describe":
                for kw in _fit_describe(vs, items, (verify_meta or {}).get(vs.name), prepared, info):
                    combination.kinds[kw.kind] = kw
                bar.advance()
                continue
            model = class_probabilities(vs, prep["candidates"], prep["scores"], "sum")
            alone_prep = prepared.get(vs.name + ALONE)
            alone = class_probabilities(vs, prep["candidates"], alone_prep["scores"], "sum") if alone_prep else None
            kind = vs.combine.kind
            try:
                kw = fit_kind(
                    vs, [i.label for i in items], model, alone, _evidence(vs, items, side), items, data[vs.name].train
                )
            except _InputError as exc:
                info.setdefault("skipped", {})[kind] = str(exc)
                continue
            combination.kinds[kind] = kw
            bar.advance()
    if not combination.kinds:
        info["source"] = "none: no kind could be fit (see skipped); answers are the model's own"
        return None
    try:
        combination.save(model_dir)
        info["source"] = "fit now on the validation split, stored in the model folder"
    except OSError as exc:
        info["source"] = f"fit now on the validation split (not stored: {exc})"
    info["fit"] = {k: v.fit for k, v in combination.kinds.items()}
    return combination


def _prepare_verification(
    spec: TaskSpec,
    items: Sequence[Item],
    side: _HomologySide,
    tokenizer: Any,
    ctx_len: int,
    most: int | None,
    prepared: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Per aspect: every (protein, candidate term) pair, and the prompts of those the model verifies
    (added to ``prepared`` as ``{task}#verify_{aspect}``, asked as the held-out GO yes/no tasks ask)."""
    from instructprotein.evaluate import verify as ver
    from instructprotein.evaluate.task_prompts import _prepare
    from instructprotein.formats.records import GO_ROOTS

    assert spec.homology is not None
    get = ver.aspect_lookup(side.kg)

    def name_of(term: str) -> str:
        try:
            return side.kg.entity(term).name
        except KeyError:
            return term

    meta: dict[str, Any] = {}
    for a in ver.ASPECTS:
        vspec = dataclasses.replace(load_task(ver.ASPECT_TASK[a]), name=f"{spec.name}#verify_{a}", combine=None)
        cands = ver.candidates(side, items, a, spec.homology.k, ver.frequent_terms(side.kg, a))
        truth = [{t for t in (i.terms or ()) if t not in GO_ROOTS and get(t) == a} for i in items]
        pairs = ver.pair_items(items, cands, name_of, truth)
        mask = ver.scored_mask(cands)
        scored = [p for p, m in zip(pairs, mask) if m]
        if scored:
            prepared[vspec.name] = _prepare(
                vspec, TaskData(scored, None, {}), tokenizer, ctx_len, side, True, max_residues=most
            )
        meta[a] = {
            "spec": vspec,
            "pairs": pairs,
            "mask": mask,
            "truth": truth,
            "votes": [v for c in cands for _, v in c],
            "evidence": _evidence(vspec, pairs, side),
        }
    return meta


def _verified_model(meta: dict[str, Any], prepared: dict[str, dict[str, Any]]) -> np.ndarray:
    """Pairs x [no, yes]: the model's verification (0.5 / 0.5 where it was not asked)."""
    from instructprotein.evaluate import verify as ver

    prep = prepared.get(meta["spec"].name)
    if prep is None:
        return np.full((len(meta["pairs"]), 2), 0.5)
    probs = class_probabilities(meta["spec"], prep["candidates"], prep["scores"], "sum")
    return ver.model_yes(meta["mask"], probs)


def _fit_describe(
    vs: TaskSpec,
    items: Sequence[Item],
    meta: dict[str, Any] | None,
    prepared: dict[str, dict[str, Any]],
    info: dict[str, Any],
) -> list[Any]:
    """The ``describe_{aspect}`` kinds, fit on the validation split's described proteins; each
    keeps the threshold of its best validation F-max (the terms ``describe`` names)."""
    from instructprotein.errors import InputError as _InputError
    from instructprotein.evaluate import verify as ver
    from instructprotein.infer.combine import fit

    out = []
    assert vs.homology is not None
    for a, m in (meta or {}).items():
        model = _verified_model(m, prepared)
        questions = [(model[i], None, m["evidence"][i], p.label) for i, p in enumerate(m["pairs"])]
        try:
            assert vs.combine is not None
            kw = fit(f"{vs.combine.kind}_{a}", ["no", "yes"], questions, k=vs.homology.k)
        except _InputError as exc:
            info.setdefault("skipped", {})[f"{vs.combine.kind if vs.combine else 'describe'}_{a}"] = str(exc)
            continue
        scores = [kw.probabilities(model[i], None, m["evidence"][i])[1] for i in range(len(m["pairs"]))]
        best = ver.fmax_threshold(m["pairs"], scores, items, m["truth"])
        vote = ver.fmax_threshold(m["pairs"], m["votes"], items, m["truth"])
        kw.fit.update(
            {
                "validation": vs.test.describe(),
                "threshold": best["threshold"],
                "f_max": round(best["f_max"], 4),
                "f_max_vote": round(vote["f_max"], 4),
            }
        )
        out.append(kw)
    return out


def _describe_system(
    spec: TaskSpec,
    items: Sequence[Item],
    meta: dict[str, Any] | None,
    prepared: dict[str, dict[str, Any]],
    combination: Any,
    side: _HomologySide | None,
) -> dict[str, Any] | None:
    """Per aspect: the system's ranked GO terms (F-max, pooled AUPR) beside the homology vote
    and the naive predictor on the same proteins; and each protein's confident terms."""
    from instructprotein.evaluate import verify as ver
    from instructprotein.evaluate.baselines import TermFrequency

    if not meta or combination is None or side is None:
        return None
    out: dict[str, Any] = {"aspects": {}, "terms": [{} for _ in items]}
    tf = TermFrequency(side.kg, side.exclude)
    n_train = max(1, side.kg.count("protein") - len(side.exclude))
    for a, m in meta.items():
        kw = combination.get(f"{spec.combine.kind}_{a}") if spec.combine else None
        if kw is None:
            continue
        model = _verified_model(m, prepared)
        scores = [float(kw.probabilities(model[i], None, m["evidence"][i])[1]) for i in range(len(m["pairs"]))]
        if not any(m["truth"]):
            continue
        sysr = ver.fmax_threshold(m["pairs"], scores, items, m["truth"])
        sysr["aupr_pooled"] = ver.pooled_aupr(m["pairs"], scores, m["truth"])
        thr = kw.fit.get("threshold") or 0.5
        at = ver.f1_at(m["pairs"], scores, items, m["truth"], thr)
        sysr["at_validation_threshold"] = {"threshold": thr, **at}
        vote = ver.fmax_threshold(m["pairs"], m["votes"], items, m["truth"])
        vote["aupr_pooled"] = ver.pooled_aupr(m["pairs"], m["votes"], m["truth"])
        top = ver.frequent_terms(side.kg, a, 300)
        naive_scores = {t: min(1.0, tf(t) / n_train) for t in top}
        naive = ver.naive_fmax(naive_scores, items, m["truth"])
        out["aspects"][a] = {
            "system": sysr,
            "homology_vote": vote,
            "naive": naive,
            "pairs": len(m["pairs"]),
            "verified_by_model": int(sum(m["mask"])),
        }
        ranked = ver.by_protein(m["pairs"], scores)
        for n, item in enumerate(items):
            got = sorted(((t, s) for t, s in ranked.get(item.id, {}).items() if s >= thr), key=lambda ts: -ts[1])
            out["terms"][n][a] = [(t, round(s, 3)) for t, s in got]
    return out
