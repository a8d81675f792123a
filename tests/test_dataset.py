"""The instruction dataset end to end on a real subset: 100 Swiss-Prot entries + GO 2013.

Checks what later stages rely on: every split is leak-free at the cluster level,
decontaminated proteins appear nowhere, answer spans are exact, the Hugging Face dataset
loads, the same seed gives the same bytes, and the shard count does not change the text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from instructprotein.formats.obo import read_obo
from instructprotein.instruct.dataset import BuildConfig, build_instructions, load_instructions
from instructprotein.instruct.splits import Splits
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.store import KnowledgeGraph


@pytest.fixture(scope="module")
def kg_path(resource, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kg") / "swiss.sqlite"
    build_from_uniprot([resource("swiss-sample")], read_obo(resource("go-obo-2013")), out)
    return out


@pytest.fixture(scope="module")
def benchmark_file(kg_path, tmp_path_factory) -> tuple[Path, str]:
    """A benchmark holding one graph protein verbatim: it must be removed from everything."""
    with KnowledgeGraph(kg_path) as kg:
        acc = kg.accessions()[7]
        seq = kg.protein(acc).sequence
    path = tmp_path_factory.mktemp("bench") / "bench_test.jsonl"
    path.write_text(json.dumps({"sequence": seq, "label": 1, "label_name": "x"}) + "\n")
    return path, acc


def config(benchmark: Path, **kw) -> BuildConfig:
    base = dict(n_train=400, eval_fraction=0.1, shards=3, workers=2, benchmarks=[str(benchmark)], split_identity=0.3)
    base.update(kw)
    return BuildConfig(**base)


@pytest.fixture(scope="module")
def built(kg_path, benchmark_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("instr") / "a"
    result = build_instructions(kg_path, out, config(benchmark_file[0]))
    return out, result


def reusing(built_dir: Path, new_dir: Path) -> Path:
    """A fresh output folder holding the first build's splits and decontamination, so that
    the (cached) MMseqs2 stages are reused: their inputs match, and reuse is what reruns do."""
    import shutil

    for sub in ("splits", "decontamination"):
        shutil.copytree(built_dir / sub, new_dir / sub)
    return new_dir


def records(folder: Path) -> list[dict]:
    rows = []
    for path in sorted((folder / "jsonl").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    return rows


def test_outputs_exist_and_load(built):
    out, result = built
    for name in ("instructions.json", "frequency.tsv", "plan.npz", "splits/splits.tsv", "decontamination/removed.tsv"):
        assert (out / name).exists(), name
    dd = load_instructions(out)
    assert set(dd) == {"train", "valid", "test"}
    assert dd["train"].num_rows == result.summary["instructions"]["train"]["total"] > 300
    assert {"text", "answer_start", "answer_end", "task", "accession", "triples", "chain"} <= set(
        dd["train"].column_names
    )
    assert dd["train"].num_rows + dd["valid"].num_rows + dd["test"].num_rows == len(records(out))


def test_answer_spans_and_formats(built):
    rows = records(built[0])
    tasks = {r["task"] for r in rows}
    assert {"yes_no", "design", "go_terms", "multiple_choice"} <= tasks
    for r in rows:
        assert r["text"][r["answer_start"] : r["answer_end"]] == r["answer"]
        assert r["text"][: r["answer_start"]] == r["prompt"]
        if r["direction"] == "protein_to_text":
            assert r["text"].startswith("<protein>") and "</protein>Instruction: " in r["text"]
            assert "\n\nOutput: " in r["text"]
        else:
            assert r["answer"].startswith("<protein>") and r["answer"].endswith("</protein>")


def test_splits_are_leak_free_and_decontaminated(built, benchmark_file):
    out, result = built
    _, removed_acc = benchmark_file
    splits = Splits.load(out / "splits")
    assert splits.split[removed_acc] == "removed"
    by_split: dict[str, set[str]] = {}
    for r in records(out):
        assert r["accession"] != removed_acc
        assert splits.split[r["accession"]] == r["split"]
        by_split.setdefault(r["split"], set()).add(splits.representative[r["accession"]])
    # a 30 %-identity cluster never spans two splits
    assert not (by_split["train"] & by_split.get("valid", set()))
    assert not (by_split["train"] & by_split.get("test", set()))
    assert result.summary["decontamination"]["removed"] >= 1


def test_same_seed_same_bytes_and_shards_do_not_change_text(built, kg_path, benchmark_file, tmp_path):
    out, _ = built
    again = reusing(out, tmp_path / "b")
    build_instructions(kg_path, again, config(benchmark_file[0]))
    assert json.loads((again / "splits" / "splits.json").read_text()) == json.loads(
        (out / "splits" / "splits.json").read_text()
    )
    for path in sorted((out / "jsonl").glob("*.jsonl")):
        assert (again / "jsonl" / path.name).read_bytes() == path.read_bytes(), path.name
    for path in sorted((out / "parquet").glob("*.parquet")):
        assert (again / "parquet" / path.name).read_bytes() == path.read_bytes(), path.name
    one_shard = reusing(out, tmp_path / "c")
    build_instructions(kg_path, one_shard, config(benchmark_file[0], shards=1, workers=1))
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, records(one_shard))) == sorted(map(key, records(out)))
    other_seed = reusing(out, tmp_path / "d")
    build_instructions(kg_path, other_seed, config(benchmark_file[0], seed=1, split_linclust=True))
    assert sorted(map(key, records(other_seed))) != sorted(map(key, records(out)))


def test_long_proteins_are_skipped_and_counted(built, kg_path, benchmark_file, tmp_path):
    short = reusing(built[0], tmp_path / "short")
    result = build_instructions(kg_path, short, config(benchmark_file[0], max_residues=300))
    assert result.summary["skipped"]["long_proteins"] > 0
    assert all(r["residues"] <= 300 for r in records(tmp_path / "short"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "instructprotein.cli", *args], capture_output=True, text=True)


def test_cli_stats_and_show(built, kg_path):
    out, _ = built
    stats = cli("instructions", "stats", "--out", str(out), "--json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["terms"] > 50 and 0 < data["before"]["gini"] < 1
    assert Path(data["plot"]).read_bytes()[:4] == b"\x89PNG"
    acc = records(out)[0]["accession"]
    show = cli("instructions", "show", "--protein", acc, "--kg", str(kg_path), "--out", str(out))
    assert show.returncode == 0, show.stderr
    assert "knowledge chains" in show.stdout and "instruction(s) in the dataset" in show.stdout


def test_empty_benchmark_file_is_counted_not_fatal(kg_path, tmp_path):
    empty = tmp_path / "empty_test.jsonl"
    empty.write_text("")
    result = build_instructions(kg_path, tmp_path / "e", config(empty, n_train=50, split_linclust=True))
    assert result.summary["decontamination"]["empty_benchmark_files"] == 1
