"""Data files shipped inside the package (the paper's benchmark test sets).

They are small (6 MB compressed) and needed offline by two stages: decontamination of the
training data and zero-shot evaluation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from instructprotein.errors import NotFoundError


def packaged_benchmarks() -> list[Path]:
    """Every packaged benchmark file, sorted by name."""
    folder = resources.files("instructprotein") / "data" / "benchmarks"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith((".jsonl.gz", ".tsv.gz")))


def packaged_rank_sets() -> list[Path]:
    """The paper's SCOPe design-ranking sets (``scope_fold_rank_*.lm.json.gz``). Not among
    :func:`packaged_benchmarks`: decontamination reads those, and these sets are scored by
    ranking requests for a given protein, not by what the model learned about the protein."""
    folder = resources.files("instructprotein") / "data" / "benchmarks"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".lm.json.gz"))


def packaged_benchmark(stem: str) -> Path:
    """One packaged file by its stem, e.g. ``deeploc_subcellular_test``."""
    for path in packaged_benchmarks() + packaged_rank_sets():
        if path.name.split(".")[0] == stem:
            return path
    known = ", ".join(p.name.split(".")[0] for p in packaged_benchmarks() + packaged_rank_sets())
    raise NotFoundError(f"no packaged benchmark {stem!r}; known: {known}")
