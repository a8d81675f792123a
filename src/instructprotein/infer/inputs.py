"""What a user hands to describe / design / classify, checked before any model runs.

Every problem a user can cause is an :class:`~instructprotein.errors.InputError` that says
what is wrong and where (which input, which line, which character), never a traceback:

- sequences come as plain residue strings (an argument, a web form), FASTA (a file or
  pasted text starting with ``>``) or JSON lines (``{"id": ..., "sequence": ...}`` a line);
- whitespace inside a sequence is dropped, lower case is upper-cased, a final ``*`` is
  dropped and non-standard residues are written as the tokenizer writes them
  (:data:`~instructprotein.prompt.RESIDUE_MAP`: U -> C, O -> K, B/Z/J -> X);
- a digit, gap or any other character is refused with its position; an empty sequence is
  refused;
- a sequence longer than the model reads is cut by the paper's rule (:func:`~instructprotein.prompt.cut_sequence`:
  above 1,024 residues, keep the last 1,000); a prompt that still does not fit the model's
  context is refused by the caller, naming the item (:func:`check_fits`);
- a description for design must be non-empty and at most :data:`MAX_DESCRIPTION_CHARS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from instructprotein.errors import InputError
from instructprotein.formats.fasta import parse_fasta_text, read_fasta, show_char
from instructprotein.formats.textio import numbered_lines, open_text
from instructprotein.prompt import CUT_ABOVE, KEEP_LAST, cut_sequence, normalize_sequence  # noqa: F401 (re-exported)

MAX_DESCRIPTION_CHARS = 2000
"""A design request longer than this is refused: no instruction in training was near it,
and a prompt must leave room in the context for the sequence to be written."""

_PATH_SUFFIXES = (".fa", ".fasta", ".faa", ".fas", ".fna", ".jsonl", ".json", ".gz", ".txt", ".seq")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Query:
    """One sequence to work on: a name for messages and outputs, and its normalised residues."""

    id: str
    sequence: str


def clean_sequence(text: str, name: str = "sequence") -> str:
    """A plain residue string as the model reads it, or :class:`InputError` naming ``name``.

    Whitespace anywhere is dropped (a sequence pasted over several lines), letters are
    upper-cased and mapped by :func:`~instructprotein.prompt.normalize_sequence`.
    """
    if not isinstance(text, str):
        raise InputError(f"{name}: expected a string of residue letters, got {type(text).__name__}")
    seq = _WHITESPACE.sub("", text)
    if seq.endswith("*"):
        seq = seq[:-1]
    if not seq:
        raise InputError(f"{name}: empty sequence")
    for i, ch in enumerate(seq):
        if ch.isdigit():
            raise InputError(
                f"{name}: {ch!r} at position {i + 1} is a digit, not a residue "
                "(give plain residues or FASTA, without position numbers)"
            )
        if ch in "-.":
            raise InputError(f"{name}: {ch!r} at position {i + 1} is an alignment gap; give unaligned sequences")
        if ch == "*":
            raise InputError(f"{name}: '*' (stop) at position {i + 1} is only allowed as the last character")
        if not (ch.isascii() and ch.isalpha()):
            raise InputError(f"{name}: {show_char(ch)} at position {i + 1} is not a residue letter")
    try:  # every ASCII letter is a residue code (RESIDUE_MAP covers B, J, O, U, X, Z)
        return normalize_sequence(seq)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


def check_fits(name: str, tokens: int, context: int, *, reserve: int = 0, what: str = "prompt") -> None:
    """:class:`InputError` unless ``tokens`` (+ ``reserve`` still to come) fit the model's ``context``."""
    if tokens + reserve > context:
        extra = f" plus {reserve} to generate or score" if reserve else ""
        raise InputError(
            f"{name}: the {what} is {tokens} tokens{extra}, but the model reads at most {context}; "
            "give a shorter sequence (or lower cut_above / keep)"
        )


def check_description(text: str, max_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    """A design request with surrounding whitespace removed; empty or overlong is refused."""
    if not isinstance(text, str):
        raise InputError(f"description: expected text, got {type(text).__name__}")
    text = " ".join(text.split())
    if not text:
        raise InputError("description: empty; say what the protein should do, e.g. 'binds zinc ion'")
    if len(text) > max_chars:
        raise InputError(f"description: {len(text)} characters, at most {max_chars} are accepted")
    if "<protein>" in text or "</protein>" in text:
        raise InputError("description: must not contain <protein> tags; describe the protein in words")
    return text


# -- reading many ----------------------------------------------------------------------------------


def read_queries(inputs: str | Path | Iterable[str | Path]) -> list[Query]:
    """Sequences from any mix of plain sequences, pasted FASTA text, FASTA files and JSON lines files.

    A string naming an existing file is read as FASTA (first character ``>``) or JSON lines
    (suffix ``.jsonl``/``.json`` or first character ``{``; each object needs ``sequence`` and
    may have ``id``); a string starting with ``>`` is FASTA text; anything else that looks
    like a file name (a ``/`` or a known suffix) but does not exist is "no such file"; the
    rest is one plain sequence named ``seq1``, ``seq2``... Ids are made unique (``id#2``).
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    queries: list[Query] = []
    plain = 0
    stdin_read = False
    for item in inputs:
        if isinstance(item, str) and item == "-":
            if stdin_read:
                raise InputError("'-' (standard input) given twice")
            stdin_read = True
            queries.extend(_read_text(_stdin_text(), "<stdin>"))
            continue
        if isinstance(item, Path) or _looks_like_file(item):
            queries.extend(_read_file(Path(item)))
            continue
        if not isinstance(item, str):
            raise InputError(f"expected a sequence or a file name, got {type(item).__name__}")
        text = item.strip()
        if text.startswith(">"):
            for rec in parse_fasta_text(text, source="<FASTA text>"):
                queries.append(Query(rec.id, clean_sequence(rec.sequence, f"record {rec.id!r}")))
            continue
        plain += 1
        name = f"seq{plain}"
        queries.append(Query(name, clean_sequence(item, name)))
    if not queries:
        raise InputError("no sequences given")
    return _unique(queries)


def _stdin_text() -> str:
    import sys

    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "'-' reads sequences from standard input, but nothing is piped in "
            "(e.g. `kg show P12345 --fasta | instructprotein describe -`)"
        )
    try:
        return sys.stdin.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"standard input is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:  # closed, or not readable here (a daemon, a test runner capturing it)
        raise InputError(f"cannot read standard input ({exc.strerror or exc})") from None


def _read_text(text: str, source: str) -> list[Query]:
    """FASTA, JSON lines or one plain sequence, from text (standard input)."""
    body = text.strip()
    if not body:
        raise InputError("no sequences", source)
    if body.startswith(">"):
        return [
            Query(r.id, clean_sequence(r.sequence, f"{source}: record {r.id!r}"))
            for r in parse_fasta_text(body, source=source)
        ]
    if body.startswith("{"):
        return _jsonl_queries(enumerate(text.split("\n"), 1), source)
    return [Query("stdin", clean_sequence(body, source))]


def _looks_like_file(item: object) -> bool:
    if isinstance(item, Path):
        return True
    if not isinstance(item, str) or item.lstrip().startswith(">") or "\n" in item.strip():
        return False
    try:
        path = Path(item).expanduser()
        if path.is_dir():
            raise InputError("is a directory, expected a FASTA or JSON lines file (or a sequence)", item)
        if path.is_file():
            return True
    except (OSError, ValueError):  # a name too long for the file system, a NUL: not a file
        return False
    if "/" in item or "\\" in item or item.lower().endswith(_PATH_SUFFIXES):
        raise InputError("no such file", item)
    return False


def _read_file(path: Path) -> list[Query]:
    path = path.expanduser()
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a directory, expected a FASTA or JSON lines file", path)
    with open_text(path) as fh:
        head = fh.read(4096).lstrip()
    if not head:
        raise InputError("empty file", path)
    name = path.name.lower().removesuffix(".gz")
    if head.startswith("{") or name.endswith((".jsonl", ".json")):
        return _read_jsonl(path)
    if head.startswith(">"):
        return [Query(r.id, clean_sequence(r.sequence, f"{path}: record {r.id!r}")) for r in read_fasta(path)]
    raise InputError("neither FASTA (first character '>') nor JSON lines (one object a line)", path)


def _read_jsonl(path: Path) -> list[Query]:
    return _jsonl_queries(numbered_lines(path), path)


def _jsonl_queries(lines: Iterable[tuple[int, str]], path: str | Path) -> list[Query]:
    out: list[Query] = []
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at column {exc.colno}", path, lineno) from None
        except RecursionError:
            raise InputError("not a record: JSON nested too deeply", path, lineno) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("sequence"), str):
            raise InputError("expected an object with a 'sequence' string", path, lineno)
        rid = str(obj.get("id") or obj.get("accession") or obj.get("name") or f"line{lineno}")
        out.append(Query(rid, clean_sequence(obj["sequence"], f"{path}:{lineno}")))
    if not out:
        raise InputError("no records", path)
    return out


def _unique(queries: Sequence[Query]) -> list[Query]:
    seen: dict[str, int] = {}
    out = []
    for q in queries:
        n = seen.get(q.id, 0) + 1
        seen[q.id] = n
        out.append(q if n == 1 else Query(f"{q.id}#{n}", q.sequence))
    return out
