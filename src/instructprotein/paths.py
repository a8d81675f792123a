"""Where fetched data and pipeline outputs live by default.

The cache holds what ``data fetch`` unpacked (hundreds of MB, shared by every run); the
work directory holds one pipeline run's outputs (knowledge graph, datasets, models).
Both move with a flag or an environment variable, so a cluster job can point them at
scratch space without code changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "INSTRUCTPROTEIN_CACHE"
WORKDIR_ENV = "INSTRUCTPROTEIN_WORKDIR"


def cache_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("instructprotein"))


def work_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(WORKDIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path("instructprotein-work")


def default_kg_path(workdir: str | Path | None = None) -> Path:
    return work_dir(workdir) / "kg.sqlite"
