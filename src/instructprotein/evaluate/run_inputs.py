"""What a run reads before the model: the task files, the knowledge graph(s), the decontamination
list, the held-out split and every task's items.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`) so that every error in the inputs
surfaces here, before the model is loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructprotein.errors import InputError
from instructprotein.evaluate.data import TaskData, load_task_data
from instructprotein.evaluate.tasks import TaskSpec, load_task
from instructprotein.progress import Progress

if TYPE_CHECKING:
    from instructprotein.evaluate.heldout import HeldOut
    from instructprotein.kg.store import KnowledgeGraph

DEFAULT_MAX_IDENTITY = 0.7


@dataclass
class RunInputs:
    """The graphs and lists a run's tasks and baselines read, as :func:`open_inputs` resolved them."""

    heldout: HeldOut | None
    kg: KnowledgeGraph | None
    decontamination_dir: str | Path | None
    decon_info: dict[str, Any]
    removed: frozenset[str]
    decon_parameters: dict[str, Any]
    max_identity: float

    def kg_for(self, spec: TaskSpec) -> KnowledgeGraph | None:
        """The graph a task reads its GO term names from: the split's for a held-out task."""
        return self.heldout.kg if (spec.test.heldout and self.heldout is not None) else self.kg


def load_specs(tasks: Sequence[str | Path | TaskSpec], limit: int | None) -> list[TaskSpec]:
    """Every task file loaded and checked (none given, one given twice, a limit below 1 are errors)."""
    specs = [t if isinstance(t, TaskSpec) else load_task(t) for t in tasks]
    if not specs:
        raise InputError("no task given; list them with `instructprotein evaluate --list`")
    names = [s.name for s in specs]
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise InputError(f"task(s) given twice: {', '.join(dup)}")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be positive, got {limit}")
    return specs


def open_inputs(
    out: Path,
    *,
    kg: str | Path | None,
    decontamination_dir: str | Path | None,
    instructions_dir: str | Path | None,
    max_identity: float | None,
) -> RunInputs:
    """The held-out split, the training graph, the decontamination list (default: the instruction
    set's) and the identity above which homology hits are dropped (default: the decontamination's)."""
    from instructprotein.kg.store import KnowledgeGraph

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
    decon_parameters: dict[str, Any] = {}
    decon_identity = None
    if decontamination_dir is not None:
        from instructprotein.instruct.decontaminate import Decontamination

        dec = Decontamination.load(decontamination_dir)
        decon_parameters = dec.parameters
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
    return RunInputs(heldout, kg_obj, decontamination_dir, decon_info, removed, decon_parameters, max_identity)


def read_task_data(
    specs: Sequence[TaskSpec],
    src: RunInputs,
    *,
    limit: int | None,
    seed: int,
    progress: Progress,
    task_limits: Mapping[str, int] | None = None,
) -> dict[str, TaskData]:
    """Every task's items, labels mapped to its classes (all of it before the model);
    ``task_limits`` caps named tasks below ``limit``."""
    heldout, kg_obj = src.heldout, src.kg
    data: dict[str, TaskData] = {}
    with progress.step("read the tasks' data", total=len(specs)) as bar:
        for spec in specs:
            if spec.needs_kg and kg_obj is None:
                raise InputError(f"task {spec.name} needs a knowledge graph for GO term names (give kg=...)")
            kg_for = heldout.kg if (spec.test.heldout and heldout is not None) else kg_obj
            caps = [c for c in (limit, (task_limits or {}).get(spec.name)) if c is not None]
            data[spec.name] = load_task_data(spec, kg=kg_for, heldout=heldout, limit=min(caps, default=None), seed=seed)
            bar.advance()
    return data
