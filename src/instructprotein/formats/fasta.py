"""FASTA reading and writing, streaming and strict.

Sequences reach the model one residue per token, so a stray digit, gap or stop codon in the
middle of a sequence would become a silent, wrong token; the reader rejects such records
with the file, line and column instead. It streams (UniRef-size files never sit in memory)
and reads gzip transparently (by magic bytes, see :mod:`instructprotein.formats.textio`).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from instructprotein.atomic import atomic_path
from instructprotein.errors import InputError, SkipLog, report
from instructprotein.formats.records import SequenceRecord
from instructprotein.formats.textio import numbered_lines

# The 20 standard amino acids plus the IUPAC extras that real releases contain:
# X (unknown), U (selenocysteine), O (pyrrolysine), B (D or N), Z (E or Q).
# They are accepted here as they are; mapping the non-standard ones onto tokens the model
# knows happens later, in the tokenizer, which is the one place that knows the vocabulary.
STANDARD_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
PROTEIN_ALPHABET = STANDARD_AMINO_ACIDS + "XUBZO"

_DROP_WHITESPACE = str.maketrans("", "", " \t\r\v\f")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""Upper-casing by ASCII only: ``str.upper`` turns the long s (U+017F) into 'S' and the
dotless i into 'I', which would let a look-alike pass as a residue."""


def show_char(ch: str) -> str:
    """``'K'`` for a plain character, ``'K' (U+212A KELVIN SIGN)`` for any other: a look-alike
    printed as itself reads as a residue the user did type."""
    import unicodedata

    if ch.isascii() and ch.isprintable():
        return repr(ch)
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')})"


def _bad_char_pattern(alphabet: str | None) -> re.Pattern[str]:
    """Regex matching the first character that is neither a residue nor whitespace.

    With ``alphabet=None`` only ``*`` is matched, so that a final stop is still stripped and
    a stop inside a sequence is still refused. ASCII-only case folding: lower-case residues
    are fine, but no Unicode look-alike (such as the Kelvin sign) passes as a letter.
    """
    if alphabet is None:
        return re.compile(r"\*")
    return re.compile("[^" + re.escape(alphabet) + r"\s]", re.IGNORECASE | re.ASCII)


def _describe_bad_char(ch: str, alphabet: str | None) -> str:
    if ch == "-" or ch == ".":
        return f"{ch!r} (alignment gap) is not a residue; give unaligned sequences"
    if ch == "*":
        return "'*' (stop) is only allowed as the last character of a sequence"
    if ch.isdigit():
        return f"{ch!r} is a digit, not a residue (numbered sequence lines are not FASTA)"
    what = "protein residue" if alphabet == PROTEIN_ALPHABET else f"residue of alphabet {alphabet!r}"
    return f"{show_char(ch)} is not a {what}"


def _parse(
    lines: Iterable[tuple[int, str]],
    source: str | Path,
    skip: SkipLog | None,
    alphabet: str | None,
    check_unique: bool,
) -> Iterator[SequenceRecord]:
    """The one FASTA state machine behind :func:`read_fasta` and :func:`parse_fasta_text`."""
    bad_char = _bad_char_pattern(alphabet)
    seen: dict[str, int] = {}
    header: tuple[str, str, int] | None = None  # (id, description, line) of the record being read
    parts: list[str] = []
    stop: tuple[int, int] | None = None  # (line, column) of a '*' that must stay the last residue
    skipping = False  # current record is bad: ignore its lines until the next header
    any_header = False

    def finish() -> SequenceRecord | None:
        assert header is not None
        rid, desc, hline = header
        sequence = "".join(parts).translate(_DROP_WHITESPACE).translate(_ASCII_UPPER)
        if not sequence:
            report(InputError(f"record {rid!r} has an empty sequence", source, hline), skip)
            return None
        if check_unique:
            first = seen.get(rid)
            if first is not None:
                report(InputError(f"duplicate id {rid!r} (first at line {first})", source, hline), skip)
                return None
            seen[rid] = hline
        return SequenceRecord(id=rid, description=desc, sequence=sequence, line=hline)

    for lineno, line in lines:
        if line.startswith(">"):
            if header is not None and not skipping:
                record = finish()
                if record is not None:
                    yield record
            any_header = True
            header, parts, stop, skipping = None, [], None, False
            title = line[1:].strip()
            if not title:
                report(InputError("header has no id ('>' with nothing after it)", source, lineno), skip)
                skipping = True
                continue
            fields = title.split(None, 1)
            header = (fields[0], fields[1] if len(fields) > 1 else "", lineno)
            continue
        if skipping or not line.strip():
            continue
        if header is None:
            # Only possible before the first header: the file as a whole is not FASTA, which
            # no skipping of records can repair, so this raises even with ``skip``.
            raise InputError("sequence data before the first '>' header (is this a FASTA file?)", source, lineno)
        if stop is not None:
            sline, scol = stop
            report(
                InputError(
                    f"record {header[0]!r}: '*' (stop) at column {scol} is followed by more sequence", source, sline
                ),
                skip,
            )
            skipping = True
            continue
        match = bad_char.search(line)
        if match is not None:
            ch, col = match.group(), match.start() + 1
            if ch == "*" and not line[match.end() :].strip():
                stop = (lineno, col)
                line = line[: match.start()]
            else:
                report(
                    InputError(
                        f"record {header[0]!r}: {_describe_bad_char(ch, alphabet)} (column {col})", source, lineno
                    ),
                    skip,
                )
                skipping = True
                continue
        parts.append(line)

    if header is not None and not skipping:
        record = finish()
        if record is not None:
            yield record
    if not any_header:
        raise InputError("no FASTA records (empty file)", source)


def read_fasta(
    path: str | Path,
    skip: SkipLog | None = None,
    alphabet: str | None = PROTEIN_ALPHABET,
    check_unique: bool = False,
) -> Iterator[SequenceRecord]:
    """Stream the records of a FASTA file (plain or gzip).

    ``id`` is the header's first word, ``description`` the rest; whitespace inside sequence
    lines is dropped, residues upper-cased and one final ``*`` stripped. Every residue must
    be in ``alphabet`` (``None`` accepts any character). A bad record raises
    :class:`InputError`, or with ``skip`` is logged there and reading resumes at the next
    header. Duplicate ids are allowed unless ``check_unique`` (a set of ids costs memory).
    An empty file, or one not starting with a header, always raises.
    """
    yield from _parse(numbered_lines(path), path, skip, alphabet, check_unique)


def parse_fasta_text(
    text: str,
    source: str = "<string>",
    skip: SkipLog | None = None,
    alphabet: str | None = PROTEIN_ALPHABET,
    check_unique: bool = False,
) -> list[SequenceRecord]:
    """Parse FASTA pasted by a user, by the same rules as :func:`read_fasta`.

    ``source`` names the text in error messages (``<string>:3: ...``).
    """
    lines = ((i, line.removesuffix("\r")) for i, line in enumerate(text.split("\n"), 1))
    return list(_parse(lines, source, skip, alphabet, check_unique))


def write_fasta(records: Iterable[SequenceRecord], path: str | Path, width: int = 60) -> int:
    """Write records as FASTA, atomically; gzip-compressed if ``path`` ends in ``.gz``.

    Returns the number of records written. Ids containing whitespace, headers containing a
    line break and empty sequences are refused (``ValueError``): they would not read back as
    the same records.
    """
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    path = Path(path)
    count = 0
    with atomic_path(path) as tmp:
        if path.name.endswith(".gz"):
            # mtime=0: the same records give the same bytes (reproducible outputs)
            fh = gzip.GzipFile(filename="", mode="wb", fileobj=open(tmp, "wb"), mtime=0)
        else:
            fh = open(tmp, "wb")  # type: ignore[assignment]
        try:
            for rec in records:
                if not rec.id or rec.id.split() != [rec.id]:
                    raise ValueError(f"FASTA id must be one non-empty word, got {rec.id!r}")
                if "\n" in rec.description or "\r" in rec.description:
                    raise ValueError(f"description of {rec.id!r} contains a line break")
                if not rec.sequence:
                    raise ValueError(f"sequence of {rec.id!r} is empty")
                head = f">{rec.id} {rec.description}" if rec.description else f">{rec.id}"
                body = "\n".join(rec.sequence[i : i + width] for i in range(0, len(rec.sequence), width))
                fh.write(f"{head}\n{body}\n".encode())
                count += 1
        finally:
            inner = fh.fileobj if isinstance(fh, gzip.GzipFile) else None
            fh.close()
            if inner is not None:
                inner.close()
    return count
