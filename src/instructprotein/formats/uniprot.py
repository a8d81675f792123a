"""UniProtKB flat-file reader (Swiss-Prot / TrEMBL ``.dat``, plain or gzip), streaming.

Hand-written rather than ``Bio.SwissProt``: the knowledge graph needs only a dozen line
types, errors must carry the file and line (Biopython's do not), and a reader that skips the
reference and feature lines it does not need is faster on a full release.

Both dialects met in practice are read: the current one (``DE   RecName: Full=...``,
evidence tags ``{ECO:...}`` after names, keywords and comments) and the pre-2008 one
(``DE   Name precursor (Synonym) (EC 1.2.3.4).``, no evidence tags, ``(By similarity)``
qualifiers); the Debian ``emboss-test`` sample (``swiss-sample``) is a May 2012 release,
current dialect without evidence tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from instructprotein.errors import InputError, SkipLog, report
from instructprotein.formats.records import CrossRef, GoAnnotation, ProteinEntry
from instructprotein.formats.textio import numbered_lines

# Line types that feed a ProteinEntry; every other two-letter code (DT, GN, OG, R*, FT, PE,
# ...) is only checked for shape and skipped.
_USED = frozenset({"AC", "DE", "OS", "OC", "OX", "KW", "CC", "DR", "SQ", "  "})
_XREF_DBS = {"InterPro": "interpro", "Pfam": "pfam", "PROSITE": "prosite"}
_DR_USED = ("DR   GO;", "DR   InterPro;", "DR   Pfam;", "DR   PROSITE;")

_EVIDENCE = re.compile(r"\s*\{ECO:[^}]*\}")
# Inline literature citations of post-2015 comments: "(PubMed:123, PubMed:456)".
_PUBMED = re.compile(r"\s*\((?:PubMed:\d+(?:,\s*)?)+\)")
_QUALIFIER = re.compile(r"\s*\((?:By similarity|Probable|Potential)\)")
_ISOFORM_PREFIX = re.compile(r"^\[[^\]]*\]:\s*")
_NAME = re.compile(r"(?:RecName|SubName):\s*Full=([^;]+);")
_TAXID = re.compile(r"NCBI_TaxID=(\d+)")
_SQ = re.compile(r"SQ   SEQUENCE\s+(\d+)\s+AA;")
_GO_ID = re.compile(r"GO:\d{7}")
_SPACES = re.compile(r"\s+")


def _clean(text: str) -> str:
    """Drop evidence tags and PubMed citations, collapse whitespace."""
    return _SPACES.sub(" ", _PUBMED.sub("", _EVIDENCE.sub("", text))).strip()


def parse_locations(text: str) -> list[str]:
    """Location names of one SUBCELLULAR LOCATION comment, in order, without repeats.

    ``"Cytoplasm. Nucleus. Note=..."`` -> ``["Cytoplasm", "Nucleus"]``;
    ``"Membrane; Single-pass membrane protein."`` -> ``["Membrane"]`` (topology dropped);
    an ``[Isoform 2]:`` prefix, ``Note=`` text, evidence tags and ``(By similarity)`` /
    ``(Probable)`` / ``(Potential)`` qualifiers are ignored.
    """
    names: list[str] = []
    text = _ISOFORM_PREFIX.sub("", _clean(text))
    text = text.split("Note=", 1)[0]
    for statement in re.split(r"\.(?:\s+|$)", text):
        name = _QUALIFIER.sub("", statement.split(";", 1)[0]).strip().rstrip(".")
        if name and name not in names:
            names.append(name)
    return names


def _protein_name(de_lines: list[str]) -> str:
    """The recommended (Swiss-Prot) or submitted (TrEMBL) full name; old dialect as fallback."""
    text = " ".join(part.strip() for part in de_lines)
    match = _NAME.search(text)
    if match:
        return _clean(match.group(1))
    if "Full=" in text or not text:
        return ""
    # Pre-2008: "Name precursor (Synonym) (EC x.x.x.x) [Includes: ...] (Fragment)."
    name = text.split(" [", 1)[0].split(" (", 1)[0]
    return _clean(name).rstrip(".")


class _Entry:
    """Lines of one entry as they are read; :meth:`build` checks and assembles them."""

    __slots__ = (
        "line",
        "entry_name",
        "accessions",
        "de",
        "os",
        "oc",
        "taxon_id",
        "kw",
        "comments",
        "topic",
        "go",
        "interpro",
        "pfam",
        "prosite",
        "sq_line",
        "sq_length",
        "seq",
    )

    def __init__(self, line: int, id_text: str, path: str | Path) -> None:
        self.line = line
        fields = id_text[5:].split()
        if not fields:
            raise InputError("ID line has no entry name", path, line)
        self.entry_name = fields[0].rstrip(";")
        self.accessions: list[str] = []
        self.de: list[str] = []
        self.os: list[str] = []
        self.oc: list[str] = []
        self.taxon_id: int | None = None
        self.kw: list[str] = []
        self.comments: list[list[str]] = []  # [topic, text, text, ...] per "-!-" block
        self.topic: list[str] | None = None  # the open block, continued by indented CC lines
        self.go: list[GoAnnotation] = []
        self.interpro: list[CrossRef] = []
        self.pfam: list[CrossRef] = []
        self.prosite: list[CrossRef] = []
        self.sq_line = 0
        self.sq_length = -1
        self.seq: list[str] = []

    def add(self, code: str, line: str, lineno: int, path: str | Path) -> None:
        """Take one line of the entry (``code`` is its first two characters)."""
        if code == "  ":
            if not self.sq_line:
                raise InputError(f"entry {self.entry_name}: sequence data before the SQ line", path, lineno)
            residues = line.replace(" ", "")
            if not (residues.isalpha() and residues.isascii()):
                col, ch = next((i + 1, c) for i, c in enumerate(line) if c != " " and not (c.isascii() and c.isalpha()))
                message = f"entry {self.entry_name}: {ch!r} at column {col} is not a residue letter"
                raise InputError(message, path, lineno)
            self.seq.append(residues)
        elif code == "CC":
            text = line[5:]
            if text.startswith("-!- "):
                topic, _, body = text[4:].partition(":")
                self.topic = [topic.strip(), body.strip()]
                self.comments.append(self.topic)
            elif text.startswith("    ") and self.topic is not None:
                self.topic.append(text.strip())
            else:  # the "-----" copyright block that closes the comments
                self.topic = None
        elif code == "DR":
            if line.startswith(_DR_USED):
                self._xref(line, lineno, path)
        elif code == "AC":
            self.accessions.extend(a for a in (s.strip() for s in line[5:].split(";")) if a)
        elif code == "DE":
            self.de.append(line[5:])
        elif code == "OS":
            self.os.append(line[5:].strip())
        elif code == "OC":
            self.oc.append(line[5:].strip())
        elif code == "KW":
            self.kw.append(line[5:].strip())
        elif code == "OX":
            match = _TAXID.search(line)
            if match is None:
                raise InputError(f"entry {self.entry_name}: OX line without NCBI_TaxID=<number>", path, lineno)
            if self.taxon_id is None:
                self.taxon_id = int(match.group(1))
        elif code == "SQ":
            match = _SQ.match(line)
            if match is None:
                expected = "expected 'SQ   SEQUENCE <n> AA;'"
                raise InputError(f"entry {self.entry_name}: malformed SQ line ({expected})", path, lineno)
            if self.sq_line:
                message = f"entry {self.entry_name}: second SQ line (first at line {self.sq_line})"
                raise InputError(message, path, lineno)
            self.sq_line, self.sq_length = lineno, int(match.group(1))

    def _xref(self, line: str, lineno: int, path: str | Path) -> None:
        fields = [f.strip() for f in line[5:].strip().removesuffix(".").split(";")]
        db = fields[0]
        if len(fields) < 3 or not fields[1]:
            raise InputError(f"entry {self.entry_name}: malformed {db} cross-reference", path, lineno)
        if db == "GO":
            go_id, term = fields[1], fields[2]
            aspect = term[:1]
            if not _GO_ID.fullmatch(go_id) or aspect not in ("F", "P", "C") or term[1:2] != ":":
                expected = "expected 'GO; GO:nnnnnnn; F|P|C:name; CODE:source'"
                raise InputError(f"entry {self.entry_name}: malformed GO cross-reference ({expected})", path, lineno)
            # the last field: a ';' inside a term name must not shift the evidence code
            evidence = fields[-1].split(":", 1)[0].strip() if len(fields) > 3 else ""
            self.go.append(GoAnnotation(go_id, aspect, evidence if evidence not in ("", "-") else None))
        else:
            name = _clean(fields[2])
            getattr(self, _XREF_DBS[db]).append(CrossRef(db=db, id=fields[1], name="" if name == "-" else name))

    def _comment(self, topic: str) -> str | None:
        texts = [" ".join(block[1:]) for block in self.comments if block[0] == topic]
        return _clean(" ".join(texts)) if texts else None

    def build(self, path: str | Path) -> ProteinEntry:
        """Check the entry is complete and turn it into a :class:`ProteinEntry`."""
        name = self.entry_name
        if not self.accessions:
            raise InputError(f"entry {name} has no AC line (accession)", path, self.line)
        if not self.sq_line:
            raise InputError(f"entry {name} has no SQ line (sequence)", path, self.line)
        sequence = "".join(self.seq).upper()
        if len(sequence) != self.sq_length:
            raise InputError(
                f"entry {name}: SQ line declares {self.sq_length} residues but the sequence has {len(sequence)}",
                path,
                self.sq_line,
            )
        if not sequence:
            raise InputError(f"entry {name} has an empty sequence", path, self.sq_line)
        keywords = [k.strip() for k in _clean(" ".join(self.kw)).removesuffix(".").split(";")]
        taxonomy = [t.strip() for t in " ".join(self.oc).removesuffix(".").split(";")]
        location_blocks = [" ".join(b[1:]) for b in self.comments if b[0] == "SUBCELLULAR LOCATION"]
        locations: list[str] = []
        for block in location_blocks:
            locations.extend(loc for loc in parse_locations(block) if loc not in locations)
        return ProteinEntry(
            accession=self.accessions[0],
            sequence=sequence,
            entry_name=name,
            secondary_accessions=self.accessions[1:],
            protein_name=_protein_name(self.de),
            organism=_clean(" ".join(self.os)).removesuffix("."),
            taxonomy=[t for t in taxonomy if t],
            taxon_id=self.taxon_id,
            go=self.go,
            interpro=self.interpro,
            pfam=self.pfam,
            prosite=self.prosite,
            keywords=[k for k in keywords if k],
            function=self._comment("FUNCTION"),
            subcellular_location=self._comment("SUBCELLULAR LOCATION"),
            locations=locations,
            line=self.line,
        )


# A flat-file line: two capital letters then three spaces (or nothing), or a sequence line.
_LINE_SHAPE = re.compile(r"[A-Z]{2}(?:   |$)|     ")


def read_uniprot(path: str | Path, skip: SkipLog | None = None, check_unique: bool = True) -> Iterator[ProteinEntry]:
    """Stream the entries of a UniProtKB flat file (plain or gzip), in file order.

    Each entry must have ID, AC and SQ lines, a sequence of letters whose length matches the
    SQ line, and end with ``//``. A bad entry raises :class:`InputError` (file and line), or
    with ``skip`` is logged there and reading resumes at the next ``//`` or ``ID`` line. A
    primary accession seen twice is an error naming both lines; ``check_unique=False`` turns
    the check (and its set of accessions, ~100 bytes an entry) off for TrEMBL-size files.
    An empty file, a broken gzip stream or bytes that are not UTF-8 always raise.
    """
    seen: dict[str, int] = {}
    entry: _Entry | None = None
    skipping = False  # inside a bad entry: wait for its "//" or the next "ID"
    any_content = False

    for lineno, line in numbered_lines(path):
        if not line or line.isspace():
            continue
        any_content = True
        code = line[:2]
        if skipping:
            if code == "//":
                skipping = False
                continue
            if code != "ID":
                continue
            skipping = False
        ready: ProteinEntry | None = None
        try:
            if code == "//":
                if entry is None:
                    raise InputError("'//' without an entry before it (missing ID line?)", path, lineno)
                current, entry = entry, None
                protein = current.build(path)
                if check_unique:
                    first = seen.get(protein.accession)
                    if first is not None:
                        raise InputError(
                            f"duplicate accession {protein.accession}: entry {protein.entry_name} at line "
                            f"{current.line} repeats the entry at line {first}",
                            path,
                            current.line,
                        )
                    seen[protein.accession] = current.line
                ready = protein
            elif code == "ID":
                started, entry = entry, None
                if started is not None:  # logged in skip mode; the new entry is read on
                    report(
                        InputError(
                            f"entry {started.entry_name} (line {started.line}) does not end with '//' "
                            "before the next ID line",
                            path,
                            lineno,
                        ),
                        skip,
                    )
                entry = _Entry(lineno, line, path)
            elif not _LINE_SHAPE.match(line):
                raise InputError(f"not a UniProt flat-file line: {line[:40]!r}", path, lineno)
            elif entry is None:
                raise InputError(f"entry does not start with an ID line (found {code!r} line)", path, lineno)
            elif code in _USED:
                entry.add(code, line, lineno, path)
        except InputError as error:
            report(error, skip)
            if code != "//":  # after '//' the bad entry is over already
                entry, skipping = None, True
        if ready is not None:  # yielded outside the try: a consumer's error is not ours to log
            yield ready

    if entry is not None:
        report(
            InputError(f"entry {entry.entry_name} is truncated: the file ends before its '//' line", path, entry.line),
            skip,
        )
    if not any_content:
        raise InputError("no UniProt entries (empty file)", path)
