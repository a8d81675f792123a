"""Benchmark readers on the paper's real test sets (the gzipped copies shipped in the package) and on broken copies."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SkipLog
from instructprotein.formats.benchmarks import (
    GoPairs,
    LabelledSequence,
    benchmark_files,
    benchmark_kind,
    benchmark_sequences,
    read_go_pairs,
    read_jsonl,
    read_labelled_sequences,
)

BENCH = Path(str(resources.files("instructprotein") / "data" / "benchmarks"))
"""The paper's test sets as the package ships them (gzipped; the readers take either)."""


def bench(name: str) -> Path:
    return BENCH / f"{name}.gz"


LOCATIONS = {
    0: "plasma membrane",
    1: "cytoplasm",
    2: "endoplasmic reticulum",
    3: "golgi",
    4: "vacuole",
    5: "mitochondrion",
    6: "nucleus",
    7: "peroxisome",
    8: "chloroplast",
    9: "extracellular",
}


# -- the real files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [("deeploc_subcellular_test.jsonl", 2773), ("deeploc_subcellular_valid.jsonl", 2811)],
)
def test_deeploc_subcellular(name: str, count: int) -> None:
    items = read_labelled_sequences(bench(name))
    assert len(items) == count
    assert {(i.label, i.label_name) for i in items} == set(LOCATIONS.items())
    assert all(isinstance(i, LabelledSequence) and i.sequence.isupper() for i in items)
    assert [i.line for i in items] == list(range(1, count + 1))


def test_deeploc_subcellular_test_majority_class() -> None:
    """The README's majority-class baseline: nucleus, 29.1 %."""
    counts = Counter(i.label_name for i in read_labelled_sequences(bench("deeploc_subcellular_test.jsonl")))
    name, n = counts.most_common(1)[0]
    assert name == "nucleus" and n == 808 and round(100 * n / 2773, 1) == 29.1


@pytest.mark.parametrize(
    ("name", "count", "soluble"),
    [
        ("deeploc_binary_test.jsonl", 1749, 1006),
        ("deeploc_binary_valid.jsonl", 1729, 1026),
        ("deeploc_binary_train.jsonl", 5184, 3077),
    ],
)
def test_deeploc_binary(name: str, count: int, soluble: int) -> None:
    items = read_labelled_sequences(bench(name))
    assert len(items) == count
    assert {(i.label, i.label_name) for i in items} == {(0, "membrane-bound"), (1, "soluble")}
    assert sum(i.label == 1 for i in items) == soluble


@pytest.mark.parametrize(
    ("name", "count"), [("metal_ion_binding_test.tsv", 1332), ("metal_ion_binding_train.tsv", 5995)]
)
def test_metal_ion_binding(name: str, count: int) -> None:
    """No header line; the last line has no newline, so ``wc -l`` (and the README) count one fewer."""
    items = read_labelled_sequences(bench(name))
    assert len(items) == count
    assert {i.label for i in items} == {0, 1}
    assert all(i.label_name is None for i in items)
    assert items[0].line == 1 and items[-1].line == count


def test_metal_ion_binding_test_is_balanced() -> None:
    labels = Counter(i.label for i in read_labelled_sequences(bench("metal_ion_binding_test.tsv")))
    assert labels == {0: 666, 1: 666}


def test_go_mf_pairs() -> None:
    proteins = read_go_pairs(bench("go_mf_test.jsonl"))
    assert len(proteins) == 3415
    assert sum(len(p.pairs) for p in proteins) == 22_372
    assert sum(len(p.positives) for p in proteins) == sum(len(p.negatives) for p in proteins) == 11_186
    first = proteins[0]
    assert isinstance(first, GoPairs) and first.line == 1
    assert first.pairs[0] == (first.positives[0], True) and first.pairs[-1] == (first.negatives[-1], False)
    assert all(t.startswith("GO:") and len(t) == 10 for p in proteins for t, _ in p.pairs)


def test_go_file_is_not_a_classification_set() -> None:
    with pytest.raises(InputError, match="read_go_pairs") as info:
        read_labelled_sequences(bench("go_mf_test.jsonl"))
    assert info.value.line == 1


def test_benchmark_sequences_of_the_directory(tmp_path) -> None:
    """A directory of the paper's eight sets (the packaged folder also holds the SCOPe ranking
    sets, which decontamination does not read: copy the eight aside)."""
    from instructprotein.sources.packaged import packaged_benchmarks

    for f in packaged_benchmarks():
        shutil.copy(f, tmp_path / f.name)
    records = list(benchmark_sequences([tmp_path]))
    files = benchmark_files([tmp_path])
    assert [f.name for f in files] == sorted(f.name for f in packaged_benchmarks())
    assert len(files) == 8
    assert len(records) == 2773 + 2811 + 1749 + 1729 + 5184 + 1332 + 5995 + 3415
    ids = [r.id for r in records]
    assert len(set(ids)) == len(ids)
    assert "deeploc_subcellular_test:1" in ids and "go_mf_test:3415" in ids and "metal_ion_binding_test:1332" in ids
    by_id = {r.id: r for r in records}
    assert by_id["go_mf_test:1"].sequence == read_go_pairs(bench("go_mf_test.jsonl"))[0].sequence
    assert by_id["metal_ion_binding_test:5"].line == 5
    # residues beyond the 20 standard ones occur in the real files and are kept
    assert set("".join(r.sequence for r in records)) <= set("ACDEFGHIKLMNPQRSTVWYXUBZO")


def test_read_jsonl_generic() -> None:
    objs = list(read_jsonl(bench("deeploc_binary_valid.jsonl"), required=("sequence", "label")))
    assert len(objs) == 1729 and set(objs[0]) == {"sequence", "label", "label_name"}


# -- shapes and bad input on small files --------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_lowercase_and_gzip_and_blank_lines(tmp_path: Path) -> None:
    text = '{"sequence": "mkvl", "label": 3, "label_name": "golgi"}\n\n{"sequence": " AcD ", "label": "x"}\n'
    plain = _write(tmp_path / "s.jsonl", text)
    packed = tmp_path / "s.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        items = read_labelled_sequences(path)
        assert items == [LabelledSequence("MKVL", 3, "golgi", 1), LabelledSequence("ACD", "x", None, 3)]
    assert [r.id for r in benchmark_sequences([packed])] == ["s:1", "s:3"]


def test_tsv_header_and_string_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.tsv", "sequence\tlabel\nMKV\t1\nacd\tyes\r\n")
    assert read_labelled_sequences(path) == [
        LabelledSequence("MKV", 1, None, 2),
        LabelledSequence("ACD", "yes", None, 3),
    ]
    assert [r.id for r in benchmark_sequences([path])] == ["m:2", "m:3"]


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"e{suffix}", "")
    assert read_labelled_sequences(path) == []
    assert list(benchmark_sequences([path])) == []
    if suffix == ".jsonl":
        assert read_go_pairs(path) == []


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"sequence": "MKV", "label": 1}\n{"sequence": "MKV", "label": 1\n', 2, "not valid JSON"),
        ('{"sequence": "MKV"}\n', 1, "missing field.*'label'"),
        ('{"label": 1}\n', 1, "missing field.*'sequence'"),
        ('["MKV", 1]\n', 1, "expected a JSON object"),
        ('{"sequence": "MKV", "label": 1}\n{"sequence": "", "label": 0}\n', 2, "empty sequence"),
        ('{"sequence": "MK V", "label": 0}\n', 1, "' ' at position 3"),
        ('{"sequence": "MKV*", "label": 0}\n', 1, "'\\*' at position 4"),
        ('{"sequence": 12, "label": 0}\n', 1, "must be a string"),
        ('{"sequence": "MKV", "label": true}\n', 1, "label must be"),
        ('{"sequence": "MKV", "label": 1.5}\n', 1, "label must be"),
        ('{"sequence": "MKV", "label": 1, "label_name": 4}\n', 1, "label_name must be"),
    ],
)
def test_bad_jsonl(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", text)
    with pytest.raises(InputError, match=message) as info:
        read_labelled_sequences(path)
    assert (info.value.path, info.value.line) == (str(path), line)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("MKV\t1\n\t0\n", 2, "empty sequence"),
        ("MKV\t1\nMKV\n", 2, "expected 2 tab-separated columns"),
        ("MKV\t1\t2\n", 1, "expected 2 tab-separated columns"),
        ("MKV\t\n", 1, "empty label"),
        ("MK1V\t0\n", 1, "'1' at position 3"),
    ],
)
def test_bad_tsv(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(InputError, match=message) as info:
        read_labelled_sequences(path)
    assert (info.value.path, info.value.line) == (str(path), line)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"sequence": "MKV", "label": ["GO:0005524"]}, "missing field.*negative_labels"),
        ({"sequence": "MKV", "label": "GO:0005524", "negative_labels": []}, "label must be a list"),
        ({"sequence": "MKV", "label": ["GO:5524"], "negative_labels": []}, "not a GO id"),
        ({"sequence": "MKV", "label": [], "negative_labels": [7]}, "negative_labels holds 7"),
        ({"sequence": "MKV", "label": ["GO:0005524"], "negative_labels": ["GO:0005524"]}, "both positive"),
        ({"sequence": "", "label": ["GO:0005524"], "negative_labels": []}, "empty sequence"),
    ],
)
def test_bad_go(tmp_path: Path, obj: dict[str, object], message: str) -> None:
    good = {"sequence": "MKV", "label": ["GO:0003674"], "negative_labels": ["GO:0005488"]}
    path = _write(tmp_path / "go.jsonl", json.dumps(good) + "\n" + json.dumps(obj) + "\n")
    with pytest.raises(InputError, match=message) as info:
        read_go_pairs(path)
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_skip_log_collects_bad_records(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.jsonl",
        '{"sequence": "MKV", "label": 1}\nnot json\n{"sequence": "", "label": 0}\n{"sequence": "ACD", "label": 0}\n',
    )
    skip = SkipLog()
    items = read_labelled_sequences(path, skip=skip)
    assert [i.line for i in items] == [1, 4]
    assert [e.line for e in skip.errors] == [2, 3]
    skip = SkipLog()
    assert [r.id for r in benchmark_sequences([path], skip=skip)] == ["mixed:1", "mixed:4"]
    assert skip.count == 2


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_labelled_sequences(tmp_path / "absent.jsonl")
    with pytest.raises(InputError, match="unknown benchmark file type"):
        benchmark_kind(tmp_path / "x.csv")
    with pytest.raises(InputError, match="JSON lines"):
        read_go_pairs(_write(tmp_path / "g.tsv", "MKV\t1\n"))
    bad_utf8 = tmp_path / "latin.jsonl"
    bad_utf8.write_bytes(b'{"sequence": "MKV", "label": 1}\n{"sequence": "MK\xe9", "label": 1}\n')
    with pytest.raises(InputError, match="not utf-8") as info:
        read_labelled_sequences(bad_utf8)
    assert info.value.line == 2
