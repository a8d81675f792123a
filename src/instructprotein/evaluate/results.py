"""The parts every task's results entry shares, whatever its kind (choice, describe, design):
what was asked of which data, and the per-item predictions file beside ``results.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructprotein.atomic import write_text
from instructprotein.evaluate.data import TaskData
from instructprotein.evaluate.tasks import TaskSpec


def entry_head(spec: TaskSpec, td: TaskData, prep: dict[str, Any]) -> dict[str, Any]:
    """The task's definition, its data and how prompts were cut: the first keys of its entry."""
    return {
        "task": spec.to_dict(),
        "description": spec.description,
        "notes": spec.notes,
        "data": td.info,
        "n": len(td.items),
        "cut": prep["cut"],
    }


def write_predictions(pred_dir: Path, spec: TaskSpec, rows: list[dict[str, Any]]) -> Path:
    """``pred_dir/{task}.jsonl``: one JSON object per item (or design), written atomically."""
    lines = [json.dumps(r) for r in rows]
    path = pred_dir / f"{spec.name}.jsonl"
    write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path
