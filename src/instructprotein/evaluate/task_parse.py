"""Checking a task mapping into a :class:`~instructprotein.evaluate.task_spec.TaskSpec`.

Every rule of the task format (documented in :mod:`instructprotein.evaluate.tasks`) that a
schema cannot say lives here, so a bad task file fails with one line naming the file before any
data is read or any model runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError
from instructprotein.evaluate.task_files import _include
from instructprotein.evaluate.task_schema import (
    _check_shape,
    _CutKeys,
    _SamplingKeys,
    _TaskKeys,
)
from instructprotein.evaluate.task_spec import Combine, HomologyRule, Source, TaskSpec

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
