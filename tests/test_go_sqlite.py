"""GO.sqlite reader: the real GO.db database (GO 2022-07-01) and broken inputs."""

from __future__ import annotations

import sqlite3

import pytest

from instructprotein.errors import InputError
from instructprotein.formats.go_sqlite import read_go_sqlite
from instructprotein.formats.obo import find_cycle


@pytest.fixture(scope="module")
def go2022(resource):
    return read_go_sqlite(resource("go-sqlite"))


def test_counts_and_version(go2022):
    live = [t for t in go2022.terms.values() if not t.is_obsolete]
    # go_term has 43,559 rows: 43,558 GO terms + GO.db's pseudo-root "all", which is dropped
    assert len(live) == 43558
    assert "all" not in go2022.terms
    assert sum(t.is_obsolete for t in go2022.terms.values()) == 3910  # go_obsolete
    assert go2022.version == "2022-07-01"
    by_ns: dict[str | None, int] = {}
    for t in live:
        by_ns[t.namespace] = by_ns.get(t.namespace, 0) + 1
    assert by_ns == {"biological_process": 28140, "molecular_function": 11238, "cellular_component": 4180}


def test_known_term(go2022):
    zinc = go2022.terms["GO:0008270"]
    assert zinc.name == "zinc ion binding"
    assert zinc.namespace == "molecular_function"
    assert zinc.parents == [("is_a", "GO:0046914")]
    assert zinc.definition == "Binding to a zinc ion (Zn)."
    assert zinc.synonyms == [("zinc binding", ""), ("Zn binding", "")]  # GO.db keeps no scope


def test_null_definition_is_none(go2022):
    assert go2022.terms["GO:0120158"].definition is None
    assert go2022.terms["GO:0000001"].definition is not None


def test_alt_ids_and_obsolete(go2022):
    assert go2022.terms["GO:0000003"].alt_ids == ["GO:0019952", "GO:0050876"]
    assert go2022.resolve("GO:0019952") == "GO:0000003"
    assert sum(len(t.alt_ids) for t in go2022.terms.values()) == 3450
    old = go2022.terms["GO:0000005"]
    assert old.is_obsolete and old.namespace == "molecular_function"
    assert go2022.resolve("GO:0000005") is None  # GO.db stores no replaced_by


def test_relations(go2022):
    counts: dict[str, int] = {}
    for t in go2022.terms.values():
        for rel, parent in t.parents:
            counts[rel] = counts.get(rel, 0) + 1
            assert parent in go2022.terms
    # 70,061 "isa" rows less the three roots' edges to "all"
    assert counts == {
        "is_a": 70058,
        "part_of": 6997,
        "regulates": 3184,
        "positively_regulates": 2732,
        "negatively_regulates": 2742,
    }
    roots = sorted(t.id for t in go2022.terms.values() if not t.parents and not t.is_obsolete)
    assert roots == ["GO:0003674", "GO:0005575", "GO:0008150"]
    assert find_cycle(go2022) is None


def test_not_sqlite(tmp_path):
    path = tmp_path / "GO.sqlite"
    path.write_text("format-version: 1.2\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a SQLite database") as info:
        read_go_sqlite(path)
    assert info.value.path == str(path)


def test_corrupt_sqlite(tmp_path):
    path = tmp_path / "GO.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(InputError) as info:
        read_go_sqlite(path)
    assert info.value.path == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_go_sqlite(tmp_path / "nope.sqlite")


def test_missing_tables(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE go_term (_id INTEGER, go_id TEXT, term TEXT, ontology TEXT, definition TEXT)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="missing table.*go_synonym") as info:
        read_go_sqlite(path)
    assert info.value.path == str(path)


def test_small_database(tmp_path):
    path = tmp_path / "small.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE go_term (_id INTEGER PRIMARY KEY, go_id TEXT, term TEXT, ontology TEXT, definition TEXT);
        CREATE TABLE go_synonym (_id INTEGER, synonym TEXT, secondary TEXT, like_go_id INTEGER);
        CREATE TABLE go_bp_parents (_id INTEGER, _parent_id INTEGER, relationship_type TEXT);
        CREATE TABLE go_mf_parents (_id INTEGER, _parent_id INTEGER, relationship_type TEXT);
        CREATE TABLE go_cc_parents (_id INTEGER, _parent_id INTEGER, relationship_type TEXT);
        INSERT INTO go_term VALUES (1, 'all', 'all', 'universal', NULL),
            (2, 'GO:0008150', 'biological_process', 'BP', 'root'),
            (3, 'GO:0000001', 'a', 'BP', NULL), (4, 'GO:0000002', 'b', 'BP', '');
        INSERT INTO go_synonym VALUES (3, 'alpha', NULL, 0), (3, 'GO:0000009', 'GO:0000009', 1);
        INSERT INTO go_bp_parents VALUES (2, 1, 'isa'), (3, 2, 'isa'), (4, 3, 'part of'),
            (4, 2, 'negatively regulates'), (4, 3, 'has part');
        """
    )
    con.commit()
    con.close()
    onto = read_go_sqlite(path)
    assert set(onto.terms) == {"GO:0008150", "GO:0000001", "GO:0000002"}
    assert onto.version is None
    assert onto.terms["GO:0008150"].parents == []
    assert onto.terms["GO:0000002"].parents == [("part_of", "GO:0000001"), ("negatively_regulates", "GO:0008150")]
    assert onto.terms["GO:0000002"].definition is None
    assert onto.terms["GO:0000001"].synonyms == [("alpha", "")]
    assert onto.resolve("GO:0000009") == "GO:0000001"
