"""The knowledge graph on a hand-checked graph (tests/data/tiny.*) and on a real subset.

tests/data/tiny.obo + tiny.dat were written so that every expected count below can be
worked out on paper: an alternative id, an obsolete id with one replacement, one with only
``consider`` (must be dropped, not guessed), root annotations, a part_of edge (propagates)
and a regulates edge (does not).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from instructprotein.errors import InputError
from instructprotein.formats.obo import read_obo
from instructprotein.formats.records import Ontology, TermRecord
from instructprotein.kg.builder import GraphBuilder
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.ontology import TermGraph
from instructprotein.kg.store import KnowledgeGraph

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> KnowledgeGraph:
    out = tmp_path_factory.mktemp("kg") / "tiny.sqlite"
    build_from_uniprot([DATA / "tiny.dat"], read_obo(DATA / "tiny.obo"), out)
    graph = KnowledgeGraph(out)
    yield graph
    graph.close()


def ids(annotations) -> set[str]:
    return {a.entity.id for a in annotations}


def test_direct_annotations_resolve_alt_and_obsolete_ids_and_drop_roots(tiny):
    assert ids(tiny.direct_annotations("Q00001", kind="go")) == {"GO:0008270", "GO:0031981", "GO:0006355"}
    # GO:0099901 is an alt_id of metal ion binding, GO:0000001 obsolete -> zinc ion binding,
    # GO:0003674 is the root and is dropped
    assert ids(tiny.direct_annotations("Q00002", kind="go")) == {"GO:0046872", "GO:0008270"}
    # GO:0000002 has only `consider` candidates: dropped, not guessed; GO:0008150 is a root
    assert tiny.direct_annotations("Q00003", kind="go") == []


def test_evidence_and_relations_are_kept(tiny):
    by_id = {a.entity.id: a for a in tiny.direct_annotations("Q00001")}
    assert by_id["GO:0008270"].evidence == "IDA"
    assert by_id["GO:0008270"].entity.relation == "enables"
    assert by_id["GO:0031981"].entity.relation == "located_in"
    assert by_id["GO:0006355"].entity.relation == "involved_in"


def test_propagation_follows_is_a_and_part_of_but_not_regulates(tiny):
    prop = tiny.propagated_annotations("Q00001")
    assert ids(a for a in prop if a.entity.aspect == "F") == {
        "GO:0008270",
        "GO:0046914",
        "GO:0046872",
        "GO:0043167",
        "GO:0005488",
    }
    assert ids(a for a in prop if a.entity.aspect == "C") == {"GO:0031981", "GO:0005634", "GO:0043226"}
    # regulation of transcription does not imply transcription
    assert ids(a for a in prop if a.entity.aspect == "P") == {"GO:0006355"}
    distance = {a.entity.id: a.distance for a in prop}
    assert distance["GO:0008270"] == 0 and distance["GO:0005488"] == 4
    # direct and propagated are never mixed up: the direct list is unchanged
    assert len(tiny.direct_annotations("Q00001", kind="go")) == 3


def test_proteins_under_a_term(tiny):
    assert tiny.proteins_with("GO:0046872") == ["Q00001", "Q00002"]
    assert tiny.proteins_with("GO:0046872", descendants=False) == ["Q00002"]
    assert tiny.proteins_with("GO:0099901", descendants=False) == ["Q00002"]  # alt id resolves
    assert tiny.proteins_with("GO:0005634") == ["Q00001"]  # via part_of
    assert tiny.proteins_with("GO:0006351") == []  # only regulated, not carried


def test_families_keywords_and_locations_are_entities(tiny):
    kinds = {a.entity.kind: a.entity.id for a in tiny.direct_annotations("Q00002")}
    assert kinds["interpro"] == "IPR013087"
    assert kinds["pfam"] == "PF00096"
    assert kinds["prosite"] == "PS00028"
    assert {a.entity.name for a in tiny.direct_annotations("Q00002", kind="location")} == {"Nucleus", "Cytoplasm"}
    assert tiny.proteins_with("KW:Zinc") == ["Q00001", "Q00002"]


def test_secondary_accession_finds_the_protein(tiny):
    assert tiny.protein("Q99991").accession == "Q00001"
    assert tiny.protein("Q00001").length == 12


def test_ancestor_chain_reads_specific_to_general(tiny):
    chain = [e.name for e, _rel in tiny.ancestor_chain("GO:0008270")]
    assert chain == [
        "zinc ion binding",
        "transition metal ion binding",
        "metal ion binding",
        "ion binding",
        "binding",
        "molecular_function",
    ]
    assert [rel for _e, rel in tiny.ancestor_chain("GO:0031981")][0] == "part_of"
    assert tiny.entity("GO:0008270").definition == "Binding to a zinc ion (Zn)."
    assert tiny.synonyms("GO:0008270") == [("zinc binding", "EXACT")]


def test_frequencies_and_build_counts(tiny):
    direct = tiny.frequencies("go", "F")
    assert direct == {"GO:0008270": 2, "GO:0046872": 1}
    prop = tiny.frequencies("go", "F", propagated=True)
    assert prop["GO:0005488"] == 2 and prop["GO:0046914"] == 2 and prop["GO:0046872"] == 2
    assert "GO:0003674" not in prop  # roots carry no annotation
    counts = tiny.build_counts()
    assert counts["proteins"] == 3
    assert counts["annotations_in"] == 8
    assert counts["root_dropped"] == 2
    assert counts["unresolved_dropped"] == 1
    assert counts["resolved_alt_or_obsolete"] == 2
    assert counts["proteins_without_go"] == 1
    assert counts["by_aspect_proteins"] == {"F": 2, "P": 1, "C": 1}


def test_second_process_reads_while_open(tiny):
    code = (
        "from instructprotein.kg.store import KnowledgeGraph;"
        f"g = KnowledgeGraph({str(tiny.path)!r}); print(len(g.proteins_with('GO:0005488')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2"


def test_store_is_read_only(tiny):
    with pytest.raises(sqlite3.OperationalError):
        tiny.con.execute("DELETE FROM protein")


def test_cyclic_is_a_is_an_input_error():
    terms = {
        "GO:1": TermRecord("GO:1", "a", "molecular_function", parents=[("is_a", "GO:2")]),
        "GO:2": TermRecord("GO:2", "b", "molecular_function", parents=[("part_of", "GO:3")]),
        "GO:3": TermRecord("GO:3", "c", "molecular_function", parents=[("is_a", "GO:1")]),
    }
    with pytest.raises(InputError, match="cycle"):
        GraphBuilder(Ontology(terms, "hand-made"), "test").write("/nonexistent/never-written.sqlite")


def test_duplicate_accession_is_an_input_error(tmp_path):
    text = (DATA / "tiny.dat").read_text()
    dup = tmp_path / "dup.dat"
    dup.write_text(text + text.split("//\n")[0] + "//\n")
    with pytest.raises(InputError, match="Q00001"):
        build_from_uniprot([dup], read_obo(DATA / "tiny.obo"), tmp_path / "kg.sqlite")
    assert not (tmp_path / "kg.sqlite").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["dup.dat"]  # no temporary left behind


def test_skip_bad_builds_from_the_good_entries(tmp_path):
    from instructprotein.errors import SkipLog

    text = (DATA / "tiny.dat").read_text().replace("MACDEFGHIK", "MACDE1GHIK")
    bad = tmp_path / "bad.dat"
    bad.write_text(text)
    skip = SkipLog()
    build_from_uniprot([bad], read_obo(DATA / "tiny.obo"), tmp_path / "kg.sqlite", skip=skip)
    assert skip.count == 1
    with KnowledgeGraph(tmp_path / "kg.sqlite") as g:
        assert g.count("protein") == 2


def test_term_graph_closure_distances():
    graph = TermGraph.from_ontology(read_obo(DATA / "tiny.obo"))
    closure = graph.closure()
    zinc = graph.index["GO:0008270"]
    names = {graph.ids[a]: d for a, d in closure[zinc].items()}
    assert names == {
        "GO:0008270": 0,
        "GO:0046914": 1,
        "GO:0046872": 2,
        "GO:0043167": 3,
        "GO:0005488": 4,
        "GO:0003674": 5,
    }
    assert "GO:0000001" not in graph.index  # obsolete terms are not nodes
