"""OBO reader: GO 2013 and ChEBI from emboss-data, plus broken files written here."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SkipLog
from instructprotein.formats.obo import find_cycle, read_obo
from instructprotein.formats.records import Ontology, TermRecord


@pytest.fixture(scope="module")
def go2013(resource):
    return read_obo(resource("go-obo-2013"))


# ---------------------------------------------------------------- real GO 2013 (go.obo)


def test_go_counts_and_version(go2013):
    # grep -c '^\[Term\]' go.obo -> 39616; grep -c '^is_obsolete: true' -> 1775
    assert len(go2013.terms) == 39616
    assert sum(t.is_obsolete for t in go2013.terms.values()) == 1775
    assert go2013.version == "2013-07-13"
    namespaces = {t.namespace for t in go2013.terms.values()}
    assert namespaces == {"molecular_function", "biological_process", "cellular_component"}


def test_go_known_term(go2013):
    zinc = go2013.terms["GO:0008270"]
    assert zinc.name == "zinc ion binding"
    assert zinc.namespace == "molecular_function"
    assert zinc.aspect == "F"
    assert zinc.parents == [("is_a", "GO:0046914")]
    assert zinc.synonyms == [("zinc binding", "EXACT")]
    assert zinc.definition == "Interacting selectively and non-covalently with zinc (Zn) ions."
    assert not zinc.is_obsolete


def test_go_relations_kept_and_dropped(go2013):
    assert go2013.terms["GO:0044445"].parents == [("is_a", "GO:0044444"), ("part_of", "GO:0005829")]
    assert ("regulates", "GO:0006351") in go2013.terms["GO:0006355"].parents
    # SAGA complex: "relationship: has_part GO:0071819" is not a parent
    assert go2013.terms["GO:0000124"].parents == [("is_a", "GO:0070461")]
    counts: dict[str, int] = {}
    for term in go2013.terms.values():
        for rel, _ in term.parents:
            counts[rel] = counts.get(rel, 0) + 1
    # 62186 is_a lines in the file, 3 of them in [Typedef] stanzas
    assert counts == {
        "is_a": 62183,
        "part_of": 7194,
        "regulates": 2680,
        "positively_regulates": 2259,
        "negatively_regulates": 2288,
    }


def test_go_definition_unescaped(go2013):
    text = go2013.terms["GO:0002191"].definition
    assert text is not None and text.startswith('The process where the "Cap structure" (composed')
    assert "\\" not in text


def test_go_resolve(go2013):
    assert go2013.resolve("GO:0008270") == "GO:0008270"
    # alt_id of reproduction
    assert go2013.terms["GO:0000003"].alt_ids == ["GO:0019952", "GO:0050876"]
    assert go2013.resolve("GO:0019952") == "GO:0000003"
    # repairosome: obsolete, replaced_by nucleotide-excision repair complex
    assert go2013.terms["GO:0000108"].is_obsolete
    assert go2013.resolve("GO:0000108") == "GO:0000109"
    # ribosomal chaperone activity: obsolete with three `consider`, no replacement
    assert go2013.terms["GO:0000005"].consider == ["GO:0042254", "GO:0044183", "GO:0051082"]
    assert go2013.resolve("GO:0000005") is None
    # alt id of an obsolete term that has only `consider`
    assert go2013.resolve("GO:0000013") is None
    assert go2013.resolve("GO:9999999") is None


def test_go_is_acyclic(go2013):
    assert find_cycle(go2013) is None
    assert find_cycle(go2013, relations=("is_a", "part_of", "regulates")) is None


def test_go_namespace_filter(resource):
    mf = read_obo(resource("go-obo-2013"), namespaces=["molecular_function"])
    assert len(mf.terms) == 10482
    assert {t.namespace for t in mf.terms.values()} == {"molecular_function"}
    assert all(p in mf.terms for t in mf.terms.values() for _, p in t.parents)


def test_chebi_reads(resource):
    skip = SkipLog()
    chebi = read_obo(resource("chebi-obo"), skip=skip)
    assert skip.count == 0
    assert len(chebi.terms) == 41136
    assert chebi.version == "105"
    zinc = chebi.terms["CHEBI:27363"]
    assert zinc.name == "zinc atom"
    assert zinc.namespace == "chebi_ontology"  # from the header's default-namespace
    assert zinc.parents == [("is_a", "CHEBI:33340")]
    assert ("zinc", "EXACT") in zinc.synonyms and ("Zn", "RELATED") in zinc.synonyms
    # ChEBI's relationships (has_role, is_conjugate_acid_of, ...) are not kept
    assert {rel for t in chebi.terms.values() for rel, _ in t.parents} == {"is_a"}


# ---------------------------------------------------------------- small files

HEADER = "format-version: 1.2\ndata-version: test/2024\ndefault-namespace: test_ns\n\n"


def write(tmp_path: Path, body: str, name: str = "t.obo") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_small_file_features(tmp_path):
    path = write(
        tmp_path,
        "[Term]\nid: X:1\nname: root\nnamespace: molecular_function\n\n"
        "[Term]\nid: X:2\nname: child ! not a comment in names? it is, per OBO\n"
        'def: "Says \\"hi\\"." [ref:1]\n'
        'synonym: "kid" NARROW [ref:2]\n'
        'synonym: "kiddo" []\n'
        'exact_synonym: "child term" []\n'
        'is_a: X:1 {source="x"} ! root\n'
        "relationship: part_of X:1 ! root\n"
        "relationship: has_part X:1\n"
        "intersection_of: X:1\n"
        "xref: some:thing\n\n"
        "[Typedef]\nid: part_of\nname: part of\nis_a: undefined_rel ! no check for typedefs\n\n"
        "[Term]\nid: X:3\nname: old\nis_obsolete: true\nreplaced_by: X:2\nalt_id: X:4\n",
    )
    onto = read_obo(path)
    assert onto.version == "test/2024"
    assert set(onto.terms) == {"X:1", "X:2", "X:3"}
    child = onto.terms["X:2"]
    assert child.name == "child"
    assert child.definition == 'Says "hi".'
    assert child.synonyms == [("kid", "NARROW"), ("kiddo", "RELATED"), ("child term", "EXACT")]
    assert child.parents == [("is_a", "X:1"), ("part_of", "X:1")]
    assert child.namespace == "test_ns"
    assert child.line == 11
    assert onto.resolve("X:4") == "X:2"


def test_gzip_file(tmp_path):
    path = tmp_path / "t.obo.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(HEADER + "[Term]\nid: X:1\nname: a\n")
    assert list(read_obo(path).terms) == ["X:1"]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.obo"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty file") as info:
        read_obo(path)
    assert info.value.path == str(path)


def test_no_terms(tmp_path):
    with pytest.raises(InputError, match=r"no \[Term\]"):
        read_obo(write(tmp_path, "[Typedef]\nid: part_of\n"))


def test_not_obo(tmp_path):
    path = tmp_path / "x.obo"
    path.write_text(">sp|P1\nMKT\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_obo(path)
    assert info.value.line == 1


def test_stanza_without_id(tmp_path):
    path = write(tmp_path, "[Term]\nid: X:1\nname: a\n\n[Term]\nname: lost\n")
    with pytest.raises(InputError, match="without an id") as info:
        read_obo(path)
    assert info.value.line == 9  # the [Term] header of the stanza
    skip = SkipLog()
    assert list(read_obo(path, skip=skip).terms) == ["X:1"]
    assert skip.count == 1


def test_duplicate_id(tmp_path):
    path = write(tmp_path, "[Term]\nid: X:1\nname: a\n\n[Term]\nid: X:1\nname: b\n")
    with pytest.raises(InputError, match="duplicate term id X:1 .first defined at line 6") as info:
        read_obo(path)
    assert info.value.line == 10


def test_undefined_parent(tmp_path):
    path = write(
        tmp_path, "[Term]\nid: X:1\nname: a\n\n[Term]\nid: X:2\nname: b\nis_a: X:1\nrelationship: part_of X:9\n"
    )
    with pytest.raises(InputError, match="X:9 is not defined") as info:
        read_obo(path)
    assert info.value.line == 13
    skip = SkipLog()
    onto = read_obo(path, skip=skip)
    assert onto.terms["X:2"].parents == [("is_a", "X:1")]
    assert skip.count == 1


def test_cycle(tmp_path):
    path = write(
        tmp_path,
        "[Term]\nid: X:1\nname: a\nis_a: X:3\n\n"
        "[Term]\nid: X:2\nname: b\nis_a: X:1\n\n"
        "[Term]\nid: X:3\nname: c\nrelationship: part_of X:2\n\n"
        "[Term]\nid: X:4\nname: d\nis_a: X:1\n",
    )
    with pytest.raises(InputError, match="cycle") as info:
        read_obo(path)
    message = str(info.value)
    assert all(t in message for t in ("X:1", "X:2", "X:3")) and "X:4" not in message
    assert info.value.line in {8, 13, 18}  # a line stating one of the cycle's edges
    skip = SkipLog()
    onto = read_obo(path, skip=skip)
    assert skip.count == 1
    assert find_cycle(onto) is None


def test_regulates_cycle_is_not_a_propagation_cycle(tmp_path):
    path = write(
        tmp_path,
        "[Term]\nid: X:1\nname: a\nrelationship: regulates X:2\n\n"
        "[Term]\nid: X:2\nname: b\nrelationship: regulates X:1\n",
    )
    onto = read_obo(path)
    assert find_cycle(onto) is None
    assert sorted(find_cycle(onto, relations=("regulates",)) or []) == ["X:1", "X:2"]


def test_find_cycle_deep_chain_no_recursion():
    n = 10_000  # far past Python's recursion limit (1000)
    terms = {f"T:{i}": TermRecord(id=f"T:{i}", name="", parents=[("is_a", f"T:{i + 1}")]) for i in range(n)}
    terms[f"T:{n}"] = TermRecord(id=f"T:{n}", name="")
    onto = Ontology(terms=terms, source="memory")
    assert find_cycle(onto) is None
    terms[f"T:{n}"].parents.append(("part_of", "T:0"))
    cycle = find_cycle(onto)
    assert cycle is not None and len(cycle) == n + 1


def test_unclosed_quote(tmp_path):
    path = write(tmp_path, '[Term]\nid: X:1\nname: a\ndef: "never closed [x]\n')
    with pytest.raises(InputError, match="quoted") as info:
        read_obo(path)
    assert info.value.line == 8
