"""Sequence clusters and homology-aware splits on a real knowledge graph (100 Swiss-Prot entries).

The entries hold real families (nine actins, ~30 flavodoxins, opsins, PAX proteins,
haemoglobins) and groups of identical sequences (ARF3 of four species), so "no cluster in
two splits" is tested on clusters that actually have several members.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SourceError
from instructprotein.formats.obo import read_obo
from instructprotein.instruct.splits import Splits, assign_splits, make_splits, sequence_clusters
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.tools.mmseqs import MMseqs

NO_MMSEQS = MMseqs(Path("/nonexistent/mmseqs"))  # any call to it fails: proves a result was reused
ACTINS = ("P68142", "P53485", "P53486", "P68143", "P53480", "P68140", "P53482", "P68264", "P53483")
EXCLUDE = frozenset({"P00722", "P03023", "P61204"})  # P61204: ARF3, whose identical copies stay


def swiss_kg(tmp_path_factory: pytest.TempPathFactory, resource) -> Path:
    """The graph of the 100 entries, built once per test session (shared by test files)."""
    path = tmp_path_factory.getbasetemp() / "swiss-sample-kg.sqlite"
    if not path.exists():
        build_from_uniprot([resource("swiss-sample")], read_obo(resource("go-obo-2013")), path)
    return path


@pytest.fixture(scope="module")
def kg(tmp_path_factory, resource):
    graph = KnowledgeGraph(swiss_kg(tmp_path_factory, resource))
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def default_splits(kg, tmp_path_factory) -> tuple[Splits, Path]:
    """30 % clusters, with an even split so that all three occur.

    ``linclust=True`` keeps the test fast: the default easy-cluster costs ~8 s of MMseqs2's
    fixed start-up per run whatever the input size (it is run once in test_mmseqs.py); the
    split logic downstream of the clustering is the same.
    """
    out = tmp_path_factory.mktemp("splits")
    return make_splits(kg, out, fractions=(0.5, 0.25, 0.25), exclude=EXCLUDE, linclust=True), out


def members_by_cluster(splits: Splits) -> dict[str, set[str]]:
    clusters: dict[str, set[str]] = defaultdict(set)
    for acc, rep in splits.representative.items():
        clusters[rep].add(acc)
    return clusters


def test_no_cluster_spans_two_splits(default_splits):
    splits, _ = default_splits
    assert len(splits.split) == 100
    for rep, members in members_by_cluster(splits).items():
        names = {splits.split[m] for m in members} - {"removed"}
        assert len(names) <= 1, (rep, members, names)
    # the clustering is real: a family of nine actins is one cluster
    assert len({splits.representative[a] for a in ACTINS}) == 1
    assert {splits.split[a] for a in ACTINS} <= {"train", "valid", "test"}
    assert {s for s in splits.split.values()} == {"train", "valid", "test", "removed"}


def test_excluded_proteins_are_never_in_a_split(default_splits):
    splits, _ = default_splits
    assert {a for a, s in splits.split.items() if s == "removed"} == EXCLUDE
    assert splits.accessions("removed") == sorted(EXCLUDE)
    assert all(splits.split[a] != "removed" for a in ("P61205", "P61206", "P61207"))  # ARF3 copies stay
    assert splits.counts["removed"] == 3
    assert sum(splits.counts[n] for n in ("train", "valid", "test", "removed")) == 100


def test_files_are_written_and_load_back(default_splits, kg):
    splits, out = default_splits
    assert sorted(p.name for p in out.iterdir()) == ["clusters30.json", "clusters30.tsv", "splits.json", "splits.tsv"]
    lines = (out / "splits.tsv").read_text().splitlines()
    assert lines[0] == "accession\trepresentative\tsplit" and len(lines) == 101
    summary = json.loads((out / "splits.json").read_text())
    assert summary["inputs"]["kg_content_hash"] == kg.meta["content_hash"]
    assert summary["inputs"]["workflow"] == "easy-linclust" and summary["inputs"]["min_seq_id"] == 0.3
    loaded = Splits.load(out)
    assert loaded.split == splits.split and loaded.representative == splits.representative
    assert loaded.counts == splits.counts


def test_same_inputs_are_reused_and_clusters_serve_another_seed(default_splits, kg):
    splits, out = default_splits
    again = make_splits(kg, out, fractions=(0.5, 0.25, 0.25), exclude=EXCLUDE, linclust=True, mmseqs=NO_MMSEQS)
    assert again.reused and again.split == splits.split
    # a new seed re-draws the splits from the saved 30 % clusters, without MMseqs2
    other = make_splits(kg, out, fractions=(0.5, 0.25, 0.25), seed=1, exclude=EXCLUDE, linclust=True, mmseqs=NO_MMSEQS)
    assert other.representative == splits.representative
    assert other.split != splits.split
    with pytest.raises(SourceError):  # the other workflow is another clustering
        make_splits(kg, out, fractions=(0.5, 0.25, 0.25), exclude=EXCLUDE, mmseqs=NO_MMSEQS)


def test_same_seed_same_splits_from_a_fresh_clustering(kg, tmp_path):
    first = make_splits(kg, tmp_path / "a", linclust=True, seed=7)
    second = make_splits(kg, tmp_path / "b", linclust=True, seed=7)
    assert first.split == second.split and not second.reused
    assert (tmp_path / "a" / "splits.tsv").read_bytes() == (tmp_path / "b" / "splits.tsv").read_bytes()


def test_80_percent_clusters_are_saved_and_reused(kg, tmp_path):
    clusters = sequence_clusters(kg, tmp_path)
    assert len(clusters) == 100
    assert len({clusters[a] for a in ("P61204", "P61205", "P61206", "P61207")}) == 1  # identical ARF3
    assert clusters["P68871"] != clusters["P69905"]  # haemoglobin beta vs alpha: ~40 % identity
    summary = json.loads((tmp_path / "clusters80.json").read_text())
    assert summary["inputs"]["workflow"] == "easy-linclust"
    assert summary["counts"]["proteins"] == 100 and summary["counts"]["distinct_sequences"] == 88
    assert sequence_clusters(kg, tmp_path, mmseqs=NO_MMSEQS) == clusters
    with pytest.raises(SourceError):  # another identity is another clustering
        sequence_clusters(kg, tmp_path, min_seq_id=0.9, mmseqs=NO_MMSEQS)


def test_a_shared_folder_serves_another_work_folder_without_mmseqs(kg, tmp_path):
    shared = tmp_path / "cache" / "clusters"
    first = make_splits(kg, tmp_path / "a", linclust=True, seed=7, shared=shared)
    # a second work folder over the same graph copies the clustering instead of running MMseqs2
    second = make_splits(kg, tmp_path / "b", linclust=True, seed=7, mmseqs=NO_MMSEQS, shared=shared)
    assert second.split == first.split
    assert (tmp_path / "b" / "clusters30.tsv").read_bytes() == (tmp_path / "a" / "clusters30.tsv").read_bytes()
    # a damaged shared copy is never trusted: the folder falls back to MMseqs2
    (shelf,) = shared.iterdir()
    with open(shelf / "clusters30.tsv", "a", encoding="utf-8") as fh:
        fh.write("P99999\tP99999\n")
    with pytest.raises(SourceError):
        sequence_clusters(kg, tmp_path / "c", 0.3, linclust=True, mmseqs=NO_MMSEQS, shared=shared)
    # another clustering of the same graph (80 %) is its own file on the shelf
    assert sequence_clusters(kg, tmp_path / "d", shared=shared) == sequence_clusters(
        kg, tmp_path / "e", mmseqs=NO_MMSEQS, shared=shared
    )


def test_assign_splits_is_per_cluster_and_checks_fractions():
    reps = {f"P{i}": f"R{i % 40}" for i in range(400)}
    split = assign_splits(reps, (0.6, 0.2, 0.2), seed=3, exclude={"P5"})
    assert split == assign_splits(reps, (0.6, 0.2, 0.2), seed=3, exclude={"P5"})
    by_rep: dict[str, set[str]] = defaultdict(set)
    for acc, name in split.items():
        if name != "removed":
            by_rep[reps[acc]].add(name)
    assert all(len(names) == 1 for names in by_rep.values())
    assert split["P5"] == "removed"
    assert assign_splits(reps, (1.0, 0.0, 0.0)) == {acc: "train" for acc in reps}
    with pytest.raises(ValueError, match="summing to 1"):
        assign_splits(reps, (0.9, 0.05, 0.1))


def test_load_without_splits_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no splits"):
        Splits.load(tmp_path)
