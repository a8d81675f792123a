"""Reader of the Swiss-Prot 2014 set in Debian's ``metastudent-data`` (``dataset_201401``).

The folder (resource ``swissprot-2014``) is the knowledge graph's backbone::

    MFO/ BPO/ CCO/           one folder per GO aspect, each with
        goasp_annot.dat      accession TAB GO id TAB GO id ...  (direct terms, no evidence)
        goasp.fasta.{pin,phr,psq}   BLAST v4 database of the same proteins
    goGraph.txt              parent TAB child TAB 1 TAB relation   (GO of January 2014)
    nameMapping.txt          GO id TAB name
    fullTransitiveClosureGO.txt   closure that also follows regulates: not used, we
                                  propagate over is_a + part_of ourselves

Facts of the data that shape the code (checked on the Debian package):

- ``goasp_annot.dat`` repeats an id once per source annotation line and does not sort
  them, so :func:`read_annotations` returns sorted unique ids;
- in ``goGraph.txt`` obsolete terms hang under pseudo-parents ``obsolete_molecular_function``,
  ``obsolete_biological_process``, ``obsolete_cellular_component``: they become terms with
  ``is_obsolete=True`` (namespace from the pseudo-parent's name) and no edge;
- ``nameMapping.txt`` has two junk rows (``obsolete_cellular_component`` and
  ``systematic_synonym``, leftovers of the OBO header) that :func:`read_name_mapping` sets
  aside and reports.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from instructprotein.errors import InputError, SkipLog, report
from instructprotein.formats.obo import check_cycles
from instructprotein.formats.records import ASPECT_NAMESPACE, GO_ROOTS, TERM_RELATIONS, Ontology, TermRecord
from instructprotein.formats.textio import numbered_lines, open_binary

__all__ = [
    "ASPECT_FOLDERS",
    "GRAPH_VERSION",
    "NameMapping",
    "aspect_folder",
    "metastudent_folder_check",
    "read_annotations",
    "read_go_graph",
    "read_name_mapping",
]

# Aspect code (as in records.ASPECT_NAMESPACE) -> the package's folder name.
ASPECT_FOLDERS = {"F": "MFO", "P": "BPO", "C": "CCO"}
ANNOTATION_FILE = "goasp_annot.dat"
GRAPH_FILE = "goGraph.txt"
NAMES_FILE = "nameMapping.txt"
BLAST_SUFFIXES = ("pin", "phr", "psq")
GRAPH_VERSION = "2014-01"  # the set is "dataset_201401"; goGraph.txt carries no date itself

_GO_ID = re.compile(r"GO:[0-9]{7}")
_ROOT_NAMESPACE = {root: ASPECT_NAMESPACE[aspect] for root, aspect in GO_ROOTS.items()}
_OBSOLETE_PREFIX = "obsolete_"
_ALIASES = {
    **{code: code for code in ASPECT_FOLDERS},
    **{folder: code for code, folder in ASPECT_FOLDERS.items()},
    "molecular_function": "F",
    "biological_process": "P",
    "cellular_component": "C",
}


def aspect_folder(aspect: str) -> str:
    """``"F"`` / ``"MFO"`` / ``"molecular_function"`` -> ``"MFO"`` (the package's folder name)."""
    code = _ALIASES.get(aspect) or _ALIASES.get(aspect.upper())
    if code is None:
        raise ValueError(f"unknown GO aspect {aspect!r}; use F/P/C, MFO/BPO/CCO or a namespace name")
    return ASPECT_FOLDERS[code]


def metastudent_folder_check(folder: str | Path) -> Path:
    """Check the dataset folder has every file the readers use; returns it as a Path.

    Raises one :class:`InputError` that lists *all* missing files, so a partly unpacked
    package is fixed in one go rather than one file per run.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder (expected metastudent-data's dataset_201401)", folder)
    expected = [GRAPH_FILE, NAMES_FILE]
    for sub in ASPECT_FOLDERS.values():
        expected.append(f"{sub}/{ANNOTATION_FILE}")
        expected.extend(f"{sub}/goasp.fasta.{suffix}" for suffix in BLAST_SUFFIXES)
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise InputError(f"metastudent dataset folder lacks {len(missing)} file(s): {', '.join(missing)}", folder)
    return folder


def read_annotations(path: str | Path, aspect: str, skip: SkipLog | None = None) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(accession, sorted unique GO ids)`` per line of a ``goasp_annot.dat``.

    ``path`` is either the dataset folder (the file is then ``<MFO|BPO|CCO>/goasp_annot.dat``
    chosen by ``aspect``) or the annotation file itself; ``aspect`` is F/P/C, MFO/BPO/CCO or
    a namespace name, and names the file's aspect in error messages.

    The file is read whole (about 30 MB per aspect) and split in C; each distinct list of
    ids is checked (regex only for ids not seen before) and sorted once, which is what
    keeps all three aspects (1.3M lines) at a few seconds.
    Blank lines are passed over; a line without an accession, without ids, or with an id
    that is not ``GO:`` + 7 digits is an :class:`InputError` with its line.
    """
    folder_name = aspect_folder(aspect)
    path = Path(path)
    if path.is_dir():
        path = path / folder_name / ANNOTATION_FILE
    return _annotations(path, folder_name, skip)


def _annotations(path: Path, folder_name: str, skip: SkipLog | None) -> Iterator[tuple[str, list[str]]]:
    with open_binary(path) as raw:
        data = raw.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text ({exc.reason})", path, at) from None
    del data
    text = text.lstrip("\ufeff")  # a byte-order mark left by some Windows editors
    if not text.strip():
        raise InputError(f"empty file: no {folder_name} annotations", path, 1)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # Proteins share annotation sets (1.3M lines hold ~150k distinct id lists), so each
    # distinct tail of a line is split, checked and sorted once and then looked up.
    done: dict[str, tuple[str, ...]] = {}
    valid: set[str] = set()
    for number, line in enumerate(text.split("\n"), 1):
        accession, _, tail = line.partition("\t")
        if not accession or " " in accession:
            if not line.strip():
                continue
            why = (
                "no accession before the GO ids"
                if not accession.strip()
                else (f"expected 'accession TAB GO ids', got {line[:60]!r}")
            )
            report(InputError(f"{folder_name}: {why}", path, number), skip)
            continue
        ids = done.get(tail)
        if ids is None:
            unique = set(tail.split("\t")) if tail else set()
            if not unique:
                report(InputError(f"{folder_name}: {accession}: no GO ids after the accession", path, number), skip)
                continue
            if not unique <= valid:
                bad = sorted(i for i in unique - valid if not _GO_ID.fullmatch(i))
                if bad:
                    report(InputError(f"{folder_name}: {accession}: malformed GO id {bad[0]!r}", path, number), skip)
                    continue
                valid |= unique
            ids = done[tail] = tuple(sorted(unique))
        yield accession, list(ids)


@dataclass
class NameMapping:
    """``nameMapping.txt``: names by GO id, plus the non-GO rows that were set aside."""

    names: dict[str, str]
    junk: list[tuple[int, str]] = field(default_factory=list)  # (line, first column)


def read_name_mapping(path: str | Path, skip: SkipLog | None = None) -> NameMapping:
    """Read ``GO id TAB name`` rows; rows whose first column is not a GO id are set aside.

    The package's file has two such rows (see the module doc); they are kept in
    ``junk`` rather than dropped silently. A GO row without a name, or a GO id named twice,
    is an :class:`InputError`.
    """
    path = Path(path)
    names: dict[str, str] = {}
    junk: list[tuple[int, str]] = []
    seen_line = False
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        seen_line = True
        go_id, sep, name = line.partition("\t")
        go_id = go_id.strip()
        if not _GO_ID.fullmatch(go_id):
            junk.append((number, go_id))
            continue
        name = name.strip()
        if not sep or not name:
            report(InputError(f"{go_id} has no name", path, number), skip)
            continue
        if go_id in names:
            report(InputError(f"{go_id} named twice", path, number), skip)
            continue
        names[go_id] = name
    if not seen_line:
        raise InputError("empty file: no GO names", path, 1)
    return NameMapping(names, junk)


def read_go_graph(folder: str | Path, skip: SkipLog | None = None) -> Ontology:
    """Read ``goGraph.txt`` + ``nameMapping.txt`` of the dataset folder into an :class:`Ontology`.

    Edges with a relation outside :data:`TERM_RELATIONS` are dropped (none in the package).
    Namespaces are derived by walking down from the three GO roots over ``is_a`` (which
    never crosses aspects), then ``part_of`` for anything ``is_a`` did not reach; obsolete
    terms get theirs from the pseudo-parent's name. Errors (bad rows, a cycle over
    is_a + part_of) are :class:`InputError` with the line in ``goGraph.txt``.
    """
    folder = Path(folder)
    graph_path = folder / GRAPH_FILE
    names_path = folder / NAMES_FILE
    missing = [p.name for p in (graph_path, names_path) if not p.is_file()]
    if missing:
        raise InputError(f"GO graph folder lacks {', '.join(missing)}", folder)
    names = read_name_mapping(names_path, skip).names

    terms: dict[str, TermRecord] = {}
    edge_lines: dict[str, dict[tuple[str, str], int]] = {}

    def term(go_id: str, line: int) -> TermRecord:
        rec = terms.get(go_id)
        if rec is None:
            rec = terms[go_id] = TermRecord(id=go_id, name=names.get(go_id, ""), line=line)
        return rec

    seen_line = False
    for number, line in numbered_lines(graph_path):
        if not line.strip():
            continue
        seen_line = True
        cols = line.split("\t")
        if len(cols) != 4:
            report(InputError(f"expected 4 tab-separated columns, got {len(cols)}", graph_path, number), skip)
            continue
        parent, child, _, relation = (c.strip() for c in cols)
        if not _GO_ID.fullmatch(child):
            report(InputError(f"child {child!r} is not a GO id", graph_path, number), skip)
            continue
        if parent.startswith(_OBSOLETE_PREFIX):
            namespace = parent[len(_OBSOLETE_PREFIX) :]
            if namespace not in _ROOT_NAMESPACE.values():
                report(InputError(f"unknown obsolete pseudo-parent {parent!r}", graph_path, number), skip)
                continue
            rec = term(child, number)
            rec.is_obsolete = True
            rec.namespace = namespace
            continue
        if not _GO_ID.fullmatch(parent):
            report(InputError(f"parent {parent!r} is not a GO id", graph_path, number), skip)
            continue
        term(parent, number)
        rec = term(child, number)
        if relation not in TERM_RELATIONS:
            continue
        edge = (relation, parent)
        lines = edge_lines.setdefault(child, {})
        if edge not in lines:
            lines[edge] = number
            rec.parents.append(edge)
    if not seen_line:
        raise InputError("empty file: no GO edges", graph_path, 1)

    for go_id, name in names.items():  # named but in no edge: keep it, it may be annotated
        if go_id not in terms:
            terms[go_id] = TermRecord(id=go_id, name=name)

    _assign_namespaces(terms)
    ontology = Ontology(terms=terms, source=str(graph_path), version=GRAPH_VERSION)
    check_cycles(ontology, edge_lines, graph_path, skip)
    return ontology


def _assign_namespaces(terms: dict[str, TermRecord]) -> None:
    """Give each live term the namespace of the root it descends from (breadth first)."""
    children: dict[str, dict[str, list[str]]] = {"is_a": {}, "part_of": {}}
    for rec in terms.values():
        for rel, parent in rec.parents:
            if rel in children:
                children[rel].setdefault(parent, []).append(rec.id)
    for rel in ("is_a", "part_of"):
        queue = deque(t.id for t in terms.values() if t.namespace is not None and not t.is_obsolete)
        for root, namespace in _ROOT_NAMESPACE.items():
            if root in terms and terms[root].namespace is None:
                terms[root].namespace = namespace
                queue.append(root)
        while queue:
            node = queue.popleft()
            inherited = terms[node].namespace
            for child in children[rel].get(node, ()):
                rec = terms[child]
                if rec.namespace is None:
                    rec.namespace = inherited
                    queue.append(child)
