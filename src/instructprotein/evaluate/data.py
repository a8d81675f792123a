"""A task's items: sequences with their class (and, for term questions, the term).

Sources (see :class:`~instructprotein.evaluate.tasks.Source`): a packaged set of the paper,
a user's JSON-lines or TSV file, or our held-out split (:mod:`.heldout`). Every item's label
is mapped to one of the task's classes here, and a label that maps to none is an
:class:`~instructprotein.errors.InputError` naming file and line: raised while data is
loaded, before the model is opened.

Ids: ``{file stem}:{line}`` for files (the id decontamination uses for the same sequence),
the graph accession for held-out items; GO pairs add ``|GO:nnnnnnn``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructprotein.checksums import file_sha256
from instructprotein.errors import InputError
from instructprotein.evaluate.tasks import Source, TaskSpec, label_key
from instructprotein.formats.benchmarks import (
    _stem,
    benchmark_kind,
    numbered_jsonl,
    read_go_pairs,
    read_labelled_sequences,
)
from instructprotein.prompt.render import normalize_sequence

if TYPE_CHECKING:
    from instructprotein.evaluate.heldout import HeldOut
    from instructprotein.kg.store import KnowledgeGraph


@dataclass(slots=True)
class Item:
    """One question: a protein, its true class, and the term asked about (term tasks)."""

    id: str
    sequence: str
    label: str
    term: str | None = None  # GO id (go_pairs)
    term_name: str | None = None  # what fills {term}
    line: int | None = None
    accession: str | None = None  # held-out items: the graph protein
    terms: tuple[str, ...] | None = None  # describe: the protein's true GO ids; design: the requested ones;
    # rank: the candidates' keys (GO ids, SCOPe ids), the true one first
    requests: tuple[str, ...] | None = None  # rank: each candidate's request text, in the order of ``terms``


@dataclass
class TaskData:
    items: list[Item]
    train: list[Item] | None
    info: dict[str, Any] = field(default_factory=dict)


def _clean(seq: str, path: Path, line: int | None) -> str:
    try:
        return normalize_sequence(seq)
    except ValueError as exc:
        raise InputError(f"bad sequence: {exc}", path, line) from None


def _class_of(spec: TaskSpec, raw: Any, path: Path, line: int | None) -> str:
    key = label_key(raw)
    if spec.labels is None:
        if key in spec.classes:
            return key
        raise InputError(
            f"label {key!r} is not among the task's classes ({', '.join(map(repr, spec.classes))}); "
            "add a 'labels' mapping to the task file",
            path,
            line,
        )
    if key in spec.labels:
        return spec.labels[key]
    raise InputError(
        f"label {key!r} is not among the task's labels ({', '.join(map(repr, spec.labels))}) [task {spec.name}]",
        path,
        line,
    )


_GO_SQLITE: dict[str, tuple[str, str | None]] | None = None
_NAMESPACE = {"MF": "F", "BP": "P", "CC": "C"}


def _go_sqlite() -> dict[str, tuple[str, str | None]]:
    """GO id -> (name, aspect) from GO.db's GO.sqlite (GO release 2022-07-01) when the data cache
    has it: live, obsolete and secondary ids; empty when the cache lacks it (the report counts
    the terms left unnamed). A GO.sqlite that is there but unreadable is an error: questions
    would otherwise lose their GO names without a word."""
    global _GO_SQLITE
    if _GO_SQLITE is None:
        import sqlite3

        from instructprotein.sources.registry import resource_path

        out: dict[str, tuple[str, str | None]] = {}
        path = Path(resource_path("go-sqlite", must_exist=False))
        if path.is_file():
            try:
                con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                    for go_id, name, ont in con.execute("SELECT go_id, term, ontology FROM go_term"):
                        out[go_id] = (name, _NAMESPACE.get(ont))
                    if "go_obsolete" in tables:
                        for go_id, name, ont in con.execute("SELECT go_id, term, ontology FROM go_obsolete"):
                            out.setdefault(go_id, (name, _NAMESPACE.get(ont)))
                    for secondary, owner in con.execute(
                        "SELECT s.secondary, t.go_id FROM go_synonym s JOIN go_term t ON t._id = s._id"
                        " WHERE s.like_go_id = 1 AND s.secondary IS NOT NULL"
                    ):
                        if owner in out:
                            out.setdefault(secondary, out[owner])
                finally:
                    con.close()
            except sqlite3.Error as exc:
                raise InputError(
                    f"GO.sqlite cannot be read ({exc}); `instructprotein data fetch --force` fetches it again", path
                ) from None
        _GO_SQLITE = {k: v for k, v in out.items() if v[0]}
    return _GO_SQLITE


def go_sqlite_names() -> dict[str, str]:
    """GO id -> name from GO.sqlite (GO 2022) where the data cache has it, else empty. For GO
    yes/no sets whose terms are newer than the knowledge graph's GO: the model is asked about
    them by name; the graph's baselines know nothing of them (frequency 0, no homolog carries
    them, so a homolog annotated in the term's aspect says no)."""
    return {k: v[0] for k, v in _go_sqlite().items()}


def go_sqlite_aspect(term: str) -> str | None:
    """F / P / C of a GO id according to GO.sqlite, None if unknown there (or no GO.sqlite)."""
    entry = _go_sqlite().get(term)
    return entry[1] if entry else None


def _check_data_file(path: Path) -> None:
    if path.is_dir():
        raise InputError("is a directory, expected the task's data file", path)
    if not path.is_file():
        raise InputError("data file not found", path)


def read_file_items(spec: TaskSpec, path: Path, kg: KnowledgeGraph | None, counts: Counter) -> list[Item]:
    """Items of a data file in the task's format; labels mapped, sequences normalised."""
    _check_data_file(path)
    stem = _stem(path)
    items: list[Item] = []
    if spec.kind == "describe":
        if benchmark_kind(path) != "jsonl":
            raise InputError("a describe task reads JSON lines (sequence, reference text, optional GO ids)", path)
        required = [spec.sequence_field, spec.label_field] + ([spec.terms_field] if spec.terms_field else [])
        for line, obj in numbered_jsonl(path, required):
            seq, ref = obj[spec.sequence_field], obj[spec.label_field]
            if not isinstance(seq, str) or not seq.strip():
                raise InputError(f"{spec.sequence_field!r} must be a non-empty string", path, line)
            if not isinstance(ref, str) or not ref.strip():
                raise InputError(f"{spec.label_field!r} must be a non-empty reference text", path, line)
            terms = None
            if spec.terms_field:
                raw = obj[spec.terms_field]
                if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
                    raise InputError(f"{spec.terms_field!r} must be a list of GO ids", path, line)
                terms = tuple(t.strip() for t in raw)
            items.append(Item(f"{stem}:{line}", _clean(seq.strip(), path, line), ref.strip(), line=line, terms=terms))
        return items
    if spec.kind == "design":
        return _design_items(spec, path, stem)
    if spec.kind == "rank":
        from instructprotein.evaluate.rank import read_rank_items

        return read_rank_items(spec, path, stem, counts)
    if spec.format == "go_pairs":
        if kg is None:
            raise InputError(f"task {spec.name} asks about GO terms by name: give a knowledge graph (kg=...)", path)
        names: dict[str, str | None] = {}
        fallback = {k: v[0] for k, v in _go_sqlite().items()} if spec.term_names == "kg+go_sqlite" else None
        for prot in read_go_pairs(path):
            seq = _clean(prot.sequence, path, prot.line)
            for term, yes in prot.pairs:
                if term not in names:
                    try:
                        names[term] = kg.entity(term).name
                        source_key = "terms named by the graph"
                    except KeyError:
                        names[term] = fallback.get(term) if fallback else None
                        source_key = "terms named by GO.sqlite (newer than the graph)"
                        if fallback is not None and not fallback:
                            counts["terms left unnamed: GO.sqlite is not in the data cache (data fetch)"] += 1
                    if names[term] is not None:
                        counts[source_key] += 1
                if names[term] is None:
                    counts["items skipped (term unknown to both)"] += 1
                    continue
                label = _class_of(spec, yes, path, prot.line)
                items.append(Item(f"{stem}:{prot.line}|{term}", seq, label, term, names[term], prot.line))
        return items
    kind = benchmark_kind(path)
    custom = spec.sequence_field != "sequence" or spec.label_field != "label" or spec.term_field
    if kind == "jsonl" and custom:
        required = [spec.sequence_field, spec.label_field] + ([spec.term_field] if spec.term_field else [])
        for line, obj in numbered_jsonl(path, required):
            seq = obj[spec.sequence_field]
            if not isinstance(seq, str) or not seq.strip():
                raise InputError(f"{spec.sequence_field!r} must be a non-empty string", path, line)
            label = _class_of(spec, obj[spec.label_field], path, line)
            term_name = None
            if spec.term_field:
                term_name = str(obj[spec.term_field]).strip()
                if not term_name:
                    raise InputError(f"empty {spec.term_field!r}", path, line)
            items.append(Item(f"{stem}:{line}", _clean(seq.strip(), path, line), label, None, term_name, line))
        return items
    if spec.term_field:
        raise InputError("term_field is read from JSON lines files only", path)
    for rec in read_labelled_sequences(path):
        label = _class_of(spec, rec.label, path, rec.line)
        items.append(Item(f"{stem}:{rec.line}", _clean(rec.sequence, path, rec.line), label, None, None, rec.line))
    return items


def _design_items(spec: TaskSpec, path: Path, stem: str) -> list[Item]:
    """Design requests of a JSON-lines file: the request text, its GO ids, and (optional) the
    natural protein the request describes."""
    from instructprotein.infer.generate import design_question

    if benchmark_kind(path) != "jsonl":
        raise InputError("a design task reads JSON lines (request, GO ids, optional sequence)", path)
    items: list[Item] = []
    for line, obj in numbered_jsonl(path, [spec.label_field, str(spec.terms_field)]):
        request, raw = obj[spec.label_field], obj[str(spec.terms_field)]
        if not isinstance(request, str) or not request.strip():
            raise InputError(f"{spec.label_field!r} must be a non-empty request text", path, line)
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t.strip() for t in raw):
            raise InputError(f"{spec.terms_field!r} must be a non-empty list of GO ids", path, line)
        seq = obj.get(spec.sequence_field)
        if seq is not None and (not isinstance(seq, str) or not seq.strip()):
            raise InputError(f"{spec.sequence_field!r}, where given, must be a non-empty string", path, line)
        try:
            question = design_question(request)
        except InputError as exc:
            raise InputError(f"bad request: {exc.message}", path, line) from None
        sequence = _clean(seq.strip(), path, line) if seq else ""
        items.append(Item(f"{stem}:{line}", sequence, question, line=line, terms=tuple(t.strip() for t in raw)))
    return items


def _source_items(
    spec: TaskSpec,
    source: Source,
    kg: KnowledgeGraph | None,
    heldout: HeldOut | None,
    counts: Counter,
    info: dict[str, Any],
    seed: int,
) -> list[Item]:
    if source.heldout:
        if heldout is None:
            raise InputError(
                f"task {spec.name} runs on our held-out split: give the instruction set's folder "
                "(instructions_dir=..., the folder with splits/ and instructions.json)"
            )
        items = [_heldout_label(spec, i) for i in heldout.items(source, seed=seed)]
        info["file"] = str(heldout.written.get(source.describe(), ""))
        info["heldout"] = heldout.summary(source)
        return items
    path = source.resolve()
    _check_data_file(path)  # before hashing it: a missing file was a FileNotFoundError traceback
    info["file"] = str(path)
    info["sha256"] = file_sha256(path)
    return read_file_items(spec, path, kg, counts)


def _heldout_label(spec: TaskSpec, item: Item) -> Item:
    """Held-out items come labelled yes / no or with a DeepLoc class; map them to the task's classes."""
    label = item.label
    if spec.kind in ("describe", "design", "rank"):
        return item
    if spec.format == "go_pairs":
        assert spec.labels is not None
        label = spec.labels["true" if item.label == "yes" else "false"]
    elif spec.labels is not None and item.label in spec.labels:
        label = spec.labels[item.label]
    if label not in spec.classes:
        raise InputError(
            f"task {spec.name}: held-out label {item.label!r} is not among the task's classes "
            f"({', '.join(map(repr, spec.classes))})"
        )
    return Item(item.id, item.sequence, label, item.term, item.term_name, item.line, item.accession, item.terms)


def load_task_data(
    spec: TaskSpec,
    *,
    kg: KnowledgeGraph | None = None,
    heldout: HeldOut | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_train: int = 20000,
) -> TaskData:
    """The test items (a seeded random ``limit`` of them, in file order) and the train items if any.

    The paper's files are sorted by class, so ``limit`` samples rather than taking the first N.
    """
    counts: Counter = Counter()
    test_info: dict[str, Any] = {"source": spec.test.describe()}
    items = _source_items(spec, spec.test, kg, heldout, counts, test_info, seed)
    if not items:
        raise InputError(f"task {spec.name}: no items in {spec.test.describe()}")
    total = len(items)
    if limit is not None and limit < total:
        if limit < 1:
            raise InputError(f"limit must be positive, got {limit}")
        pick = sorted(random.Random(seed).sample(range(total), limit))
        items = [items[i] for i in pick]
        test_info["sampled"] = f"{limit:,} of {total:,} (seeded)"
    train = None
    train_info: dict[str, Any] | None = None
    if spec.train is not None:
        train_info = {"source": spec.train.describe()}
        train = _source_items(spec, spec.train, kg, heldout, Counter(), train_info, seed)
        if len(train) > max_train:
            pick = sorted(random.Random(seed + 1).sample(range(len(train)), max_train))
            train_info["sampled"] = f"{max_train} of {len(train)}"
            train = [train[i] for i in pick]
        train_info["n"] = len(train)
        if spec.train_note:
            train_info["note"] = spec.train_note
    test_info.update(items_in_source=total, n=len(items), reading=dict(counts))
    if spec.kind == "choice":
        test_info["class_counts"] = dict(Counter(i.label for i in items))
    return TaskData(items, train, {"test": test_info, "train": train_info})
