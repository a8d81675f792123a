"""The knowledge graph on real releases, checked against the raw files read independently.

Two real subsets: the 100 Swiss-Prot entries of Debian's emboss-test with the 2013 GO
OBO (UniProt path), and a deterministic 0.3 % sample of the Swiss-Prot 2014 set of
metastudent-data built through the CLI (the embedded default path).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from instructprotein.formats.obo import read_obo
from instructprotein.formats.records import GO_ROOTS
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.store import KnowledgeGraph


@pytest.fixture(scope="module")
def go2013(resource):
    return read_obo(resource("go-obo-2013"))


@pytest.fixture(scope="module")
def swiss_kg(resource, go2013, tmp_path_factory):
    out = tmp_path_factory.mktemp("kg") / "swiss.sqlite"
    build_from_uniprot([resource("swiss-sample")], go2013, out)
    with KnowledgeGraph(out) as kg:
        yield kg


def raw_entries(path):
    """accession -> (GO ids, InterPro ids) straight from the flat file's text."""
    entries: dict[str, tuple[list[str], set[str]]] = {}
    acc = None
    for line in path.read_text().splitlines():
        if line.startswith("AC   ") and acc is None:
            acc = line[5:].split(";")[0].strip()
            entries[acc] = ([], set())
        elif line.startswith("DR   GO; ") and acc:
            entries[acc][0].append(line.split(";")[1].strip())
        elif line.startswith("DR   InterPro; ") and acc:
            entries[acc][1].add(line.split(";")[1].strip())
        elif line.startswith("//"):
            acc = None
    return entries


def test_every_swissprot_entry_keeps_exactly_its_go_terms(swiss_kg, resource, go2013):
    raw = raw_entries(resource("swiss-sample"))
    assert swiss_kg.count("protein") == len(raw) == 100
    total = 0
    for acc, (go_ids, interpro) in raw.items():
        expected = {go2013.resolve(g) for g in go_ids} - {None} - set(GO_ROOTS)
        assert {a.entity.id for a in swiss_kg.direct_annotations(acc, kind="go")} == expected, acc
        assert {a.entity.id for a in swiss_kg.direct_annotations(acc, kind="interpro")} == interpro, acc
        total += len(go_ids)
    assert total == 636  # DR GO lines in the file (grep -c)
    assert swiss_kg.build_counts()["annotations_in"] == 636


def test_propagated_terms_are_the_closure_of_direct_ones(swiss_kg, go2013):
    parents = defaultdict(set)
    for term in go2013.terms.values():
        for rel, parent in term.parents:
            if rel in ("is_a", "part_of"):
                parents[term.id].add(parent)

    def up(term: str) -> set[str]:
        seen, stack = set(), [term]
        while stack:
            t = stack.pop()
            if t not in seen:
                seen.add(t)
                stack.extend(parents[t])
        return seen

    for acc in swiss_kg.accessions()[1:]:
        direct = {a.entity.id for a in swiss_kg.direct_annotations(acc, kind="go")}
        expected = set().union(*(up(t) for t in direct)) - set(GO_ROOTS) if direct else set()
        assert {a.entity.id for a in swiss_kg.propagated_annotations(acc)} == expected, acc


@pytest.mark.integration
def test_metastudent_sample_through_the_cli(resource, tmp_path):
    folder = resource("swissprot-2014")
    out = tmp_path / "kg.sqlite"
    result = subprocess.run(
        [sys.executable, "-m", "instructprotein.cli", "kg", "build", "--sample", "0.003", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    with KnowledgeGraph(out) as kg:
        accessions = set(kg.accessions()[1:])
        assert 1000 < len(accessions) < 2100  # 0.3 % of 516,371
        # the MF annotation file, read line by line here, must agree protein by protein
        checked = 0
        for line in (folder / "MFO" / "goasp_annot.dat").read_text().splitlines():
            acc, *ids = line.split("\t")
            if acc in accessions:
                expected = set(ids) - set(GO_ROOTS)
                assert {a.entity.id for a in kg.direct_annotations(acc, aspect="F")} == expected, acc
                checked += 1
        assert checked > 800
        zinc = kg.entity("GO:0008270")
        assert zinc.name == "zinc ion binding" and zinc.definition  # text filled from the 2013 OBO
        assert re.match(r"[0-9a-f]{64}$", kg.meta["content_hash"])
    stats = subprocess.run(
        [sys.executable, "-m", "instructprotein.cli", "kg", "stats", "--kg", str(out), "--json"],
        capture_output=True,
        text=True,
    )
    data = json.loads(stats.stdout)
    assert data["proteins"] == len(accessions)
    assert data["frequency"]["F"]["propagated"]["gini"] > data["frequency"]["F"]["direct"]["gini"] * 0.9
