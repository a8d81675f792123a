"""Knowledge causal chains on the hand-checked tiny graph (tests/data/tiny.*) and on a
small graph with a cross-aspect GO edge (MF part_of BP, as newer GO releases have)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from instructprotein.formats.obo import read_obo
from instructprotein.instruct.chains import (
    Chain,
    ChainStep,
    chain_text,
    chains_for_protein,
    cross_aspect_chain,
    go_chain,
    go_path_chain,
)
from instructprotein.instruct.kgview import KGView
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.store import KnowledgeGraph

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kg") / "tiny.sqlite"
    build_from_uniprot([DATA / "tiny.dat"], read_obo(DATA / "tiny.obo"), out)
    return out


@pytest.fixture(scope="module", params=["store", "view"])
def graph(request, tiny_path):
    """Every chain function must give the same answer on KnowledgeGraph and KGView."""
    g = KnowledgeGraph(tiny_path) if request.param == "store" else KGView(tiny_path)
    yield g
    g.close()


def test_zinc_chain_goes_up_to_metal_and_stops_before_the_root(graph):
    chain = go_chain(graph, "GO:0008270", max_steps=3)
    assert [s.term_name for s in chain.steps] == [
        "zinc ion binding",
        "transition metal ion binding",
        "metal ion binding",
    ]
    assert [s.relation for s in chain.steps] == ["is_a", "is_a", ""]
    assert chain_text(chain) == (
        "zinc ion binding is a kind of transition metal ion binding, which is a kind of metal ion binding"
    )
    full = go_chain(graph, "GO:0008270", max_steps=99)
    assert [s.term_id for s in full.steps] == ["GO:0008270", "GO:0046914", "GO:0046872", "GO:0043167", "GO:0005488"]
    assert "GO:0003674" not in full.term_ids  # the root says nothing
    assert [s.kind for s in full.steps] == ["F"] * 5


def test_part_of_chain_reads_as_part_of(graph):
    chain = go_chain(graph, "GO:0031981")
    assert chain_text(chain) == "nuclear lumen is part of nucleus, which is a kind of organelle"


def test_path_chain_explains_a_propagated_term(graph):
    chain = go_path_chain(graph, "GO:0008270", "GO:0046872")
    assert chain is not None and chain.term_ids == ["GO:0008270", "GO:0046914", "GO:0046872"]
    assert go_path_chain(graph, "GO:0046872", "GO:0008270") is None  # not an ancestor
    assert go_path_chain(graph, "GO:0006355", "GO:0006351") is None  # regulates does not propagate
    assert go_path_chain(graph, "GO:0008270", "GO:0008270").term_ids == ["GO:0008270"]


def test_cross_aspect_chain_function_process_location(graph):
    chain = cross_aspect_chain(graph, "Q00001")
    assert chain is not None and chain.kind == "cross_aspect"
    assert [(s.term_id, s.relation, s.kind) for s in chain.steps] == [
        ("GO:0008270", "contributes_to", "F"),
        ("GO:0006355", "occurs_in", "P"),
        ("GO:0031981", "", "C"),
    ]
    assert chain_text(chain) == (
        "It binds zinc ion, which takes part in regulation of DNA-templated transcription, in the nuclear lumen."
    )


def test_cross_aspect_chain_starts_from_the_interpro_domain(graph):
    chain = cross_aspect_chain(graph, "Q00002")
    assert chain is not None
    assert [s.kind for s in chain.steps] == ["interpro", "F"]
    # most specific MF: zinc ion binding, not its ancestor metal ion binding (also direct)
    assert chain.steps[1].term_id == "GO:0008270"
    assert chain_text(chain) == "Its Znf_C2H2_type domain lets it bind zinc ion."


def test_protein_without_annotations_has_no_chains(graph):
    assert cross_aspect_chain(graph, "Q00003") is None
    assert chains_for_protein(graph, "Q00003") == []


def test_chains_for_protein_lists_hierarchy_then_cross(graph):
    chains = chains_for_protein(graph, "Q00001")
    assert [c.kind for c in chains] == ["hierarchy", "hierarchy", "cross_aspect"]
    assert chains[0].steps[0].term_id == "GO:0008270" and chains[1].steps[0].term_id == "GO:0031981"


def test_wording_variants_are_seeded():
    steps = [
        ChainStep("IPR1", "Kinase_dom", "enables", "interpro"),
        ChainStep("GO:1", "protein kinase activity", "contributes_to", "F"),
        ChainStep("GO:2", "protein phosphorylation", "occurs_in", "P"),
        ChainStep("GO:3", "cytoplasm", "", "C"),
    ]
    chain = Chain(steps, "cross_aspect")
    assert chain_text(chain) == (
        "Its Kinase_dom domain lets it have protein kinase activity, which takes part in protein phosphorylation,"
        " in the cytoplasm."
    )
    texts = {chain_text(chain, random.Random(seed)) for seed in range(30)}
    assert len(texts) > 5
    assert chain_text(chain, random.Random(7)) == chain_text(chain, random.Random(7))
    for text in texts:
        assert "Kinase_dom" in text and "protein phosphorylation" in text and text.endswith("cytoplasm.")
    # partial chains still read as sentences
    assert (
        chain_text(Chain(steps[1:3], "cross_aspect"))
        == "It has protein kinase activity, which takes part in protein phosphorylation."
    )
    assert chain_text(Chain(steps[2:], "cross_aspect")) == "It takes part in protein phosphorylation, in the cytoplasm."
    assert chain_text(Chain(steps[:1], "cross_aspect")) == ""


def test_kgview_matches_the_store(tiny_path):
    kg, view = KnowledgeGraph(tiny_path), KGView(tiny_path)
    for term in ("GO:0008270", "GO:0031981", "GO:0006355", "GO:0005488", "GO:0099901"):
        assert view.ancestor_chain(term) == kg.ancestor_chain(term)
        assert view.ancestors(term) == kg.ancestors(term)
        assert view.parents(term) == kg.parents(term)
        assert view.children(term) == kg.children(term)
        assert view.entity(term) == kg.entity(term)
    for acc in ("Q00001", "Q00002", "Q00003", "Q99991"):
        assert view.propagated_annotations(acc) == kg.propagated_annotations(acc)
        assert [a.entity for a in view.direct_annotations(acc)] == [a.entity for a in kg.direct_annotations(acc)]
        assert view.protein(acc) == kg.protein(acc)


# -- a GO edge between aspects is used as the link --------------------------------------------

CROSS_OBO = """format-version: 1.2

[Term]
id: GO:0003674
name: molecular_function
namespace: molecular_function

[Term]
id: GO:0003824
name: catalytic activity
namespace: molecular_function
is_a: GO:0003674 ! molecular_function

[Term]
id: GO:0004672
name: protein kinase activity
namespace: molecular_function
is_a: GO:0003824 ! catalytic activity
relationship: part_of GO:0006468 ! protein phosphorylation

[Term]
id: GO:0008150
name: biological_process
namespace: biological_process

[Term]
id: GO:0006468
name: protein phosphorylation
namespace: biological_process
is_a: GO:0008150 ! biological_process

[Term]
id: GO:0023052
name: signaling
namespace: biological_process
is_a: GO:0008150 ! biological_process

[Term]
id: GO:0007165
name: signal transduction
namespace: biological_process
is_a: GO:0023052 ! signaling

[Term]
id: GO:0005575
name: cellular_component
namespace: cellular_component

[Term]
id: GO:0005737
name: cytoplasm
namespace: cellular_component
is_a: GO:0005575 ! cellular_component
"""

CROSS_DAT = """ID   KIN1_HUMAN              Reviewed;           8 AA.
AC   Q20001;
DE   RecName: Full=Test kinase;
OS   Homo sapiens (Human).
OX   NCBI_TaxID=9606;
DR   GO; GO:0005737; C:cytoplasm; IDA:UniProtKB.
DR   GO; GO:0004672; F:protein kinase activity; IDA:UniProtKB.
DR   GO; GO:0007165; P:signal transduction; IDA:UniProtKB.
DR   GO; GO:0006468; P:protein phosphorylation; IDA:UniProtKB.
DR   InterPro; IPR000719; Prot_kinase_dom.
SQ   SEQUENCE   8 AA;  900 MW;  0000000000000000 CRC64;
     MKLVVAAG
//
"""


@pytest.fixture(scope="module")
def cross_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cross")
    (folder / "go.obo").write_text(CROSS_OBO)
    (folder / "kin.dat").write_text(CROSS_DAT)
    out = folder / "kg.sqlite"
    build_from_uniprot([folder / "kin.dat"], read_obo(folder / "go.obo"), out)
    return out


@pytest.mark.parametrize("kind", ["store", "view"])
def test_cross_aspect_edge_picks_the_linked_process(cross_path, kind):
    g = KnowledgeGraph(cross_path) if kind == "store" else KGView(cross_path)
    chain = cross_aspect_chain(g, "Q20001")
    assert chain is not None
    assert go_chain(g, "GO:0007165").term_ids == ["GO:0007165", "GO:0023052"]  # deeper than phosphorylation
    # protein phosphorylation is chosen over the deeper signal transduction because GO links it
    # to the function
    assert [(s.term_id, s.relation) for s in chain.steps] == [
        ("IPR000719", "enables"),
        ("GO:0004672", "part_of"),
        ("GO:0006468", "occurs_in"),
        ("GO:0005737", ""),
    ]
    assert chain_text(chain) == (
        "Its Prot_kinase_dom domain lets it have protein kinase activity, as part of protein phosphorylation,"
        " in the cytoplasm."
    )
