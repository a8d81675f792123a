"""Errors that reach a user: each names the file and line at fault.

A user who feeds a 500 MB UniProt release needs to know *where* it is broken, not a
Python traceback; the CLI prints these and exits non-zero, every other exception is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class InstructProteinError(Exception):
    """Base of every error the CLI reports as a message rather than a traceback."""


class InputError(InstructProteinError):
    """Bad input data, located as precisely as the format allows."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        return f"{where}{self.message}"


class NotFoundError(InstructProteinError, KeyError):
    """A name the user gave (an accession, a GO id, a packaged set) is not there.

    A ``KeyError`` too, so a lookup reads like a mapping's in Python code, while the CLI still
    reports it in one line; a bare ``KeyError`` from anywhere else is a bug and keeps its traceback.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SourceError(InstructProteinError):
    """A data source could not be fetched or unpacked; the message says what to do by hand."""


@dataclass
class SkipLog:
    """Collects bad records when the user asked to skip them (``--skip-bad``).

    Readers take ``skip: SkipLog | None``: with ``None`` the first bad record raises, with a
    log it is counted and reading goes on, so one broken entry in a release does not cost
    the whole run, yet nothing is dropped silently.
    """

    errors: list[InputError] = field(default_factory=list)
    keep: int = 20

    def add(self, error: InputError) -> None:
        self.errors.append(error)

    @property
    def count(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        shown = "\n".join(f"  {e}" for e in self.errors[: self.keep])
        more = f"\n  ... and {self.count - self.keep} more" if self.count > self.keep else ""
        return f"skipped {self.count} bad record(s):\n{shown}{more}" if self.count else "no bad records"


def report(error: InputError, skip: SkipLog | None) -> None:
    """Raise ``error`` unless the caller collects bad records."""
    if skip is None:
        raise error
    skip.add(error)
