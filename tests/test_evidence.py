"""Evidence blocks, compartments and fitting a protein into a short context."""

from __future__ import annotations

import random

import pytest

import helpers_model as h
from instructprotein.instruct.compartments import Compartments, location_text, view_compartments
from instructprotein.instruct.evidence import HomologFacts, evidence_block, fit_residues, with_evidence
from instructprotein.instruct.facts import GraphFacts, ViewFacts
from instructprotein.instruct.generate import Evidence, GenerateOptions, instructions_for_protein
from instructprotein.instruct.kgview import KGView
from instructprotein.instruct.negatives import NegativeSampler
from instructprotein.kg.store import KnowledgeGraph


def test_fit_residues_keeps_both_ends():
    seq = "ABCDEFGHIJKLMNOPQRST"
    assert fit_residues(seq, 20) == seq and fit_residues(seq, 25) == seq
    cut = fit_residues(seq, 9)  # 8 residues + one X: 6 from the N terminus, 2 from the C terminus
    assert cut == "ABCDEF" + "X" + "ST" and len(cut) == 9
    assert fit_residues(seq, 2) == "AB"
    with pytest.raises(ValueError):
        fit_residues(seq, 0)


def test_block_formats():
    facts = [
        HomologFacts(0.629, terms=("zinc ion binding",), location="nucleus (nucleolus)", carries=True),
        HomologFacts(0.41, carries=None),
    ]
    assert evidence_block("general", facts) == (
        "Homologs: 62% identical: zinc ion binding. 41% identical: no GO annotation."
    )
    assert (
        evidence_block("location", facts)
        == "Homologs: 62% identical: nucleus (nucleolus). 41% identical: location unknown."
    )
    assert evidence_block("term", facts, "metal ion binding") == (
        "Homologs with metal ion binding? 62% identical: yes. 41% identical: unknown."
    )
    assert evidence_block("location", []) == "Homologs: none found."
    assert (
        with_evidence("Q?", "Homologs: none found.") == "Homologs: none found.\nQ?"
        and with_evidence("Q?", None) == "Q?"
    )
    with pytest.raises(ValueError):
        evidence_block("term", facts)
    with pytest.raises(ValueError):
        evidence_block("colour", facts)


def test_compartments_most_specific_and_ignored():
    ancestors = {
        "mito_inner": {"mito_inner", "mito", "cyto"},
        "mito": {"mito", "cyto"},
        "cyto": {"cyto"},
        "exosome": {"exosome", "extra"},
        "nuc": {"nuc"},
    }
    anchors = {"mitochondrion": "mito", "cytoplasm": "cyto", "extracellular": "extra", "nucleus": "nuc"}
    c = Compartments.build(ancestors, ancestors.__getitem__, anchors, ["exosome"])
    assert c.of_terms(["mito_inner", "cyto"]) == ["mitochondrion"]  # cytoplasm is more general
    assert c.of_terms(["exosome"]) == []  # vesicle proteomics says nothing about secretion
    assert c.of_terms(["nuc", "cyto"]) == ["nucleus", "cytoplasm"]  # both kept, in priority order
    assert location_text(["mitochondrion"], ["mitochondrial inner membrane", "mitochondrion"]) == (
        "mitochondrion (mitochondrial inner membrane)"
    )
    assert location_text([], ["integral component of membrane"]) == "integral component of membrane"
    assert location_text(["nucleus", "cytoplasm"], []) == "nucleus and cytoplasm"


def test_view_and_graph_facts_agree():
    """Training prompts (view) and inference prompts (SQLite) say the same about a homolog."""
    view = KGView(h.kg_path())
    with KnowledgeGraph(h.kg_path()) as kg:
        gf, vf = GraphFacts(kg), ViewFacts(view)
        accs = ["P20001", "P20002", "P20005", "P20007"]
        pairs = [(a, 0.5) for a in accs]
        vpairs = [(view.pid_of[a], 0.5) for a in accs]
        for kind, term in (("general", None), ("location", None), ("term", "GO:0046872"), ("term", "GO:0006281")):
            want = evidence_block(kind, gf.facts(pairs, kind, term), term and kg.entity(term).name)
            got = evidence_block(
                kind,
                vf.facts(vpairs, kind, view.eid_of[term] if term else None),
                term and view.names[view.eid_of[term]],
            )
            assert got == want, kind
    assert view_compartments(view) is view_compartments(view)  # built once per view


def test_generator_writes_evidence_and_compartment_answers():
    view = KGView(h.kg_path())
    sampler = NegativeSampler(view)
    homologs = {view.pid_of["P20001"]: [(view.pid_of["P20007"], 0.62)]}
    ev = Evidence(ViewFacts(view), homologs)
    opts = GenerateOptions(evidence_fraction=1.0)
    insts = instructions_for_protein(view, "P20001", random.Random(0), sampler, opts, ev)
    by_task = {i.task: i for i in insts}
    loc = by_task["location"]
    assert "Homologs: 62% identical: nucleus (nuclear lumen).\n" in loc.prompt
    assert loc.answer.split(".")[0].endswith("nucleus")  # the compartment word leads the answer
    if "yes_no" in by_task:
        assert "Homologs with " in by_task["yes_no"].prompt
    assert "Homologs: 62% identical: " in by_task["function"].prompt
    assert "Homologs" not in by_task["design"].prompt  # text -> protein: no retrieval
    none = instructions_for_protein(
        view, "P20001", random.Random(0), sampler, GenerateOptions(evidence_fraction=0.0), ev
    )
    assert not any("Homologs" in i.prompt for i in none)
    unsearched = instructions_for_protein(view, "P20002", random.Random(0), sampler, opts, ev)
    assert not any("Homologs" in i.prompt for i in unsearched)
