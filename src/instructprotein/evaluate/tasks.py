"""Evaluation tasks as declarative files, and the registry of built-in ones.

A task is one YAML (or JSON) file, in the spirit of lm-evaluation-harness: which data, how
to ask, which answers the model chooses among, what the data's labels mean, how to score,
and which baselines to run beside the model. The built-in tasks live in
``instructprotein/evaluate/tasks/*.yaml``; a user adds one by writing such a file next to a
JSON-lines or TSV file of their own and passing the file's path wherever a task name goes.
No code.

A complete example (every key; only ``name``, ``data.test``, ``prompt`` and
``candidates`` are required)::

    name: enzyme                       # letters, digits, _ and - only
    version: 1                         # raise it when a change makes old scores incomparable
    include: base.yaml                 # optional: a task file (relative to this one) whose keys this
                                       # file extends; mappings merge key by key, the rest is replaced
    description: Is the protein an enzyme? (my data)
    data:
      test: enzyme_test.jsonl          # a path (relative to this file), or
                                       # {packaged: metal_ion_binding_test} (a set shipped with the package), or
                                       # {heldout: location | metal | go, aspect: F, proteins: 1000}  (our
                                       # held-out split; proteins: a seeded sample, default 1000, null: all)
      train: enzyme_train.jsonl        # optional: majority class and composition baseline learn from it
      format: labelled                 # labelled (default) or go_pairs (the paper's *.lm.json GO shape)
      sequence_field: sequence         # JSON lines: where the sequence and the label are
      label_field: label
      term_field: null                 # JSON lines: a per-item term that fills {term} in the prompt
      term_names: kg+go_sqlite         # go_pairs: GO names from the graph, else GO.sqlite (or: kg only)
    prompt:
      question: Is this protein an enzyme?       # {term} is filled per item where there is one
      prefix: Based on the record, the answer is # the answer's fixed start; the candidate follows it
      # or, instead of question + prefix, a whole template:
      # template: "{protein}Instruction: Is this protein an enzyme?\\n\\nOutput: The answer is"
    candidates: [" no", " yes"]        # the continuations scored, each written as it follows the prompt
                                       # (leading space included); or a mapping candidate -> class
    labels: {0: "no", 1: "yes"}        # data label -> class; default: the label is the class name
    positive: "yes"                    # two-class tasks: the class whose probability AUPR ranks
    metrics: [accuracy, aupr]          # accuracy is always computed
    cut: {above: 1024, keep: 1000}     # the paper's rule; null: never cut (the model's context still applies)
    baselines:
      majority: true
      composition: true                # needs data.train
      term_frequency: false            # GO yes/no only: how often the term is annotated in the graph
      homology: {rule: carries_term, term: GO:0003824}  # or rule: location | item_term; or null
    paper: {accuracy: 70.79}           # numbers reported in the paper (percent), shown beside ours
    evidence: general                  # with retrieval, what the homolog block says: general (their GO
                                       # terms), location (their locations), term (whether they carry
                                       # the item's {term}), or {term: GO:0046872} (a fixed term);
                                       # default: term when the prompt has {term}, else general

A second kind of task generates text instead of choosing (``kind: describe``; the built-in
``heldout_describe``): no candidates; ``data.label_field`` names the reference text (default
``reference``) and ``data.terms_field`` the item's true GO ids; ``max_new_tokens``,
``go_aspect`` (F / P / C / null), ``metrics`` among ``bleu``, ``rouge_l``, ``go``, and
baselines ``homology: {rule: go_terms}`` and ``term_frequency`` (CAFA's naive predictor)::

    name: my_describe
    kind: describe
    data: {test: described.jsonl, terms_field: go}     # {"sequence", "reference", "go": [...]}
    prompt: {question: "What is the function of this protein?"}
    max_new_tokens: 48

A third kind writes proteins (``kind: design``; the built-in ``heldout_design``): each item is a
request (``data.label_field``, default ``request``: a description or a whole instruction, as the
``design`` command takes it), the GO ids it asks for (``data.terms_field``, default ``terms``)
and optionally the natural protein it came from (``sequence``); ``sampling`` sets
``per_request``, ``temperature``, ``top_p``, ``min_len``, ``max_len``, ``seed``; ``metrics``
among ``validity``, ``novelty``, ``diversity``, ``consistency`` (the closest training protein
carries the request) and ``describe`` (the model's own description gives it back)::

    name: my_design
    kind: design
    data: {test: requests.jsonl}      # {"request": "binds zinc ion", "terms": ["GO:0008270"]}
    sampling: {per_request: 4, max_len: 200}

``sampling`` also sets ``strategy`` (``exemplar``, default: training proteins carrying the
requested terms rewritten by the model at ``mutation_rate``; ``sample``: from the request
alone) and ``candidates`` (generated per design kept; the model's own verification picks).

A fourth kind ranks requests for a protein (``kind: rank``; :mod:`.rank`; the built-in
``heldout_design_rank`` and the paper's ``scope_{family,superfamily,fold}_rank``): each item
is a protein and candidate requests, scored by the mean log-probability of the protein's
residues after each (the paper's rule; the sum too); ``data.format`` ``candidates`` (JSON
lines ``{"sequence", "requests": [...], "answer": 0}``), ``scope`` (the paper's ``*.lm.json``
with ``data.descriptions``: SCOPe's ``dir.des`` file, ``scope_des`` for the one given to
``evaluate --scope-des``, and ``request: "... {description}"``) or ``{heldout: design_rank,
candidates: 10}``; ``baselines`` ``chance`` and ``homology`` (GO candidates)::

    name: my_rank
    kind: rank
    data: {test: ranked.jsonl}

Prompts are the paper's format, ``{protein}Instruction: {question}\\n\\nOutput: {prefix}``,
built by :func:`~instructprotein.prompt.build_prompt` (no trailing space; each
candidate brings its own). Every problem in a task file is an
:class:`~instructprotein.errors.InputError` naming the file, raised when the task is loaded,
before any data is read or any model runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from instructprotein.errors import InputError
from instructprotein.evaluate.task_schema import (  # noqa: F401 (DESIGN_SAMPLING re-exported)
    DESIGN_SAMPLING,
    _check_shape,
    _CutKeys,
    _SamplingKeys,
    _TaskKeys,
)

TASK_SUFFIXES = (".yaml", ".yml", ".json")
FORMATS = ("labelled", "go_pairs")
HELDOUT_KINDS = ("location", "metal", "membrane", "go", "describe", "design", "design_rank")
METRICS = ("accuracy", "aupr")
HOMOLOGY_RULES = ("location", "carries_term", "item_term", "go_terms")
_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_GO_ID = re.compile(r"GO:\d{7}")

_DATA_KEYS = {
    "test",
    "train",
    "train_note",
    "format",
    "sequence_field",
    "label_field",
    "term_field",
    "terms_field",
    "term_names",
    "descriptions",
}
TERM_NAMES = ("kg", "kg+go_sqlite")
KINDS = ("choice", "describe", "design", "rank")
DESCRIBE_METRICS = ("bleu", "rouge_l", "go")
DESIGN_METRICS = ("validity", "novelty", "diversity", "consistency", "describe")
_SOURCE_KEYS = {"path", "packaged", "heldout", "aspect", "split", "proteins", "candidates"}
HELDOUT_PROTEINS = 1000
"""Held-out test proteins a task keeps by default (a seeded sample of those the task can use):
the test split of the full graph holds 24,000, whose GO items alone would be 260,000."""


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


_COMBINE_KEYS = {"kind", "validation"}


def _combine(value: Any, path: Path | None) -> Combine | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("combine must be a mapping {kind: NAME, validation: {heldout: ...}}", path)
    _unknown(value, _COMBINE_KEYS, "combine", path)
    kind = value.get("kind")
    if not isinstance(kind, str) or not _NAME.fullmatch(kind):
        raise InputError(f"combine.kind must be a name (letters, digits, '_', '-'), got {kind!r}", path)
    raw = value.get("validation")
    if not isinstance(raw, dict) or not raw.get("heldout"):
        raise InputError("combine.validation must be a held-out source, e.g. {heldout: location}", path)
    source = _source({"split": "valid", **raw}, "combine.validation", path)
    if source.split != "valid":
        raise InputError(f"combine.validation.split must be valid (weights are never fit on {source.split!r})", path)
    return Combine(kind, source)


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


# -- loading ------------------------------------------------------------------------------------------


def builtin_dir() -> Path:
    return Path(str(resources.files("instructprotein.evaluate") / "tasks"))


def builtin_tasks() -> dict[str, Path]:
    """Built-in task name -> file (a file whose name starts with ``_`` is only for ``include:``)."""
    folder = builtin_dir()
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in TASK_SUFFIXES and not p.name.startswith("_")}


def list_tasks() -> list[tuple[str, str]]:
    """(name, description) of every built-in task, sorted by name."""
    out = []
    for name, path in builtin_tasks().items():
        out.append((name, load_task(path).description))
    return out


def load_task(name_or_path: str | Path) -> TaskSpec:
    """A built-in task by name, or a task file by path (``.yaml``, ``.yml`` or ``.json``)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in TASK_SUFFIXES or "/" in text or path.is_file():
        if path.is_dir():
            raise InputError("is a directory, expected a task file (.yaml, .yml or .json)", path)
        if not path.is_file():
            raise InputError("no such task file", path)
        return parse_task(_read(path), path)
    known = builtin_tasks()
    if text not in known:
        raise InputError(f"unknown task {text!r}; built-in tasks: {', '.join(known)} (or give the path of a task file)")
    return parse_task(_read(known[text]), known[text])


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


def _unknown(d: dict[str, Any], allowed: set[str], where: str, path: Path | None) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise InputError(f"unknown key(s) in {where}: {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}", path)


def _source(value: Any, what: str, path: Path | None) -> Source:
    base = path.parent if path is not None else Path.cwd()
    if isinstance(value, str):
        if not value.strip():
            raise InputError(f"data.{what} is empty", path)
        p = Path(value).expanduser()
        return Source(path=p if p.is_absolute() else (base / p))
    if not isinstance(value, dict):
        raise InputError(f"data.{what} must be a file path or a mapping (path / packaged / heldout)", path)
    kinds = [k for k in ("path", "packaged", "heldout") if value.get(k)]
    if len(kinds) != 1:
        raise InputError(f"data.{what} needs exactly one of path, packaged, heldout", path)
    if "path" in kinds:
        p = Path(str(value["path"])).expanduser()
        return Source(path=p if p.is_absolute() else (base / p))
    if "packaged" in kinds:
        return Source(packaged=str(value["packaged"]))
    kind = str(value["heldout"])
    if kind not in HELDOUT_KINDS:
        raise InputError(f"data.{what}.heldout must be one of {', '.join(HELDOUT_KINDS)}, got {kind!r}", path)
    aspect = value.get("aspect")
    if kind == "go" and aspect not in ("F", "P", "C"):
        raise InputError(f"data.{what}: heldout go needs aspect F, P or C", path)
    split = str(value.get("split", "test"))
    if split not in ("train", "valid", "test"):
        raise InputError(f"data.{what}.split must be train, valid or test, got {split!r}", path)
    proteins = value.get("proteins", HELDOUT_PROTEINS if split != "train" else None)
    if proteins is not None and (not isinstance(proteins, int) or isinstance(proteins, bool) or proteins < 1):
        raise InputError(f"data.{what}.proteins must be a positive integer or null (all), got {proteins!r}", path)
    candidates = value.get("candidates", 10)
    if "candidates" in value and kind != "design_rank":
        raise InputError(f"data.{what}.candidates is for heldout design_rank", path)
    if not isinstance(candidates, int) or isinstance(candidates, bool) or not 2 <= candidates <= 100:
        raise InputError(f"data.{what}.candidates must be an integer from 2 to 100, got {candidates!r}", path)
    return Source(heldout=kind, aspect=aspect, split=split, proteins=proteins, candidates=candidates)


EVIDENCE_KINDS = ("general", "location", "term")


def _evidence(value: Any, has_term_slot: bool, path: Path | None) -> tuple[str, str | None]:
    """``evidence:`` -> (kind, fixed GO id or None)."""
    if value is None:
        return ("term" if has_term_slot else "general"), None
    if isinstance(value, dict):
        term = str(value.get("term") or "")
        if not _GO_ID.fullmatch(term):
            raise InputError(f"evidence.term must be a GO id (GO:0046872), got {term!r}", path)
        return "term", term
    kind = str(value)
    if kind not in EVIDENCE_KINDS:
        raise InputError(f"evidence must be one of {', '.join(EVIDENCE_KINDS)} or {{term: GO:...}}, got {kind!r}", path)
    if kind == "term" and not has_term_slot:
        raise InputError("evidence: term needs a {term} slot in the prompt (or give {term: GO:...})", path)
    return kind, None


def parse_task(d: dict[str, Any], path: Path | None = None) -> TaskSpec:
    """Validate a task mapping (as read from a file) into a :class:`TaskSpec`."""
    d = _include(d, path)
    shape = _check_shape(d, path)
    kind = str(d.get("kind") or "choice")
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", path)
    required = {
        "choice": ("name", "data", "prompt", "candidates"),
        "describe": ("name", "data", "prompt"),
        "design": ("name", "data"),
        "rank": ("name", "data"),
    }[kind]
    for key in required:
        if key not in d or d[key] in (None, "", [], {}):
            raise InputError(f"missing required field {key!r}", path)
    if kind == "describe":
        return _parse_describe(d, path, shape)
    if kind == "design":
        return _parse_design(d, path, shape)
    if kind == "rank":
        from instructprotein.evaluate.rank import parse_rank

        return parse_rank(d, path)
    name = str(d["name"])
    if not _NAME.fullmatch(name):
        raise InputError(f"name {name!r}: use letters, digits, '_' and '-' only", path)

    data = d["data"]
    if not isinstance(data, dict):
        raise InputError("data must be a mapping with at least 'test'", path)
    if not data.get("test"):
        raise InputError("missing required field 'data.test'", path)
    test = _source(data["test"], "test", path)
    train = _source(data["train"], "train", path) if data.get("train") else None
    fmt = str(data.get("format") or ("go_pairs" if test.heldout == "go" else "labelled"))
    if fmt not in FORMATS:
        raise InputError(f"data.format must be one of {', '.join(FORMATS)}, got {fmt!r}", path)

    prompt = d["prompt"]
    if isinstance(prompt, str):
        prompt = {"template": prompt}
    if not isinstance(prompt, dict):
        raise InputError("prompt must be a mapping (question + prefix, or template)", path)
    template = prompt.get("template")
    question = prompt.get("question")
    prefix = str(prompt.get("prefix") or "").rstrip()
    if bool(template) == bool(question):
        raise InputError("prompt needs either 'question' (with an optional 'prefix') or 'template', not both", path)
    if template is not None:
        template = str(template)
        if "{protein}" not in template:
            raise InputError("prompt.template must contain {protein}", path)
        if prefix:
            raise InputError("prompt.prefix goes with prompt.question; put it inside the template instead", path)
    text = template or str(question)
    slots = set(re.findall(r"\{(\w*)\}", text))
    bad = slots - {"protein", "term"}
    if bad:
        raise InputError(
            f"prompt has unknown slot(s) {', '.join('{' + s + '}' for s in sorted(bad))}; "
            "only {protein} and {term}",
            path,
        )
    if question is not None and "{protein}" in question:
        raise InputError("prompt.question must not contain {protein}: the protein comes first by itself", path)

    cands = d["candidates"]
    if isinstance(cands, list):
        candidates = {str(c): str(c).strip() for c in cands}
        if len(candidates) != len(cands):
            raise InputError("candidates repeat", path)
    elif isinstance(cands, dict):
        candidates = {str(k): str(v).strip() for k, v in cands.items()}
    else:
        raise InputError("candidates must be a list of continuations or a mapping continuation -> class", path)
    if len(candidates) < 2:
        raise InputError("at least two candidates are needed", path)
    for c, cls in candidates.items():
        if not c.strip():
            raise InputError(f"candidate {c!r} is empty", path)
        if not cls:
            raise InputError(f"candidate {c!r} maps to an empty class", path)
    classes = list(dict.fromkeys(candidates.values()))
    if len(classes) < 2:
        raise InputError("the candidates name fewer than two classes", path)

    labels_raw = d.get("labels")
    labels: dict[str, str] | None = None
    if labels_raw is not None:
        if not isinstance(labels_raw, dict) or not labels_raw:
            raise InputError("labels must be a mapping data label -> class", path)
        labels = {_label_key(k): str(v).strip() for k, v in labels_raw.items()}
        wrong = sorted({v for v in labels.values() if v not in classes})
        if wrong:
            raise InputError(
                f"labels map to {', '.join(map(repr, wrong))}, not among the candidates' classes "
                f"({', '.join(map(repr, classes))})",
                path,
            )
    if fmt == "go_pairs":
        labels = labels or {"true": "yes", "false": "no"}
        for key in ("true", "false"):
            if key not in labels:
                raise InputError("a go_pairs task's labels must map true and false (positive / negative terms)", path)
        if "{term}" not in text:
            raise InputError("a go_pairs task's prompt needs a {term} slot for the GO term's name", path)

    term_names = str(data.get("term_names") or "kg+go_sqlite")
    if term_names not in TERM_NAMES:
        raise InputError(f"data.term_names must be one of {', '.join(TERM_NAMES)}, got {term_names!r}", path)

    positive = d.get("positive")
    if positive is not None:
        positive = str(positive).strip()
        if positive not in classes:
            raise InputError(f"positive {positive!r} is not a class of the candidates ({', '.join(classes)})", path)
    elif fmt == "go_pairs" and "yes" in classes:
        positive = "yes"

    metrics = d.get("metrics") or ["accuracy"]
    if not isinstance(metrics, list) or any(m not in METRICS for m in metrics):
        raise InputError(f"metrics must be a list of {', '.join(METRICS)}, got {metrics!r}", path)
    metrics = list(dict.fromkeys(["accuracy", *metrics]))
    if "aupr" in metrics and (positive is None or len(classes) != 2):
        raise InputError("metric aupr needs two classes and 'positive' naming the one it ranks", path)

    cut_above, keep = _cut(d, shape, path)

    b = d.get("baselines") or {}
    if not isinstance(b, dict):
        raise InputError("baselines must be a mapping", path)
    composition = bool(b.get("composition", train is not None))
    if composition and train is None:
        raise InputError("baselines.composition needs data.train to learn from", path)
    term_frequency = bool(b.get("term_frequency", fmt == "go_pairs"))
    if term_frequency and fmt != "go_pairs":
        raise InputError("baselines.term_frequency is for go_pairs tasks (GO terms with graph frequencies)", path)
    homology = _homology(b.get("homology"), classes, fmt, path)

    paper = d.get("paper") or {}
    if not isinstance(paper, dict) or any(not isinstance(v, int | float) for v in paper.values()):
        raise InputError("paper must map a metric name to a number (percent)", path)
    evidence, evidence_term = _evidence(d.get("evidence"), "{term}" in text, path)

    return TaskSpec(
        name=name,
        description=str(d.get("description") or name),
        test=test,
        train=train,
        train_note=str(data["train_note"]) if data.get("train_note") else None,
        format=fmt,
        sequence_field=str(data.get("sequence_field") or "sequence"),
        label_field=str(data.get("label_field") or "label"),
        term_field=str(data["term_field"]) if data.get("term_field") else None,
        question=str(question) if question is not None else None,
        prefix=prefix,
        template=template,
        candidates=candidates,
        classes=classes,
        labels=labels,
        positive=positive,
        metrics=metrics,
        cut_above=cut_above,
        keep=keep,
        majority=bool(b.get("majority", True)),
        composition=composition,
        term_frequency=term_frequency,
        homology=homology,
        paper={str(k): float(v) for k, v in paper.items()},
        notes=str(d["notes"]) if d.get("notes") else None,
        source=path,
        raw=json.loads(json.dumps(d, default=str)),
        version=shape.version,
        term_names=term_names,
        evidence=evidence,
        evidence_term=evidence_term,
        combine=_combine(d.get("combine"), path),
    )


def _label_key(value: Any) -> str:
    """Data labels compare as text: 0 and "0" are the same label, True is "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _cut(d: dict[str, Any], shape: _TaskKeys, path: Path | None) -> tuple[int | None, int]:
    """``cut:`` -> (cut proteins longer than this or None, residues kept); absent: the paper's rule."""
    if "cut" in d and shape.cut is None:
        return None, 1000
    cut = shape.cut or _CutKeys()
    if cut.keep <= 0 or cut.above <= 0 or cut.keep > cut.above:
        raise InputError("cut needs 0 < keep <= above", path)
    return cut.above, cut.keep


label_key = _label_key


def _homology(value: Any, classes: list[str], fmt: str, path: Path | None) -> HomologyRule | None:
    if value in (None, False):
        return None
    if not isinstance(value, dict):
        raise InputError("baselines.homology must be a mapping with a 'rule' (or null)", path)
    rule = value.get("rule")
    if rule not in HOMOLOGY_RULES:
        raise InputError(f"baselines.homology.rule must be one of {', '.join(HOMOLOGY_RULES)}, got {rule!r}", path)
    k = int(value.get("k", 5))
    if k < 1:
        raise InputError("baselines.homology.k must be positive", path)
    if rule == "location":
        from instructprotein.instruct.compartments import ANCHORS

        class_of = value.get("class_of")
        if class_of is not None:
            if not isinstance(class_of, dict):
                raise InputError("baselines.homology.class_of must map DeepLoc classes to task classes", path)
            class_of = {str(a): str(c) for a, c in class_of.items()}
            missing = sorted(set(ANCHORS) - set(class_of))
            if missing:
                raise InputError(f"baselines.homology.class_of misses {', '.join(missing)}", path)
            wrong = sorted({c for c in class_of.values() if c not in classes})
        else:
            wrong = sorted(set(ANCHORS) - set(classes))
        if wrong:
            raise InputError(f"homology rule 'location' gives class(es) {', '.join(wrong)} not among the task's", path)
        return HomologyRule("location", class_of=class_of, k=k)
    yes, no = str(value.get("yes", "yes")), str(value.get("no", "no"))
    for c in (yes, no):
        if c not in classes:
            raise InputError(f"baselines.homology: class {c!r} is not among the task's ({', '.join(classes)})", path)
    if rule == "carries_term":
        term = str(value.get("term") or "")
        if not _GO_ID.fullmatch(term):
            raise InputError("baselines.homology rule carries_term needs term: GO:nnnnnnn", path)
        return HomologyRule("carries_term", term=term, yes=yes, no=no, k=k)
    if fmt != "go_pairs":
        raise InputError("homology rule item_term is for go_pairs tasks", path)
    return HomologyRule("item_term", yes=yes, no=no, k=k)


def _generation_head(
    d: dict[str, Any], path: Path | None, kind: str, allowed: tuple[str, ...]
) -> tuple[str, dict[str, Any], Source, list[str]]:
    """Name, data, test source and metrics of a task that generates (describe, design): the
    checks both kinds share."""
    name = str(d["name"])
    if not _NAME.fullmatch(name):
        raise InputError(f"name {name!r}: use letters, digits, '_' and '-' only", path)
    for key in ("candidates", "labels", "positive"):
        if key in d:
            raise InputError(f"{key!r} is for choice tasks; a {kind} task generates its answer", path)
    data = d["data"]
    if not isinstance(data, dict) or not data.get("test"):
        raise InputError("missing required field 'data.test'", path)
    test = _source(data["test"], "test", path)
    if test.heldout and test.heldout != kind:
        raise InputError(f"a {kind} task's held-out source is {{heldout: {kind}}}", path)
    metrics = d.get("metrics") or list(allowed)
    if not isinstance(metrics, list) or any(m not in allowed for m in metrics):
        raise InputError(f"a {kind} task's metrics are {', '.join(allowed)}, got {metrics!r}", path)
    return name, data, test, list(metrics)


def _max_new_tokens(shape: _TaskKeys, default: int, path: Path | None) -> int:
    max_new = default if shape.max_new_tokens is None else shape.max_new_tokens
    if not 1 <= max_new <= 2048:
        raise InputError("max_new_tokens must be between 1 and 2048", path)
    return max_new


def _parse_describe(d: dict[str, Any], path: Path | None, shape: _TaskKeys) -> TaskSpec:
    """A generation task: the model answers a question, scored against reference texts and GO terms."""
    name, data, test, metrics = _generation_head(d, path, "describe", DESCRIBE_METRICS)
    prompt = d["prompt"]
    if not isinstance(prompt, dict) or not prompt.get("question") or prompt.get("template"):
        raise InputError("a describe task's prompt needs 'question' (and an optional 'prefix')", path)
    max_new = _max_new_tokens(shape, 64, path)
    aspect = d.get("go_aspect", "F")
    if aspect not in ("F", "P", "C", None):
        raise InputError("go_aspect must be F, P, C or null (all)", path)
    b = d.get("baselines") or {}
    if not isinstance(b, dict):
        raise InputError("baselines must be a mapping", path)
    _unknown(b, {"homology", "term_frequency"}, "baselines (describe)", path)
    homology = None
    if b.get("homology"):
        h = b["homology"]
        if not isinstance(h, dict) or h.get("rule") != "go_terms":
            raise InputError("a describe task's homology baseline is {rule: go_terms}", path)
        homology = HomologyRule("go_terms", k=int(h.get("k", 5)))
    cut_above, keep = _cut(d, shape, path)
    terms_field = str(data["terms_field"]) if data.get("terms_field") else None
    if "go" in metrics and not test.heldout and not terms_field:
        raise InputError("metric go needs data.terms_field (each item's true GO ids)", path)
    return TaskSpec(
        name=name,
        description=str(d.get("description") or name),
        test=test,
        train=None,
        train_note=None,
        format="describe",
        sequence_field=str(data.get("sequence_field") or "sequence"),
        label_field=str(data.get("label_field") or "reference"),
        term_field=None,
        question=str(prompt["question"]),
        prefix=str(prompt.get("prefix") or "").rstrip(),
        template=None,
        candidates={},
        classes=[],
        labels=None,
        positive=None,
        metrics=list(metrics),
        cut_above=cut_above,
        keep=keep,
        majority=False,
        composition=False,
        term_frequency=bool(b.get("term_frequency", "go" in metrics)),
        homology=homology,
        paper={str(k): float(v) for k, v in (d.get("paper") or {}).items()},
        notes=str(d["notes"]) if d.get("notes") else None,
        source=path,
        raw=json.loads(json.dumps(d, default=str)),
        kind="describe",
        version=shape.version,
        max_new_tokens=max_new,
        go_aspect=aspect,
        terms_field=terms_field,
        combine=_combine(d.get("combine"), path),
    )


def _parse_design(d: dict[str, Any], path: Path | None, shape: _TaskKeys) -> TaskSpec:
    """A design task: the model writes proteins for text requests, scored by their checks, their
    closest training proteins and its own description of them."""
    for key in ("prompt", "baselines", "evidence", "go_aspect"):
        if key in d:
            raise InputError(f"{key!r} is not a key of a design task (its request is each item's own text)", path)
    name, data, test, metrics = _generation_head(d, path, "design", DESIGN_METRICS)
    sampling: dict[str, Any] = (shape.sampling or _SamplingKeys()).model_dump()
    if not 1 <= sampling["per_request"] <= 64:
        raise InputError("sampling.per_request must be between 1 and 64", path)
    if not 0 < sampling["temperature"] <= 10 or not 0 < sampling["top_p"] <= 1:
        raise InputError("sampling.temperature must be in (0, 10] and sampling.top_p in (0, 1]", path)
    if not 1 <= sampling["min_len"] <= sampling["max_len"]:
        raise InputError("sampling needs 1 <= min_len <= max_len", path)
    if sampling["strategy"] not in ("exemplar", "sample"):
        raise InputError(f"sampling.strategy must be exemplar or sample, got {sampling['strategy']!r}", path)
    if not 1 <= sampling["candidates"] <= 16 or not 0 < sampling["mutation_rate"] < 1:
        raise InputError("sampling.candidates must be between 1 and 16 and sampling.mutation_rate in (0, 1)", path)
    max_new = _max_new_tokens(shape, 32, path)
    terms_field = str(data.get("terms_field") or "terms")
    return TaskSpec(
        name=name,
        description=str(d.get("description") or name),
        test=test,
        train=None,
        train_note=None,
        format="design",
        sequence_field=str(data.get("sequence_field") or "sequence"),
        label_field=str(data.get("label_field") or "request"),
        term_field=None,
        question=None,
        prefix="",
        template=None,
        candidates={},
        classes=[],
        labels=None,
        positive=None,
        metrics=list(metrics),
        cut_above=None,
        keep=1000,
        majority=False,
        composition=False,
        term_frequency=False,
        homology=None,
        paper={str(k): float(v) for k, v in (d.get("paper") or {}).items()},
        notes=str(d["notes"]) if d.get("notes") else None,
        source=path,
        raw=json.loads(json.dumps(d, default=str)),
        kind="design",
        version=shape.version,
        max_new_tokens=max_new,
        go_aspect=None,
        terms_field=terms_field,
        sampling=sampling,
    )
