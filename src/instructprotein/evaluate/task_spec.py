"""What a loaded task is: its source of items, its homology rule and the validated :class:`TaskSpec`.

Kept apart from reading and checking task files so the modules that only use a task (data,
runner, report) depend on these types and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError


@dataclass(frozen=True)
class Source:
    """Where a task's items come from: a file, a packaged set, or our held-out split."""

    path: Path | None = None
    packaged: str | None = None
    heldout: str | None = None  # location | metal | go
    aspect: str | None = None  # heldout go: F / P / C
    split: str = "test"  # heldout: which split of the instruction set
    proteins: int | None = None  # heldout: at most this many proteins (a seeded sample); None: all
    candidates: int = 10  # heldout design_rank: requests per protein, the true one included (the paper's 10)

    def describe(self) -> str:
        if self.packaged:
            return f"packaged:{self.packaged}"
        if self.heldout:
            extra = f", aspect {self.aspect}" if self.aspect else ""
            extra += f", {self.proteins:,} proteins" if self.proteins else ""
            extra += f", {self.candidates} candidates" if self.heldout == "design_rank" else ""
            return f"heldout:{self.heldout} ({self.split} split{extra})"
        return str(self.path)

    def resolve(self) -> Path:
        """The file to read (packaged sets are found inside the package)."""
        if self.packaged:
            from instructprotein.sources.packaged import packaged_benchmark

            try:
                return packaged_benchmark(self.packaged)
            except KeyError as exc:
                raise InputError(str(exc).strip("'\"")) from None
        if self.path is None:
            raise ValueError("a held-out source has no file")
        return self.path


@dataclass(frozen=True)
class Combine:
    """How a choice task's system answer is made: the question kind whose combination weights
    it uses (:mod:`instructprotein.infer.combine`) and the validation items they are fit on
    (a held-out source of the instruction set's ``valid`` split, never a test set)."""

    kind: str
    validation: Source


@dataclass(frozen=True)
class HomologyRule:
    """How a homolog's annotations become a class of the task (see :mod:`.baselines`)."""

    rule: str  # location | carries_term | item_term
    term: str | None = None  # carries_term: the GO id
    yes: str = "yes"
    no: str = "no"
    class_of: dict[str, str] | None = None  # location: DeepLoc class -> task class (binary protocol)
    k: int = 5  # identity-weighted vote over the top k

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rule": self.rule, "k": self.k}
        if self.rule == "carries_term":
            d.update(term=self.term, yes=self.yes, no=self.no)
        if self.rule == "item_term":
            d.update(yes=self.yes, no=self.no)
        if self.class_of:
            d["class_of"] = dict(self.class_of)
        return d


@dataclass
class TaskSpec:
    """A loaded, validated task definition."""

    name: str
    description: str
    test: Source
    train: Source | None
    train_note: str | None
    format: str
    sequence_field: str
    label_field: str
    term_field: str | None
    question: str | None
    prefix: str
    template: str | None
    candidates: dict[str, str]  # continuation text -> class, in order
    classes: list[str]
    labels: dict[str, str] | None  # str(data label) -> class; None: the label is the class
    positive: str | None
    metrics: list[str]
    cut_above: int | None
    keep: int
    majority: bool
    composition: bool
    term_frequency: bool
    homology: HomologyRule | None
    paper: dict[str, float]
    notes: str | None
    source: Path | None
    raw: dict[str, Any] = field(default_factory=dict)
    kind: str = "choice"  # choice: score candidates; describe: generate text
    max_new_tokens: int = 64
    go_aspect: str | None = "F"  # describe: the aspect of GO terms compared
    terms_field: str | None = None  # describe, JSON lines: the reference GO ids
    term_names: str = "kg+go_sqlite"  # go_pairs: where GO names come from (the graph, then GO.sqlite)
    evidence: str = "general"  # retrieval block kind: general | location | term
    evidence_term: str | None = None  # evidence "term" with a fixed GO id (None: the item's term)
    sampling: dict[str, Any] = field(default_factory=dict)  # design: DESIGN_SAMPLING, overridden
    combine: Combine | None = None  # the system's answer: model and homologs combined, fit on validation
    version: int = 1  # the task definition's version: scores of different versions are not comparable
    request: str | None = None  # rank: the request template, {description} filled per candidate
    descriptions: str | None = None  # rank, format scope: the SCOPe des file (a path, or "scope_des": the user's)
    chance: bool = True  # rank: the chance baseline

    @property
    def uses_terms(self) -> bool:
        """Whether the prompt has a ``{term}`` slot (GO yes/no and user term tasks)."""
        return "{term}" in (self.template or self.question or "")

    @property
    def needs_kg(self) -> bool:
        return (
            self.format == "go_pairs"
            or (self.kind == "describe" and "go" in self.metrics)
            or self.kind == "design"
            or (self.kind == "rank" and self.format == "go_rank")
        )

    def class_index(self, name: str) -> int:
        return self.classes.index(name)

    def to_dict(self) -> dict[str, Any]:
        """The exact definition, for results.json: the file as written plus what it resolved to."""
        return {
            "name": self.name,
            "version": self.version,
            "file": str(self.source) if self.source else None,
            "definition": self.raw,
            "resolved": {
                "kind": self.kind,
                "test": self.test.describe(),
                "train": self.train.describe() if self.train else None,
                "format": self.format,
                "prompt": self.template or f"{{protein}}Instruction: {self.question}\\n\\nOutput: {self.prefix}",
                "candidates": dict(self.candidates),
                "classes": list(self.classes),
                "labels": dict(self.labels) if self.labels is not None else "identity",
                "positive": self.positive,
                "metrics": list(self.metrics),
                "cut": {"above": self.cut_above, "keep": self.keep} if self.cut_above is not None else None,
                "homology": self.homology.to_dict() if self.homology else None,
                "evidence": self.evidence + (f" ({self.evidence_term})" if self.evidence_term else ""),
                **(
                    {"max_new_tokens": self.max_new_tokens, "go_aspect": self.go_aspect}
                    if self.kind == "describe"
                    else {}
                ),
                **(
                    {"sampling": dict(self.sampling), "max_new_tokens": self.max_new_tokens}
                    if self.kind == "design"
                    else {}
                ),
            },
        }
