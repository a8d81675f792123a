"""Open a data file as text whether or not it is gzip-compressed, with errors that name it.

Releases come as ``.dat.gz`` / ``.fasta.gz`` as often as plain; users also rename files, so
compression is decided by the gzip magic bytes (``1f 8b``), never by the suffix alone. The
one use of the suffix is a check: a file called ``*.gz`` that is not gzip is almost always a
failed or partial download saved under the final name, so it is refused instead of being
parsed as text and failing later with a confusing message.

A truncated or corrupt gzip stream only shows itself while being read, deep inside a
reader's loop; both helpers turn that into an :class:`InputError` that names the file (and,
for :func:`numbered_lines`, the line reached), never a bare ``EOFError`` or ``zlib.error``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from instructprotein.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
ENCODING = "utf-8"
_BUFFER = 1 << 20

# What a broken gzip stream raises, at open or at any later read.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path) from None
    except PermissionError:
        raise InputError("permission denied", path) from None


@contextlib.contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary stream of the file's (decompressed) content; see :func:`open_text`."""
    compressed = is_gzip(path)
    if not compressed and str(path).endswith(".gz"):
        raise InputError("named .gz but is not gzip-compressed (a broken or partial download?)", path)
    # A large buffer in front of GzipFile halves the cost of line iteration over it.
    if compressed:
        stream: BinaryIO = io.BufferedReader(gzip.open(path, "rb"), _BUFFER)  # type: ignore[arg-type]
    else:
        stream = open(path, "rb", buffering=_BUFFER)
    with stream:
        try:
            yield stream
        except _GZIP_ERRORS as exc:
            raise InputError(f"corrupt or truncated gzip file ({exc or type(exc).__name__})", path) from exc


@contextlib.contextmanager
def open_text(path: str | Path) -> Iterator[TextIO]:
    """Yield a UTF-8 text stream of the file, decompressing gzip transparently.

    Decided by magic bytes: a gzip file without ``.gz`` is decompressed; a ``.gz`` file that
    is not gzip raises :class:`InputError`. Read errors of a corrupt or truncated gzip, and
    bytes that are not UTF-8, raised anywhere inside the ``with`` block become
    :class:`InputError` naming the file (without a line: use :func:`numbered_lines` for that).
    """
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=ENCODING, newline=None)  # type: ignore[arg-type]
        try:
            yield text
        except UnicodeDecodeError as exc:
            raise InputError(f"not {ENCODING} text ({exc.reason})", path) from exc
        finally:
            with contextlib.suppress(ValueError):  # already closed by the caller
                text.detach()  # ``open_binary`` closes the underlying stream


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(lineno, line)`` for each line, 1-based, the line ending (``\\n``/``\\r\\n``) removed.

    Lines are decoded one by one so that a byte that is not UTF-8, and the point where a
    truncated gzip stream ends, are reported with the exact line number.
    """
    lineno = 0
    with open_binary(path) as raw:
        try:
            for lineno, data in enumerate(raw, 1):  # noqa: B007 - lineno used after the loop
                try:
                    line = data.decode(ENCODING)
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"not {ENCODING} text: byte 0x{data[exc.start]:02x} at column {exc.start + 1}", path, lineno
                    ) from exc
                yield lineno, line.rstrip("\r\n")
        except _GZIP_ERRORS as exc:
            raise InputError(
                f"corrupt or truncated gzip file, ends after line {lineno} ({exc or type(exc).__name__})",
                path,
                lineno + 1,
            ) from exc
