"""The MMseqs2 wrapper, run for real on real Swiss-Prot sequences and mutants of known identity.

Sequences: the 100 Swiss-Prot entries of emboss-test plus 100 spread over the Swiss-Prot 2014
BLAST database (200 real proteins), and point mutants made here with an exact fraction of
substituted residues, so the identity MMseqs2 must report is known in advance. BGAL_ECOLI,
LACI_ECOLI and G6PD_TAKRU have no homolog at >= 30 % among the 100 entries.
"""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SourceError
from instructprotein.formats.blastdb import BlastDb
from instructprotein.formats.records import SequenceRecord
from instructprotein.formats.uniprot import read_uniprot
from instructprotein.tools import mmseqs as mm
from instructprotein.tools.mmseqs import Hit, MMseqs, MMseqsError

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def mutant(sequence: str, identity: float, seed: int = 1) -> str:
    """``sequence`` with exactly round((1 - identity) * length) residues substituted (no indels)."""
    rng = random.Random(seed)
    residues = list(sequence)
    for i in rng.sample(range(len(residues)), round(len(residues) * (1 - identity))):
        residues[i] = rng.choice([a for a in AMINO_ACIDS if a != residues[i]])
    return "".join(residues)


def random_protein(length: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(AMINO_ACIDS) for _ in range(length))


@pytest.fixture(scope="module")
def tool() -> MMseqs:
    return MMseqs.locate()


@pytest.fixture(scope="module")
def swiss(resource) -> dict[str, str]:
    return {e.accession: e.sequence for e in read_uniprot(resource("swiss-sample"))}


@pytest.fixture(scope="module")
def proteins(resource, swiss) -> list[SequenceRecord]:
    """200 real proteins: the 100 entries, then 100 evenly spaced Swiss-Prot 2014 sequences."""
    records = [SequenceRecord(acc, "", seq) for acc, seq in swiss.items()]
    with BlastDb(resource("swissprot-2014") / "MFO" / "goasp.fasta") as db:
        step = len(db) // 100
        for i in range(0, step * 100, step):
            rec = db.record(i)
            records.append(SequenceRecord(f"sp2014|{rec.id}", "", rec.sequence))
    return records


@pytest.fixture(scope="module")
def queries(swiss) -> list[SequenceRecord]:
    return [
        SequenceRecord("bgal:95", "", mutant(swiss["P00722"], 0.95)),
        SequenceRecord("laci:95", "", mutant(swiss["P03023"], 0.95)),
        SequenceRecord("g6pd:50", "", mutant(swiss["P54996"], 0.50)),
        SequenceRecord("random", "", random_protein(400)),
    ]


@pytest.fixture(scope="module")
def hits(tool, proteins, queries, tmp_path_factory) -> list[Hit]:
    return tool.search(queries, proteins, tmp_path_factory.mktemp("search"))


def test_locate_picks_a_simd_build_and_runs(tool):
    assert tool.version()  # the binary and its runtime library load
    assert tool.binary.is_file()


def test_cluster_groups_a_sequence_with_its_mutant_only(tool, proteins, swiss, tmp_path):
    records = [*proteins, SequenceRecord("bgal|mutant:95", "", mutant(swiss["P00722"], 0.95))]
    clusters = tool.cluster(records, tmp_path / "work", min_seq_id=0.9)
    assert set(clusters) == {r.id for r in records}  # every member, ids unchanged
    members = {m for m, rep in clusters.items() if rep == clusters["P00722"]}
    assert members == {"P00722", "bgal|mutant:95"}
    # identical sequences (ARF3 of four species) share one cluster; unrelated proteins do not
    assert len({clusters[a] for a in ("P61204", "P61205", "P61206", "P61207")}) == 1
    assert clusters["P03023"] != clusters["P54996"]
    assert all(clusters[rep] == rep for rep in clusters.values())  # a representative is its own
    assert list((tmp_path / "work").iterdir()) == []  # scratch removed


def test_cluster_reads_a_fasta_file(tool, swiss, tmp_path):
    """Also the one run of the easy-cluster workflow (the other tests use linclust).

    One clustering step instead of three: each step pays MMseqs2's ~2 s prefilter start-up.
    """
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">a\n{swiss['P00722']}\n>b\n{mutant(swiss['P00722'], 0.95)}\n>c\n{swiss['P03023']}\n")
    clusters = tool.cluster(
        fasta, tmp_path, min_seq_id=0.9, linclust=False, extra_args=("--single-step-clustering", "1")
    )
    assert clusters["a"] == clusters["b"] != clusters["c"]


def test_cluster_refuses_duplicate_ids_and_takes_nothing(tool, tmp_path):
    assert tool.cluster([], tmp_path) == {}
    dup = [SequenceRecord("x", "", "MKTAYIAKQR"), SequenceRecord("x", "", "MKTAYIAKQA")]
    with pytest.raises(InputError, match="duplicate"):
        tool.cluster(dup, tmp_path)


def test_search_finds_the_mutant_at_its_identity(hits):
    best = {}
    for h in hits:
        best.setdefault(h.query, h)  # MMseqs2 lists the best hit of a query first
    assert best["bgal:95"].target == "P00722"
    assert best["bgal:95"].fident == pytest.approx(0.95, abs=0.01)
    assert best["bgal:95"].qcov == pytest.approx(1.0) and best["bgal:95"].tcov == pytest.approx(1.0)
    assert best["bgal:95"].alnlen == 1024 and best["bgal:95"].evalue < 1e-100
    assert best["laci:95"].target == "P03023" and best["laci:95"].fident == pytest.approx(0.95, abs=0.01)
    assert best["g6pd:50"].target == "P54996" and best["g6pd:50"].fident == pytest.approx(0.5, abs=0.05)
    assert "random" not in best


def test_min_seq_id_drops_weaker_alignments(tool, proteins, queries, hits, tmp_path):
    strong = tool.search(queries, proteins, tmp_path, min_seq_id=0.7)
    assert {h.query for h in strong} == {"bgal:95", "laci:95"}
    assert all(h.fident >= 0.7 for h in strong)
    assert {(h.query, h.target) for h in strong} == {(h.query, h.target) for h in hits if h.fident >= 0.7}
    assert list(tmp_path.iterdir()) == []


def test_search_with_nothing_to_search(tool, queries, tmp_path):
    assert tool.search([], queries, tmp_path) == []
    assert tool.search(queries, [], tmp_path) == []


def test_missing_binary_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(SourceError, match="instructprotein data fetch --group tools"):
        MMseqs.locate(binary=tmp_path / "no-such-mmseqs")
    monkeypatch.setenv(mm.MMSEQS_ENV, str(tmp_path / "nothing-here"))
    with pytest.raises(SourceError, match=mm.MMSEQS_ENV):
        MMseqs.locate()
    # nothing given, nothing on PATH, an empty cache
    monkeypatch.delenv(mm.MMSEQS_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match="instructprotein data fetch --group tools"):
        MMseqs.locate(cache=tmp_path / "empty-cache")


def test_a_binary_that_cannot_start_is_a_source_error(tmp_path):
    not_a_program = tmp_path / "mmseqs"
    not_a_program.write_bytes(b"\x7fELF garbage")
    not_a_program.chmod(0o755)
    with pytest.raises(SourceError, match="cannot run MMseqs2"):
        MMseqs(not_a_program).version()


def test_failure_carries_mmseqs_own_message(tool, tmp_path):
    with pytest.raises(MMseqsError, match="easy-search exited with status") as info:
        tool.run(
            ["easy-search", tmp_path / "missing.fasta", tmp_path / "missing.fasta", tmp_path / "o", tmp_path / "t"]
        )
    assert "missing.fasta" in str(info.value)


def test_best_simd_build_for_the_cpu(tmp_path):
    for name in ("mmseqs-avx2", "mmseqs-avx", "mmseqs-sse4.1", "mmseqs-ssse3", "mmseqs-sse3"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(stat.S_IRWXU)
    os.symlink("../lib/mmseqs2/simd-dispatch", tmp_path / "mmseqs")  # dangling, as in the cache
    assert mm._best_build(tmp_path, {"sse4_1", "avx2", "avx"}).name == "mmseqs-avx2"
    assert mm._best_build(tmp_path, {"sse4_1", "ssse3"}).name == "mmseqs-sse4.1"
    assert mm._best_build(tmp_path, {"pni"}).name == "mmseqs-sse3"
    assert mm._best_build(tmp_path, set()) is None  # the dispatcher does not resolve
    (tmp_path / "mmseqs").unlink()
    (tmp_path / "mmseqs").write_text("#!/bin/sh\n")
    (tmp_path / "mmseqs").chmod(stat.S_IRWXU)
    assert mm._best_build(tmp_path, set()).name == "mmseqs"


def test_debian_build_gets_its_library_path(tool):
    if Path(tool.binary).parent.name != "bin" or not tool.library_path:
        pytest.skip("MMseqs2 from PATH, not the cached Debian build")
    env = tool.environment()
    assert env["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(tool.library_path[0])
    assert any(p.name.startswith("libgzstream.so") for p in tool.library_path[0].iterdir())
