"""The shape of a task file: which keys exist at each level and their types (pydantic models,
unknown keys refused). What the values mean together (a label among the candidates, a rule that
fits the format) is checked by :func:`~instructprotein.evaluate.tasks.parse_task`; errors here
name the file and the dotted key in the task's own words.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from instructprotein.errors import InputError

DESIGN_SAMPLING = {
    "per_request": 2,
    "temperature": 1.0,
    "top_p": 0.95,
    "min_len": 30,
    "max_len": 300,
    "seed": 0,
    "strategy": "exemplar",
    "candidates": 2,
    "mutation_rate": 0.4,
}
"""How a design task samples, unless its ``sampling:`` says otherwise; ``max_len`` is further
capped by what the model's context leaves after the request. ``strategy``: ``exemplar``
(training proteins carrying the requested terms, ``mutation_rate`` of their residues rewritten
by the model; requests no training protein carries fall back to sampling) or ``sample`` (from
the request alone); ``candidates``: per design kept, this many are generated and the model's
own verification picks (:func:`~instructprotein.infer.exemplars.request_gain`)."""

# -- the file's shape: which keys exist at each level and their types (pydantic); what the values
# -- mean together (a label among the candidates, a rule that fits the format) is checked in parse_task


class _Keys(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class _SourceKeys(_Keys):
    path: Any = None
    packaged: Any = None
    heldout: Any = None
    aspect: Any = None
    split: Any = None
    proteins: Any = None
    candidates: Any = None


class _DataKeys(_Keys):
    test: str | _SourceKeys | None = None
    train: str | _SourceKeys | None = None
    train_note: Any = None
    format: Any = None
    sequence_field: Any = None
    label_field: Any = None
    term_field: Any = None
    terms_field: Any = None
    term_names: Any = None
    descriptions: Any = None


class _PromptKeys(_Keys):
    question: Any = None
    prefix: Any = None
    template: Any = None


class _HomologyKeys(_Keys):
    rule: Any = None
    term: Any = None
    yes: Any = None
    no: Any = None
    class_of: Any = None
    k: int = 5


class _BaselineKeys(_Keys):
    chance: Any = None  # rank tasks
    majority: Any = None
    composition: Any = None
    term_frequency: Any = None
    homology: bool | _HomologyKeys | None = None


class _CutKeys(_Keys):
    above: int = 1024
    keep: int = 1000


class _EvidenceKeys(_Keys):
    term: Any = None


class _SamplingKeys(_Keys):
    per_request: int = DESIGN_SAMPLING["per_request"]
    temperature: float = DESIGN_SAMPLING["temperature"]
    top_p: float = DESIGN_SAMPLING["top_p"]
    min_len: int = DESIGN_SAMPLING["min_len"]
    max_len: int = DESIGN_SAMPLING["max_len"]
    seed: int = DESIGN_SAMPLING["seed"]
    strategy: str = DESIGN_SAMPLING["strategy"]
    candidates: int = DESIGN_SAMPLING["candidates"]
    mutation_rate: float = DESIGN_SAMPLING["mutation_rate"]


class _TaskKeys(_Keys):
    name: Any = None
    version: int = 1
    description: Any = None
    kind: Any = None
    data: _DataKeys | None = None
    prompt: str | _PromptKeys | None = None
    candidates: Any = None
    labels: Any = None
    positive: Any = None
    metrics: Any = None
    cut: _CutKeys | None = None
    baselines: _BaselineKeys | None = None
    paper: Any = None
    notes: Any = None
    max_new_tokens: int | None = None
    go_aspect: Any = None
    evidence: str | _EvidenceKeys | None = None
    sampling: _SamplingKeys | None = None
    combine: Any = None
    request: Any = None


def _check_shape(d: dict[str, Any], path: Path | None) -> _TaskKeys:
    """Keys and types of a task mapping, as one error naming the file and the key."""
    try:
        return _TaskKeys.model_validate(d)
    except ValidationError as exc:
        raise _shape_error(exc, d, path) from None


def _shape_error(exc: ValidationError, d: dict[str, Any], path: Path | None) -> InputError:
    """pydantic's complaint in the task's own words: the dotted key (union member tags dropped)."""

    def keys(loc: tuple[Any, ...]) -> list[str]:
        out, node = [], d
        for part in loc:
            if isinstance(node, dict) and part in node:
                out.append(str(part))
                node = node[part]
        return out

    errors = exc.errors()
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        parent = keys(extra[0]["loc"])[:-1]
        names = sorted({keys(e["loc"])[-1] for e in extra if keys(e["loc"])[:-1] == parent})
        model: Any = _TaskKeys
        for part in parent:
            inner = model.model_fields[part].annotation
            model = next(a for a in (*typing.get_args(inner), inner) if isinstance(a, type) and issubclass(a, _Keys))
        allowed = ", ".join(sorted(model.model_fields))
        return InputError(
            f"unknown key(s) in {'.'.join(parent) or 'the task'}: {', '.join(names)}; allowed: {allowed}", path
        )
    worst = max(errors, key=lambda e: len(keys(e["loc"])))
    key = ".".join(keys(worst["loc"])) or str(worst["loc"][0])
    return InputError(f"{key}: {worst['msg'][0].lower()}{worst['msg'][1:]}, got {worst.get('input')!r}", path)
