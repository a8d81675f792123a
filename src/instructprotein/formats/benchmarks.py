"""Readers of the InstructProtein paper's benchmark files, and of any file of the same shapes.

Three shapes (see ``instructprotein/data/benchmarks/README.md``):

- classification JSON lines (DeepLoc subcellular / binary): ``{"sequence", "label", "label_name"}``,
  ``label`` an integer class (a string label is accepted too), ``label_name`` optional;
- classification TSV (metal ion binding): ``sequence TAB label`` with no header line in the
  paper's files; a first line whose first column is a column name (``sequence``, ``seq``, ...)
  is taken for a header and skipped, since users' own exports often carry one;
- GO yes/no JSON lines: ``{"sequence", "label": [positive GO ids], "negative_labels": [...]}``,
  every (protein, term) pair one yes/no item.

The evaluation must run any file of these shapes, not only the paper's, so every reader
validates what it takes and names file and line on failure (:class:`InputError`): a line that
is not JSON, a missing or mistyped field, an empty sequence, a residue that is not a letter,
a GO id that is not ``GO:nnnnnnn``, a term both positive and negative. Residues are
upper-cased (``X``, ``U``, ``B``, ``Z``, ``O`` occur in the real files and are kept). Files may
be gzip-compressed. An empty file yields no records; counting them is the caller's business.

:func:`benchmark_sequences` gives every sequence of any of these files as a
:class:`SequenceRecord` with id ``{file stem}:{line}``, the input decontamination searches
the training data against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError, SkipLog, report
from instructprotein.formats.records import SequenceRecord
from instructprotein.formats.textio import numbered_lines

__all__ = [
    "GoPairs",
    "LabelledSequence",
    "benchmark_files",
    "benchmark_kind",
    "benchmark_sequences",
    "numbered_jsonl",
    "read_go_pairs",
    "read_jsonl",
    "read_labelled_sequences",
]

_GO_ID = re.compile(r"GO:\d{7}")
_INT = re.compile(r"[+-]?\d+")
# First-column names that mark a TSV header line (compared case-insensitively).
_TSV_HEADER_NAMES = frozenset({"sequence", "seq", "sequences", "protein", "protein_sequence", "aa_seq", "primary"})
JSONL_SUFFIXES = (".jsonl", ".json")  # JSON *lines* either way: one object a line
TSV_SUFFIXES = (".tsv",)


@dataclass(slots=True)
class LabelledSequence:
    """One classification item: a sequence and its class."""

    sequence: str
    label: int | str
    label_name: str | None  # None where the file has no names (the TSV shape)
    line: int


@dataclass(slots=True)
class GoPairs:
    """One protein of a GO yes/no set with its positive and negative terms."""

    sequence: str
    positives: list[str]
    negatives: list[str]
    line: int

    @property
    def pairs(self) -> list[tuple[str, bool]]:
        """(GO id, answer is yes) for every item of this protein, positives first."""
        return [(t, True) for t in self.positives] + [(t, False) for t in self.negatives]


# -- generic ------------------------------------------------------------------------------------


def _stem(path: Path) -> str:
    """File name without ``.gz`` and its format suffix: ``go_mf_test.jsonl.gz`` -> ``go_mf_test``."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return Path(name).stem


def benchmark_kind(path: str | Path) -> str:
    """``"jsonl"`` or ``"tsv"`` by the file's suffix (a ``.gz`` after it is allowed)."""
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in TSV_SUFFIXES:
        return "tsv"
    raise InputError(f"unknown benchmark file type {suffix or '(no suffix)'!r}; expected .jsonl or .tsv", path)


def numbered_jsonl(
    path: str | Path, required: Iterable[str] = (), skip: SkipLog | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON lines file.

    Blank lines are passed over (a trailing one is common); a line that is not a JSON object,
    or lacks one of ``required``, is an :class:`InputError` at that line (or, with ``skip``,
    logged and passed over).
    """
    required = tuple(required)
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report(InputError(f"not valid JSON: {exc.msg} at column {exc.colno}", path, lineno), skip)
            continue
        if not isinstance(obj, dict):
            report(InputError(f"expected a JSON object, got {type(obj).__name__}", path, lineno), skip)
            continue
        missing = [k for k in required if k not in obj]
        if missing:
            report(InputError(f"missing field(s) {', '.join(map(repr, missing))}", path, lineno), skip)
            continue
        yield lineno, obj


def read_jsonl(path: str | Path, required: Iterable[str] = (), skip: SkipLog | None = None) -> Iterator[dict[str, Any]]:
    """The objects of a JSON lines file; errors name the line (see :func:`numbered_jsonl`)."""
    for _, obj in numbered_jsonl(path, required, skip):
        yield obj


def _sequence(value: object, path: str | Path, line: int) -> str:
    """A validated, upper-cased sequence: letters only, not empty."""
    if not isinstance(value, str):
        raise InputError(f"sequence must be a string, got {type(value).__name__}", path, line)
    seq = value.strip()
    if not seq:
        raise InputError("empty sequence", path, line)
    if not (seq.isascii() and seq.isalpha()):
        bad = next(i for i, c in enumerate(seq) if not (c.isascii() and c.isalpha()))
        raise InputError(
            f"sequence has {seq[bad]!r} at position {bad + 1}; only residue letters are allowed", path, line
        )
    return seq.upper()


def _tsv_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the data lines of a TSV: blank lines and a header line left out."""
    first = True
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if first:
            first = False
            if fields[0].strip().lower() in _TSV_HEADER_NAMES:
                continue
        yield lineno, fields


# -- classification sets ----------------------------------------------------------------------


def _labelled_from_json(obj: dict[str, Any], path: str | Path, line: int) -> LabelledSequence:
    seq = _sequence(obj["sequence"], path, line)
    label = obj["label"]
    if isinstance(label, list):
        raise InputError("label is a list: a GO yes/no file? read it with read_go_pairs", path, line)
    if isinstance(label, bool) or not isinstance(label, int | str):
        raise InputError(f"label must be an integer or a string, got {json.dumps(label)}", path, line)
    if isinstance(label, str) and not label.strip():
        raise InputError("empty label", path, line)
    name = obj.get("label_name")
    if name is not None and not isinstance(name, str):
        raise InputError(f"label_name must be a string, got {json.dumps(name)}", path, line)
    return LabelledSequence(seq, label, name, line)


def _labelled_from_tsv(fields: list[str], path: str | Path, line: int) -> LabelledSequence:
    if len(fields) != 2:
        raise InputError(f"expected 2 tab-separated columns (sequence, label), found {len(fields)}", path, line)
    seq = _sequence(fields[0], path, line)
    raw = fields[1].strip()
    if not raw:
        raise InputError("empty label", path, line)
    label: int | str = int(raw) if _INT.fullmatch(raw) else raw
    return LabelledSequence(seq, label, None, line)


def read_labelled_sequences(path: str | Path, skip: SkipLog | None = None) -> list[LabelledSequence]:
    """Every item of a classification set (``.jsonl`` DeepLoc shape or ``.tsv`` metal-binding shape)."""
    path = Path(path)
    items: list[LabelledSequence] = []
    if benchmark_kind(path) == "tsv":
        for line, fields in _tsv_rows(path):
            try:
                items.append(_labelled_from_tsv(fields, path, line))
            except InputError as exc:
                report(exc, skip)
        return items
    for line, obj in numbered_jsonl(path, ("sequence", "label"), skip):
        try:
            items.append(_labelled_from_json(obj, path, line))
        except InputError as exc:
            report(exc, skip)
    return items


# -- GO yes/no sets ------------------------------------------------------------------------------


def _go_ids(value: object, what: str, path: str | Path, line: int) -> list[str]:
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list of GO ids, got {json.dumps(value)[:60]}", path, line)
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _GO_ID.fullmatch(item.strip()):
            raise InputError(f"{what} holds {json.dumps(item)}, not a GO id (GO:nnnnnnn)", path, line)
        ids.append(item.strip())
    return ids


def read_go_pairs(path: str | Path, skip: SkipLog | None = None) -> list[GoPairs]:
    """Every protein of a GO yes/no set (``label`` positives, ``negative_labels`` negatives).

    A term listed as both positive and negative is an error: the item would have no answer.
    """
    path = Path(path)
    if benchmark_kind(path) != "jsonl":
        raise InputError("GO yes/no sets are JSON lines (.jsonl)", path)
    proteins: list[GoPairs] = []
    for line, obj in numbered_jsonl(path, ("sequence", "label", "negative_labels"), skip):
        try:
            seq = _sequence(obj["sequence"], path, line)
            positives = _go_ids(obj["label"], "label", path, line)
            negatives = _go_ids(obj["negative_labels"], "negative_labels", path, line)
            both = sorted(set(positives) & set(negatives))
            if both:
                raise InputError(f"{', '.join(both)} both positive and negative", path, line)
        except InputError as exc:
            report(exc, skip)
            continue
        proteins.append(GoPairs(seq, positives, negatives, line))
    return proteins


# -- every sequence, for decontamination -------------------------------------------------------------


def benchmark_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, with each directory replaced by its ``.jsonl`` / ``.tsv`` files (sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for f in sorted(p.iterdir()):
                if not f.is_file():
                    continue
                try:
                    benchmark_kind(f)
                except InputError:
                    continue
                found.append(f)
            files.extend(found)
        else:
            files.append(p)
    return files


def benchmark_sequences(paths: Iterable[str | Path], skip: SkipLog | None = None) -> Iterator[SequenceRecord]:
    """Every sequence of the given benchmark files (or directories of them), any of the three shapes.

    Ids are ``{file stem}:{line}`` (``deeploc_subcellular_test:17``), so a hit found by the
    decontamination search points straight at the item. Only the sequence is read, so one
    function serves every shape, present and future; an empty file yields nothing.
    """
    for path in benchmark_files(paths):
        stem = _stem(path)
        if benchmark_kind(path) == "tsv":
            rows: Iterator[tuple[int, object]] = ((line, fields[0]) for line, fields in _tsv_rows(path))
        else:
            rows = ((line, obj["sequence"]) for line, obj in numbered_jsonl(path, ("sequence",), skip))
        for line, value in rows:
            try:
                seq = _sequence(value, path, line)
            except InputError as exc:
                report(exc, skip)
                continue
            yield SequenceRecord(id=f"{stem}:{line}", description="", sequence=seq, line=line)
