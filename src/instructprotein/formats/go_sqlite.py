"""Reader of ``GO.sqlite`` from Bioconductor's GO.db package (Debian ``r-bioc-go.db``).

It is the newest GO release reachable here (2022-07-01, against the 2013 ``go.obo`` of
emboss-data), so it is where term names and definitions for the text corpus come from.

What the schema holds and how it maps onto :class:`TermRecord`:

- ``go_term(_id, go_id, term, ontology, definition)``: live terms; ``ontology`` is BP/MF/CC.
  The table also holds GO.db's own pseudo-root ``all`` (ontology ``universal``) above the
  three GO roots; it is not a GO term and is dropped together with the roots' edges to it.
  Definitions are NULL for every term from GO:0120158 up in this release; they stay ``None``
  rather than becoming empty strings, so a corpus builder can tell "no text" from "".
- ``go_obsolete(go_id, term, ontology, definition)``: obsolete terms, kept with
  ``is_obsolete=True``. GO.db does not store ``replaced_by`` / ``consider``, so
  :meth:`Ontology.resolve` maps them to ``None`` (unknown replacement), which is still
  better than not knowing the id at all.
- ``go_synonym(_id, synonym, secondary, like_go_id)``: rows with ``like_go_id = 1`` are
  secondary (alternative) GO ids (``secondary`` holds the id) and become ``alt_ids``; the
  others are text synonyms. GO.db drops the synonym scope, so the scope is ``""``
  (unknown) rather than a guessed EXACT.
- ``go_{bp,mf,cc}_parents(_id, _parent_id, relationship_type)`` with types spelt
  ``isa``, ``part of``, ``regulates``, ``positively regulates``, ``negatively regulates``;
  these map onto :data:`TERM_RELATIONS`, any other type is dropped.
- ``map_metadata`` / ``metadata``: the GO release date, used as ``Ontology.version``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from instructprotein.errors import InputError
from instructprotein.formats.records import TERM_RELATIONS, Ontology, TermRecord

__all__ = ["read_go_sqlite", "SQLITE_NAMESPACE"]

SQLITE_NAMESPACE = {"BP": "biological_process", "MF": "molecular_function", "CC": "cellular_component"}
_REQUIRED_TABLES = ("go_term", "go_synonym", "go_bp_parents", "go_mf_parents", "go_cc_parents")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _relation(kind: str) -> str | None:
    """GO.db's spelling (``isa``, ``part of``) -> the OBO relation name, None if not kept."""
    name = "is_a" if kind == "isa" else kind.strip().replace(" ", "_")
    return name if name in TERM_RELATIONS else None


def _connect(path: Path) -> sqlite3.Connection:
    """Open read-only, after checking the file really is SQLite (for a clear message)."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected GO.sqlite", path) from None
    except PermissionError:
        raise InputError("permission denied", path) from None
    if magic != _SQLITE_MAGIC:
        raise InputError("not a SQLite database (expected GO.sqlite of Bioconductor's GO.db)", path)
    # mode=ro: the file usually lives in a shared, read-only package tree; never create
    # journals next to it or change it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _version(con: sqlite3.Connection, tables: set[str]) -> str | None:
    if "map_metadata" in tables:
        row = con.execute("SELECT source_date FROM map_metadata WHERE map_name = 'TERM'").fetchone()
        if row and row[0]:
            return str(row[0])
    if "metadata" in tables:
        row = con.execute("SELECT value FROM metadata WHERE name = 'GOSOURCEDATE'").fetchone()
        if row and row[0]:
            return str(row[0])
    return None


def read_go_sqlite(path: str | Path) -> Ontology:
    """Read GO.db's ``GO.sqlite`` into an :class:`Ontology` (live and obsolete terms).

    Raises :class:`InputError` naming the file when it is not SQLite, lacks one of the
    GO.db tables, or cannot be read.
    """
    path = Path(path)
    con = _connect(path)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in _REQUIRED_TABLES if t not in tables]
        if missing:
            raise InputError(f"not a GO.db database: missing table(s) {', '.join(missing)}", path)

        terms: dict[str, TermRecord] = {}
        by_rowid: dict[int, TermRecord] = {}
        for rowid, go_id, name, ontology, definition in con.execute(
            "SELECT _id, go_id, term, ontology, definition FROM go_term ORDER BY go_id"
        ):
            namespace = SQLITE_NAMESPACE.get(ontology)
            if namespace is None:  # GO.db's pseudo-root "all" (ontology "universal")
                continue
            rec = TermRecord(id=go_id, name=name, namespace=namespace, definition=definition or None)
            terms[go_id] = rec
            by_rowid[rowid] = rec

        if "go_obsolete" in tables:
            for go_id, name, ontology, definition in con.execute(
                "SELECT go_id, term, ontology, definition FROM go_obsolete ORDER BY go_id"
            ):
                if go_id in terms:  # a live term wins; never seen in GO.db, but cheap to guard
                    continue
                terms[go_id] = TermRecord(
                    id=go_id,
                    name=name,
                    namespace=SQLITE_NAMESPACE.get(ontology),
                    definition=definition or None,
                    is_obsolete=True,
                )

        for rowid, synonym, secondary, like_go_id in con.execute(
            "SELECT _id, synonym, secondary, like_go_id FROM go_synonym ORDER BY rowid"
        ):
            owner = by_rowid.get(rowid)
            if owner is None:
                continue
            if like_go_id:
                alt = secondary or synonym
                if alt not in owner.alt_ids and alt not in terms:
                    owner.alt_ids.append(alt)
            else:
                owner.synonyms.append((synonym, ""))

        for table in ("go_bp_parents", "go_mf_parents", "go_cc_parents"):
            for child, parent, kind in con.execute(
                f"SELECT _id, _parent_id, relationship_type FROM {table} ORDER BY rowid"  # noqa: S608 - fixed names
            ):
                rel = _relation(kind)
                crec, prec = by_rowid.get(child), by_rowid.get(parent)
                if rel is None or crec is None or prec is None:  # other relation, or the "all" root
                    continue
                edge = (rel, prec.id)
                if edge not in crec.parents:
                    crec.parents.append(edge)

        version = _version(con, tables)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot read GO.sqlite: {exc}", path) from None
    finally:
        con.close()
    return Ontology(terms=terms, source=str(path), version=version)
