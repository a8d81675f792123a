"""Which of the system's combination weights a run reuses from the model folder and which it fits
now, on which validation items.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`): deciding this is one phase of a
run; the fitting itself is :func:`~instructprotein.evaluate.system._fit_combination`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructprotein.errors import InputError
from instructprotein.evaluate import system as sysm
from instructprotein.evaluate.data import TaskData, load_task_data
from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.progress import Progress

if TYPE_CHECKING:
    from instructprotein.evaluate.heldout import HeldOut


@dataclass
class CombinationPlan:
    """The stored weights still usable (or None), the fingerprint a fit must match, the kinds the
    run's tasks combine, what ``results.json`` says of it, and the validation tasks to fit now."""

    stored: Any
    want: dict[str, Any]
    kinds: set[str]
    info: dict[str, Any]
    fit_specs: list[TaskSpec]


def validation_twins(specs: Sequence[TaskSpec], retrieval: bool) -> dict[str, TaskSpec]:
    """The system's answer: each combined task's validation twin, to fit its kind's weights on."""
    twins: dict[str, TaskSpec] = {}
    if retrieval:
        for spec in specs:
            if (
                spec.combine is not None
                and spec.homology is not None
                and spec.combine.kind not in {t.combine.kind for t in twins.values() if t.combine}
            ):
                twins[sysm.VALID_PREFIX + spec.combine.kind] = spec
    return twins


def plan_combination(
    twins: dict[str, TaskSpec],
    mpath: Path,
    minfo: dict[str, Any],
    instructions_dir: str | Path | None,
    heldout: HeldOut | None,
    data: dict[str, TaskData],
    *,
    seed: int,
    progress: Progress,
) -> CombinationPlan:
    """What to reuse and what to fit; the validation items of the kinds to fit are added to ``data``."""
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
    return CombinationPlan(stored, want, kinds, combination_info, fit_specs)
