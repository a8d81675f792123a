"""Property tests (Hypothesis) over the readers a user feeds and the request validators.

The property is the house rule: for ANY input, a reader or validator either gives a correct
answer or raises :class:`~instructprotein.errors.InputError` (a one-line message naming
where); any other exception is a bug that would reach the user as a traceback (or a 500).
"Correct" is checked too: a sequence that is accepted consists of residue letters only, in
the order given, and a parameter that is accepted is within its rule's bounds.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from instructprotein.errors import InputError  # noqa: E402
from instructprotein.formats.benchmarks import read_labelled_sequences  # noqa: E402
from instructprotein.formats.fasta import PROTEIN_ALPHABET, parse_fasta_text, read_fasta  # noqa: E402
from instructprotein.infer.inputs import check_description, clean_sequence, read_queries  # noqa: E402
from instructprotein.infer.params import RULES, check, check_classify, check_design  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL_RESIDUES = set("ACDEFGHIKLMNPQRSTVWYX")

# text that looks like what users paste: FASTA-ish lines, residues, junk, look-alikes, control characters
residue_text = st.text(
    alphabet="ACDEFGHIKLMNPQRSTVWYXUBZOJacdefkmwy*-. \t0123456789\u212a\u017f\u0131\u00a0é", max_size=80
)
fasta_line = st.one_of(
    residue_text,
    st.builds(lambda i, d: f">{i} {d}", st.text(max_size=12), st.text(max_size=12)),
    st.just(">"),
    st.text(max_size=40),
)
fasta_text = st.lists(fasta_line, max_size=8).map("\n".join)


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="ip-prop-"))


def _ok_sequence(seq: str) -> None:
    assert seq and set(seq) <= MODEL_RESIDUES, seq


@SETTINGS
@given(fasta_text)
def test_fasta_text_reader(text):
    try:
        records = parse_fasta_text(text)
    except InputError:
        return
    for r in records:
        assert r.sequence and set(r.sequence) <= set(PROTEIN_ALPHABET), r.sequence
        assert r.id and not any(ch.isspace() for ch in r.id)


@SETTINGS
@given(st.one_of(fasta_text.map(str.encode), st.binary(max_size=200)), st.booleans())
def test_fasta_file_reader(data, gz):
    path = _scratch() / ("x.fa.gz" if gz else "x.fa")
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        records = list(read_fasta(path))
    except InputError as exc:
        assert str(path) in str(exc)
        return
    for r in records:
        assert r.sequence and set(r.sequence) <= set(PROTEIN_ALPHABET)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
jsonl_record = st.one_of(
    st.fixed_dictionaries(
        {"sequence": st.one_of(residue_text, json_value)},
        optional={"id": json_value, "label": json_value, "accession": json_value},
    ),
    json_value,
)
jsonl_text = st.lists(st.one_of(jsonl_record.map(lambda o: json.dumps(o)), st.text(max_size=30)), max_size=6).map(
    "\n".join
)


@SETTINGS
@given(jsonl_text, st.sampled_from(["q.jsonl", "q.fa", "q.txt"]))
def test_query_file_reader(text, name):
    path = _scratch() / name
    path.write_text(text, encoding="utf-8")
    try:
        queries = read_queries([path])
    except InputError:
        return
    assert queries and len({q.id for q in queries}) == len(queries)
    for q in queries:
        _ok_sequence(q.sequence)


@SETTINGS
@given(st.lists(st.one_of(residue_text, fasta_text, st.text(max_size=30)), min_size=1, max_size=4))
def test_query_strings(items):
    try:
        queries = read_queries(items)
    except InputError:
        return
    for q in queries:
        _ok_sequence(q.sequence)


@SETTINGS
@given(st.one_of(residue_text, st.text(max_size=60)))
def test_clean_sequence_keeps_letters_in_order(text):
    try:
        seq = clean_sequence(text)
    except InputError:
        return
    _ok_sequence(seq)
    letters = [c for c in text if not c.isspace()]
    assert len(seq) == len(letters) - (1 if letters[-1] == "*" else 0)


@SETTINGS
@given(jsonl_text, st.sampled_from(["b.jsonl", "b.tsv"]))
def test_benchmark_file_reader(text, name):
    path = _scratch() / name
    if name.endswith(".tsv"):
        text = text.replace(",", "\t")
    path.write_text(text, encoding="utf-8")
    try:
        records = read_labelled_sequences(path)
    except InputError:
        return
    for r in records:
        assert r.sequence


task_keys = st.sampled_from(
    [
        "name",
        "kind",
        "description",
        "data",
        "prompt",
        "candidates",
        "labels",
        "metrics",
        "cut",
        "baselines",
        "paper",
        "evidence",
        "format",
        "test",
        "train",
        "question",
        "prefix",
        "path",
        "packaged",
        "heldout",
        "aspect",
        "above",
        "keep",
        "bogus",
    ]
)
task_dict = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3000) | st.floats(allow_nan=True) | st.text(max_size=12) | task_keys,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(task_keys, inner, max_size=6),
    max_leaves=20,
)


@SETTINGS
@given(st.dictionaries(task_keys, task_dict, max_size=8))
def test_task_mapping_parser(d):
    from instructprotein.evaluate.tasks import TaskSpec, parse_task

    try:
        spec = parse_task(d, Path(_scratch()) / "t.yaml")
    except InputError:
        return
    assert isinstance(spec, TaskSpec)


@SETTINGS
@given(
    st.one_of(st.text(max_size=200), st.dictionaries(task_keys, task_dict, max_size=8).map(json.dumps)),
    st.sampled_from(["t.yaml", "t.json"]),
)
def test_task_file_reader(text, name):
    from instructprotein.evaluate.tasks import TaskSpec, load_task

    path = _scratch() / name
    path.write_text(text, encoding="utf-8")
    try:
        spec = load_task(path)
    except InputError:
        return
    assert isinstance(spec, TaskSpec)


any_number = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.integers(min_value=2**62, max_value=2**70),
)


@SETTINGS
@given(st.sampled_from(sorted(RULES)), any_number)
def test_parameter_rules(name, value):
    try:
        got = check(name, value)
    except InputError as exc:
        assert name in str(exc)
        return
    if value is None:
        assert got is None
        return
    rule = RULES[name]
    assert not isinstance(got, bool) and isinstance(got, (int, float)) and math.isfinite(got)
    assert (got > rule.low if rule.low_open else got >= rule.low) and got <= rule.high


@SETTINGS
@given(
    st.fixed_dictionaries(
        {k: any_number for k in ("n", "temperature", "top_p", "seed", "min_len", "max_len", "length")}
    )
)
def test_design_rules(values):
    try:
        check_design(**values)
    except InputError:
        return
    min_len = 30 if values["min_len"] is None else values["min_len"]  # design()'s default
    assert values["max_len"] is None or min_len <= values["max_len"]


@SETTINGS
@given(
    st.one_of(st.text(max_size=50), json_value),
    st.one_of(st.lists(st.text(max_size=20), max_size=4), json_value),
    st.one_of(st.text(max_size=20), json_value),
)
def test_classify_rules(question, options, prefix):
    try:
        check_classify(question, options, prefix)
    except InputError:
        return
    assert question.strip() and all(isinstance(o, str) and o.strip() for o in options)


@SETTINGS
@given(st.one_of(st.text(max_size=100), json_value))
def test_description_rule(text):
    try:
        out = check_description(text)
    except InputError:
        return
    assert out and out == out.strip()


request_body = st.dictionaries(
    st.sampled_from(
        [
            "description",
            "n",
            "temperature",
            "top_p",
            "seed",
            "min_len",
            "max_len",
            "length",
            "sequence",
            "fasta",
            "question",
            "options",
            "prefix",
            "rule",
            "retrieval",
            "max_new_tokens",
            "extra",
        ]
    ),
    st.one_of(any_number, residue_text, fasta_text, st.lists(st.text(max_size=10), max_size=3)),
    max_size=6,
)


@SETTINGS
@given(request_body)
def test_api_request_bodies(body):
    """A request body is refused by the schema (422), by the shared rules / input checks (400) or
    by a server limit (422), or is valid by the same rules the CLI applies."""
    from pydantic import ValidationError

    from instructprotein.serve.app import DescribeRequest, DesignRequest, LimitError, Limits, sequence_queries

    try:
        req = DesignRequest.model_validate(body)
    except ValidationError:
        pass
    else:
        check_design(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            seed=req.seed,
            min_len=req.min_len,
            max_len=None,
            length=req.length,
        )  # the schema's bounds are the rules': nothing left to refuse
    try:
        dreq = DescribeRequest.model_validate(body)
    except ValidationError:
        return
    check("max_new_tokens", dreq.max_new_tokens)
    try:
        queries = sequence_queries(dreq, Limits())
    except (InputError, LimitError):
        return
    for q in queries:
        _ok_sequence(q.sequence)
