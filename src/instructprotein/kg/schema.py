"""SQLite schema of the knowledge graph.

Why SQLite: it is in the standard library, a build is one file that any process (and any
language) opens read-only while another reads it, and indexed point queries (one protein's
annotations, one term's proteins) take milliseconds without loading the graph. Bulk
analytics (frequencies, sampling weights) read whole columns into numpy instead.

Only *direct* annotations are stored; propagated ones are computed through ``closure``
(term -> every ancestor over is_a + part_of, itself included at distance 0), so direct and
propagated can never be confused and the file stays small.
"""

SCHEMA_VERSION = "1"

# Relation name of a protein -> entity triple, by (entity kind, GO aspect).
PROTEIN_RELATIONS = {
    ("go", "F"): "enables",
    ("go", "P"): "involved_in",
    ("go", "C"): "located_in",
    ("interpro", None): "has_signature",
    ("pfam", None): "has_signature",
    ("prosite", None): "has_signature",
    ("keyword", None): "has_keyword",
    ("location", None): "found_in",
}

DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE protein (
    pid INTEGER PRIMARY KEY,
    accession TEXT NOT NULL UNIQUE,
    entry_name TEXT,
    name TEXT,
    organism TEXT,
    taxon_id INTEGER,
    length INTEGER NOT NULL,
    sequence TEXT NOT NULL,
    function TEXT,
    location TEXT
);
CREATE TABLE protein_alias (alias TEXT PRIMARY KEY, pid INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE entity (
    eid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    aspect TEXT,
    name TEXT,
    definition TEXT
);
CREATE TABLE entity_alias (alias TEXT PRIMARY KEY, eid INTEGER NOT NULL, why TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE synonym (eid INTEGER NOT NULL, text TEXT NOT NULL, scope TEXT);
CREATE TABLE edge (
    child INTEGER NOT NULL, parent INTEGER NOT NULL, relation TEXT NOT NULL,
    PRIMARY KEY (child, parent, relation)
) WITHOUT ROWID;
CREATE TABLE closure (
    eid INTEGER NOT NULL, ancestor INTEGER NOT NULL, distance INTEGER NOT NULL,
    PRIMARY KEY (eid, ancestor)
) WITHOUT ROWID;
CREATE TABLE annotation (
    pid INTEGER NOT NULL, eid INTEGER NOT NULL, evidence TEXT,
    PRIMARY KEY (pid, eid)
) WITHOUT ROWID;
-- The pids of each entity's direct annotations, packed as sorted little-endian int32: a
-- "proteins under this term" query concatenates a few thousand blobs instead of walking
-- millions of index rows (root-level terms: tens of ms instead of seconds).
CREATE TABLE entity_pids (eid INTEGER PRIMARY KEY, pids BLOB NOT NULL);
CREATE TABLE entity_stats (eid INTEGER PRIMARY KEY, direct INTEGER NOT NULL, propagated INTEGER NOT NULL);
"""

# Built after the bulk load: building an index once is far cheaper than maintaining it row by row.
INDEXES = """
CREATE INDEX closure_by_ancestor ON closure (ancestor, eid);
CREATE INDEX annotation_by_entity ON annotation (eid, pid);
CREATE INDEX edge_by_parent ON edge (parent, child);
CREATE INDEX synonym_by_entity ON synonym (eid);
CREATE INDEX entity_by_kind ON entity (kind, aspect);
"""
