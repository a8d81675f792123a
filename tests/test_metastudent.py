"""Swiss-Prot 2014 set of metastudent-data: annotations, GO graph, names, folder check."""

from __future__ import annotations

import gzip
from itertools import islice
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SkipLog
from instructprotein.formats.metastudent import (
    aspect_folder,
    metastudent_folder_check,
    read_annotations,
    read_go_graph,
    read_name_mapping,
)
from instructprotein.formats.obo import find_cycle
from instructprotein.formats.records import GO_ROOTS


@pytest.fixture(scope="module")
def folder(resource) -> Path:
    return resource("swissprot-2014")


@pytest.fixture(scope="module")
def graph(folder):
    return read_go_graph(folder)


@pytest.fixture(scope="module")
def mf(folder) -> dict[str, list[str]]:
    return dict(read_annotations(folder, "F"))


# ---------------------------------------------------------------- real data


def test_folder_check_real(folder):
    assert metastudent_folder_check(folder) == folder


def test_mf_annotations(mf, graph):
    assert len(mf) == 459503
    # hemoglobin alpha: ids come sorted and unique (GO:0005515 is listed 12 times)
    assert mf["P69905"] == [
        "GO:0004601",
        "GO:0005344",
        "GO:0005506",
        "GO:0005515",
        "GO:0019825",
        "GO:0020037",
        "GO:0031720",
        "GO:0046872",
    ]
    # 10,189 lines are just the root, 141 more repeat it: 10,330 root-only proteins
    assert sum(1 for ids in mf.values() if ids == ["GO:0003674"]) == 10330
    distinct = {i for ids in mf.values() for i in ids}
    assert len(distinct) == 6471
    # every annotated id is a live MF term of the 2014 graph
    assert all(i in graph.terms and not graph.terms[i].is_obsolete for i in distinct)
    assert {graph.terms[i].namespace for i in distinct} == {"molecular_function"}


def test_annotation_prefix_and_aspect_names(folder):
    first = list(islice(read_annotations(folder, "CCO"), 3))
    assert first == [("C6DJ78", ["GO:0005737"]), ("A7GJB7", ["GO:0005737"]), ("A7GJB3", ["GO:0005737"])]
    bp_file = folder / "BPO" / "goasp_annot.dat"
    ((acc, ids),) = islice(read_annotations(bp_file, "biological_process"), 1)
    assert acc == "B0RED7"
    assert ids == ["GO:0006200", "GO:0006754", "GO:0006810", "GO:0006811", "GO:0015986", "GO:0015992", "GO:0042777"]


def test_bp_cc_line_counts(folder):
    assert sum(1 for _ in read_annotations(folder, "P")) == 486000
    assert sum(1 for _ in read_annotations(folder, "C")) == 392822


def test_graph_terms_and_edges(graph):
    assert graph.version == "2014-01"
    assert len(graph.terms) == 40413
    counts: dict[str, int] = {}
    for t in graph.terms.values():
        for rel, _ in t.parents:
            counts[rel] = counts.get(rel, 0) + 1
    # goGraph.txt has 65,928 is_a rows; 1,795 of them hang obsolete terms under pseudo-parents
    assert counts == {
        "is_a": 64133,
        "part_of": 6399,
        "regulates": 2531,
        "positively_regulates": 2116,
        "negatively_regulates": 2144,
    }
    zinc = graph.terms["GO:0008270"]
    assert (zinc.name, zinc.namespace) == ("zinc ion binding", "molecular_function")
    assert zinc.parents == [("is_a", "GO:0046914")]
    assert find_cycle(graph) is None


def test_graph_obsolete_pseudo_parents(graph):
    obsolete = [t for t in graph.terms.values() if t.is_obsolete]
    assert len(obsolete) == 1795
    by_ns: dict[str | None, int] = {}
    for t in obsolete:
        by_ns[t.namespace] = by_ns.get(t.namespace, 0) + 1
    assert by_ns == {"molecular_function": 902, "biological_process": 742, "cellular_component": 151}
    old = graph.terms["GO:0000005"]  # "obsolete_molecular_function  GO:0000005  1  is_a"
    assert old.is_obsolete and old.parents == [] and old.name == "ribosomal chaperone activity"
    assert not any(p.startswith("obsolete") for t in graph.terms.values() for _, p in t.parents)


def test_graph_namespaces(graph):
    live = [t for t in graph.terms.values() if not t.is_obsolete]
    by_ns: dict[str | None, int] = {}
    for t in live:
        by_ns[t.namespace] = by_ns.get(t.namespace, 0) + 1
    assert by_ns == {"biological_process": 25571, "molecular_function": 9661, "cellular_component": 3386}
    for root, aspect in GO_ROOTS.items():
        assert graph.terms[root].aspect == aspect and graph.terms[root].parents == []


def test_name_mapping_junk_rows(folder):
    mapping = read_name_mapping(folder / "nameMapping.txt")
    assert len(mapping.names) == 40413
    assert mapping.junk == [(109, "obsolete_cellular_component"), (1020, "systematic_synonym")]


# ---------------------------------------------------------------- small files


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_aspect_folder():
    assert [aspect_folder(a) for a in ("F", "p", "CCO", "molecular_function")] == ["MFO", "BPO", "CCO", "MFO"]
    with pytest.raises(ValueError):
        aspect_folder("X")


def test_annotations_malformed_id(tmp_path):
    path = write(tmp_path / "a.dat", "P1\tGO:0000001\tGO:0000001\nP2\tGO:0000001\tGO:123\n\nP3\tGO:0000002\n")
    with pytest.raises(InputError, match="P2: malformed GO id 'GO:123'") as info:
        list(read_annotations(path, "F"))
    assert (info.value.path, info.value.line) == (str(path), 2)
    skip = SkipLog()
    assert list(read_annotations(path, "F", skip=skip)) == [("P1", ["GO:0000001"]), ("P3", ["GO:0000002"])]
    assert skip.count == 1


def test_annotations_no_accession_or_ids(tmp_path):
    path = write(tmp_path / "a.dat", "P1\tGO:0000001\n\tGO:0000002\n")
    with pytest.raises(InputError, match="no accession") as info:
        list(read_annotations(path, "C"))
    assert info.value.line == 2
    path = write(tmp_path / "b.dat", "P1\n")
    with pytest.raises(InputError, match="no GO ids") as info:
        list(read_annotations(path, "C"))
    assert info.value.line == 1


def test_annotations_empty_file(tmp_path):
    path = write(tmp_path / "a.dat", "")
    with pytest.raises(InputError, match="empty file") as info:
        list(read_annotations(path, "P"))
    assert info.value.path == str(path)


def test_annotations_gzip_and_crlf(tmp_path):
    path = tmp_path / "a.dat.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("P1\tGO:0000002\tGO:0000001\r\n")
    assert list(read_annotations(path, "F")) == [("P1", ["GO:0000001", "GO:0000002"])]


def small_folder(tmp_path: Path, graph: str, names: str) -> Path:
    write(tmp_path / "goGraph.txt", graph)
    write(tmp_path / "nameMapping.txt", names)
    return tmp_path


NAMES = "GO:0003674\tmolecular_function\nGO:0000001\ta\nGO:0000002\tb\nsystematic_synonym\tSystematic synonym\n"


def test_small_graph(tmp_path):
    folder = small_folder(
        tmp_path,
        "GO:0003674\tGO:0000001\t1\tis_a\nGO:0000001\tGO:0000002\t1\tpart_of\n"
        "obsolete_molecular_function\tGO:0000009\t1\tis_a\n",
        NAMES,
    )
    onto = read_go_graph(folder)
    assert onto.terms["GO:0000002"].parents == [("part_of", "GO:0000001")]
    assert onto.terms["GO:0000002"].namespace == "molecular_function"  # reached over part_of
    assert onto.terms["GO:0000009"].is_obsolete and onto.terms["GO:0000009"].name == ""
    assert read_name_mapping(folder / "nameMapping.txt").junk == [(4, "systematic_synonym")]


def test_graph_bad_rows(tmp_path):
    folder = small_folder(tmp_path, "GO:0003674\tGO:0000001\t1\tis_a\nGO:0000001\tGO:0000002\tis_a\n", NAMES)
    with pytest.raises(InputError, match="4 tab-separated columns") as info:
        read_go_graph(folder)
    assert info.value.line == 2
    write(folder / "goGraph.txt", "somewhere\tGO:0000001\t1\tis_a\n")
    with pytest.raises(InputError, match="parent 'somewhere' is not a GO id"):
        read_go_graph(folder)


def test_graph_cycle(tmp_path):
    folder = small_folder(
        tmp_path,
        "GO:0003674\tGO:0000001\t1\tis_a\nGO:0000001\tGO:0000002\t1\tis_a\nGO:0000002\tGO:0000001\t1\tpart_of\n",
        NAMES,
    )
    with pytest.raises(InputError, match="cycle") as info:
        read_go_graph(folder)
    assert "GO:0000001" in str(info.value) and "GO:0000002" in str(info.value)
    assert info.value.line in {2, 3}


def test_graph_empty_and_missing(tmp_path):
    folder = small_folder(tmp_path, "", NAMES)
    with pytest.raises(InputError, match="empty file"):
        read_go_graph(folder)
    (folder / "nameMapping.txt").unlink()
    with pytest.raises(InputError, match="nameMapping.txt"):
        read_go_graph(folder)


def test_folder_check_names_missing(tmp_path):
    write(tmp_path / "goGraph.txt", "")
    write(tmp_path / "MFO" / "goasp_annot.dat", "")
    with pytest.raises(InputError) as info:
        metastudent_folder_check(tmp_path)
    message = str(info.value)
    assert "nameMapping.txt" in message and "BPO/goasp_annot.dat" in message and "CCO/goasp.fasta.psq" in message
    assert "goGraph.txt" not in message and "MFO/goasp_annot.dat" not in message
    with pytest.raises(InputError, match="not a folder"):
        metastudent_folder_check(tmp_path / "nope")
