"""Finding and reading task files: the built-in folder, YAML / JSON parsing and ``include:``.

Reading is kept apart from checking (:mod:`.task_parse`) so that ``include:`` resolution is one
small piece both the loader and :func:`~instructprotein.evaluate.task_parse.parse_task` call.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from instructprotein.errors import InputError

TASK_SUFFIXES = (".yaml", ".yml", ".json")


def builtin_dir() -> Path:
    return Path(str(resources.files("instructprotein.evaluate") / "tasks"))


def builtin_tasks() -> dict[str, Path]:
    """Built-in task name -> file (a file whose name starts with ``_`` is only for ``include:``)."""
    folder = builtin_dir()
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in TASK_SUFFIXES and not p.name.startswith("_")}


def _read(path: Path) -> dict[str, Any]:
    return _include(_read_one(path), path)


def _include(data: dict[str, Any], path: Path | None, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """``include:`` resolved: the included file's keys first, this mapping's on top (mappings
    merged key by key), so variants of one task share one base file."""
    if "include" not in data:
        return data
    data = dict(data)
    include = data.pop("include")
    if not isinstance(include, str) or not include.strip():
        raise InputError(f"include must be the path of a task file, got {include!r}", path)
    base = ((path.parent if path is not None else Path.cwd()) / include).expanduser().resolve()
    here = path.resolve() if path is not None else None
    if base in seen or base == here:
        raise InputError(f"include: {include} refers back to itself", path)
    if not base.is_file():
        raise InputError(f"include: no such task file {include}", path)
    chain = (*seen, here) if here is not None else seen
    return _merge(_include(_read_one(base), base, chain), data)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_one(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the task file ({exc})", path) from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}", path) from None
    if not isinstance(data, dict):
        raise InputError("a task file must hold a mapping (name: ..., data: ..., prompt: ..., candidates: ...)", path)
    return data
