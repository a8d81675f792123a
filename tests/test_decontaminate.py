"""Decontamination on a real knowledge graph (100 Swiss-Prot entries + GO 2013) and benchmark
files written here around known identities.

The benchmark file holds (a) an exact copy of BGAL_ECOLI, (b) a 90 %-identical mutant of
LACI_ECOLI, (c) a 50 %-identical mutant of G6PD_TAKRU and (d) a random sequence; a second,
empty file stands for a benchmark with nothing in it. None of the three proteins has a
homolog at >= 30 % among the 100 entries, so the expected removals are exactly known.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SourceError
from instructprotein.formats.obo import read_obo
from instructprotein.instruct.decontaminate import Decontamination, decontaminate
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.tools.mmseqs import MMseqs

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
EXACT, NINETY, FIFTY = "P00722", "P03023", "P54996"
NO_MMSEQS = MMseqs(Path("/nonexistent/mmseqs"))  # any call to it fails: proves a result was reused


def swiss_kg(tmp_path_factory: pytest.TempPathFactory, resource) -> Path:
    """The graph of the 100 entries, built once per test session (shared by test files)."""
    path = tmp_path_factory.getbasetemp() / "swiss-sample-kg.sqlite"
    if not path.exists():
        build_from_uniprot([resource("swiss-sample")], read_obo(resource("go-obo-2013")), path)
    return path


def mutant(sequence: str, identity: float, seed: int = 1) -> str:
    rng = random.Random(seed)
    residues = list(sequence)
    for i in rng.sample(range(len(residues)), round(len(residues) * (1 - identity))):
        residues[i] = rng.choice([a for a in AMINO_ACIDS if a != residues[i]])
    return "".join(residues)


@pytest.fixture(scope="module")
def kg(tmp_path_factory, resource):
    graph = KnowledgeGraph(swiss_kg(tmp_path_factory, resource))
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def benchmarks(kg, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("bench")
    seq = {acc: kg.protein(acc).sequence for acc in (EXACT, NINETY, FIFTY)}
    rng = random.Random(0)
    rows = [
        {"sequence": seq[EXACT], "label": 1},
        {"sequence": mutant(seq[NINETY], 0.9), "label": 0},
        {"sequence": mutant(seq[FIFTY], 0.5), "label": 1},
        {"sequence": "".join(rng.choice(AMINO_ACIDS) for _ in range(300)), "label": 0},
    ]
    bench = folder / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    empty = folder / "empty.jsonl"
    empty.write_text("")
    return [bench, empty]


@pytest.fixture(scope="module")
def at70(kg, benchmarks, tmp_path_factory) -> tuple[Decontamination, Path]:
    out = tmp_path_factory.mktemp("decon70")
    return decontaminate(kg, benchmarks, out, min_identity=0.7), out


def test_exact_copy_and_close_mutant_are_removed_at_70(at70):
    result, out = at70
    assert set(result.removed) == {EXACT, NINETY}
    assert result.removed[EXACT] == ("bench:1", 1.0, "exact")
    bench_id, identity, reason = result.removed[NINETY]
    assert (bench_id, reason) == ("bench:2", "search")
    assert identity == pytest.approx(0.9, abs=0.01)
    assert result.excluded == frozenset({EXACT, NINETY})
    assert result.counts["removed_exact"] == 1 and result.counts["removed_search"] == 1


def test_outputs_and_summary(at70, benchmarks, kg):
    result, out = at70
    lines = (out / "removed.tsv").read_text().splitlines()
    assert lines[0] == "accession\tbenchmark_id\tidentity\treason"
    assert lines[1:] == [f"{EXACT}\tbench:1\t1.0\texact", f"{NINETY}\tbench:2\t{result.removed[NINETY][1]}\tsearch"]
    summary = json.loads((out / "decontamination.json").read_text())
    assert summary["inputs"]["kg_content_hash"] == kg.meta["content_hash"]
    assert summary["inputs"]["min_identity"] == 0.7 and summary["inputs"]["sensitivity"] == 4.0
    assert [b["name"] for b in summary["benchmark_files"]] == ["bench.jsonl", "empty.jsonl"]
    assert all(len(b["sha256"]) == 64 for b in summary["benchmark_files"])
    counts = summary["counts"]
    assert counts["empty_benchmark_files"] == 1
    assert counts["benchmark_sequences"] == 4 and counts["benchmark_files"] == 2
    assert counts["kg_proteins"] == 100 and counts["kg_distinct_sequences"] == 88
    assert counts["removed"] == 2 and counts["distinct_benchmark_sequences_matched"] == 2
    assert summary["mmseqs_version"]
    assert sorted(p.name for p in out.iterdir()) == ["decontamination.json", "hits.tsv.gz", "removed.tsv"]  # no scratch
    # every hit at any identity is kept for the evaluation (one search for both), with the
    # queries that found nothing listed too
    from instructprotein.instruct.decontaminate import load_hits

    hits = load_hits(out)
    assert len(hits) == counts["distinct_benchmark_sequences"]
    best = {q: max(h[1] for h in v) for q, v in hits.items() if v}
    assert sorted(round(b, 1) for b in best.values())[-2:] == [0.9, 1.0]
    assert any(not v for v in hits.values()) or min(best.values()) < 0.7  # the distant ones are there too


def test_distant_mutant_is_removed_at_30(kg, benchmarks, tmp_path):
    result = decontaminate(kg, benchmarks, tmp_path, min_identity=0.3)
    assert set(result.removed) == {EXACT, NINETY, FIFTY}
    assert result.removed[FIFTY][0] == "bench:3"
    assert result.removed[FIFTY][1] == pytest.approx(0.5, abs=0.05)


def test_same_inputs_are_reused_without_mmseqs(at70, kg, benchmarks):
    first, out = at70
    again = decontaminate(kg, benchmarks, out, min_identity=0.7, mmseqs=NO_MMSEQS)
    assert again.reused and again.removed == first.removed
    assert Decontamination.load(out).removed == first.removed


def test_changed_inputs_are_not_reused(at70, kg, benchmarks, tmp_path):
    _, out = at70
    with pytest.raises(SourceError):  # another threshold: must search again
        decontaminate(kg, benchmarks, out, min_identity=0.8, mmseqs=NO_MMSEQS)
    changed = tmp_path / "bench.jsonl"
    changed.write_text(benchmarks[0].read_text() + json.dumps({"sequence": "MKV", "label": 0}) + "\n")
    with pytest.raises(SourceError):  # another benchmark content, same name
        decontaminate(kg, [changed, benchmarks[1]], out, min_identity=0.7, mmseqs=NO_MMSEQS)
    # the earlier result is intact: a failed run wrote nothing
    assert decontaminate(kg, benchmarks, out, min_identity=0.7, mmseqs=NO_MMSEQS).reused


def test_edited_output_is_not_trusted(at70, kg, benchmarks, tmp_path):
    shutil.copytree(at70[1], tmp_path, dirs_exist_ok=True)
    assert decontaminate(kg, benchmarks, tmp_path, min_identity=0.7, mmseqs=NO_MMSEQS).reused
    with open(tmp_path / "removed.tsv", "a") as fh:
        fh.write("P99999\tbench:9\t0.9\tsearch\n")
    with pytest.raises(SourceError):
        decontaminate(kg, benchmarks, tmp_path, min_identity=0.7, mmseqs=NO_MMSEQS)


def test_only_empty_benchmarks_remove_nothing_without_mmseqs(kg, benchmarks, tmp_path):
    result = decontaminate(kg, [benchmarks[1]], tmp_path / "out", mmseqs=NO_MMSEQS)
    assert result.removed == {}
    assert result.counts["empty_benchmark_files"] == 1 and result.counts["kg_proteins"] == 100


def test_no_benchmark_files_is_an_error(kg, tmp_path):
    with pytest.raises(InputError, match="no benchmark files"):
        decontaminate(kg, [tmp_path], tmp_path / "out")
