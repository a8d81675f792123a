"""The main job's recipe: what ``instructprotein run`` builds, as a packaged YAML file.

The preset says how a model trains; the recipe says what the main job feeds it (how many
instructions, how much evidence, which task mix, how large a corpus). Data, not constants in
code, so a change to the main job is a reviewed change to one file, and the file is checked
like a preset: an unknown or mistyped key is an error naming the file and the key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from instructprotein.errors import InputError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstructionRecipe(_Section):
    n: int
    eval_fraction: float
    seed: int
    max_residues: int
    min_identity: float
    sensitivity: float
    split_identity: float
    split_linclust: bool
    shards: int
    workers: int
    evidence_fraction: float
    evidence_top_k: int
    task_weights: tuple[str, ...]


class CorpusRecipe(_Section):
    proteins: dict[str, int]
    chebi: bool
    max_residues: int
    shards: int
    seed: int


class MainRecipe(_Section):
    version: int
    instructions: InstructionRecipe
    corpus: CorpusRecipe


def recipe_path() -> Path:
    """The packaged recipe of the main job."""
    return Path(str(resources.files("instructprotein.cli") / "recipes" / "main.yaml"))


def load_recipe(path: Path | None = None) -> MainRecipe:
    """The recipe at ``path`` (default: the packaged one), checked."""
    path = path or recipe_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the recipe ({exc})", path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc})", path) from None
    try:
        return MainRecipe.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        key = ".".join(str(part) for part in first["loc"])
        what = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].lower()
        raise InputError(f"{key!r}: {what}", path) from None
