"""One set of rules for the numbers and texts a user gives describe / design / classify.

The CLI and the HTTP API used to check parameters each in their own way (the CLI took
``--length -5`` and wrote "about -5 residues" into the prompt; the API took ``"n": true`` as
1). Both now read their bounds from :data:`RULES`: the CLI through :func:`check` (an
:class:`~instructprotein.errors.InputError` before the model loads), the API through
:func:`field` (the same bounds in the request schema, so ``/openapi.json`` shows them and a
violation is a 422 naming the field). A server may set tighter limits on top (its
``Limits``: how much work one request may ask for); those are about load, not validity.

Integers are strict (a boolean is not a number of designs); floats must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from instructprotein.errors import InputError

MAX_SEED = 2**63 - 1
"""Seeds are 64-bit (what ``torch.manual_seed`` takes)."""
MAX_OPTION_CHARS = 1000
"""A classify option longer than this is refused as such (an answer, not a document)."""
MAX_QUESTION_CHARS = 2000
"""A classify question or answer prefix longer than this is refused."""


@dataclass(frozen=True)
class Bound:
    """The valid range of one parameter: ``low`` (exclusive when ``low_open``) to ``high``."""

    kind: type
    low: float
    high: float
    low_open: bool = False
    what: str = ""

    def describe(self) -> str:
        if self.kind is int:
            return f"an integer from {_num(self.low)} to {_num(self.high)}"
        return f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}]"

    def pydantic(self) -> dict[str, Any]:
        """Keyword arguments of ``pydantic.Field`` for the same bounds."""
        kw: dict[str, Any] = {("gt" if self.low_open else "ge"): self.low, "le": self.high, "strict": True}
        if self.kind is float:
            kw["allow_inf_nan"] = False  # strict floats still take integers (a temperature of 1), never booleans
        return kw


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


RULES: dict[str, Bound] = {
    "n": Bound(int, 1, 1000, what="number of designs"),
    "seed": Bound(int, 0, MAX_SEED, what="random seed"),
    "temperature": Bound(float, 0, 100, low_open=True, what="sampling temperature"),
    "top_p": Bound(float, 0, 1, low_open=True, what="nucleus sampling mass"),
    "min_len": Bound(int, 1, 100_000, what="fewest residues of a design"),
    "max_len": Bound(int, 1, 100_000, what="most residues of a design"),
    "length": Bound(int, 1, 100_000, what="length hint of a design, in residues"),
    "top_k": Bound(int, 1, 100, what="homologs put in the prompt"),
    "max_new_tokens": Bound(int, 1, 4096, what="tokens per answer"),
    "max_identity": Bound(float, 0, 1, low_open=True, what="identity at or above which homologs are dropped"),
}


def check(name: str, value: Any, *, label: str | None = None) -> Any:
    """``value`` if it is valid for parameter ``name`` (None passes: "not given"), else :class:`InputError`.

    ``label`` names the parameter in the message (the CLI's ``--max-new-tokens``).
    """
    if value is None:
        return None
    rule = RULES[name]
    label = label or name
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{label} must be {rule.describe()}, got {value!r}")
    if rule.kind is int and not isinstance(value, int):
        raise InputError(f"{label} must be {rule.describe()}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{label} must be {rule.describe()}, got {value!r}")
    too_low = value <= rule.low if rule.low_open else value < rule.low
    if too_low or value > rule.high:
        raise InputError(f"{label} must be {rule.describe()}, got {value!r}")
    return value


def field(name: str, default: Any = ..., **extra: Any) -> Any:
    """A ``pydantic.Field`` with the bounds of ``name`` (for the API's request bodies)."""
    from pydantic import Field

    rule = RULES[name]
    extra.setdefault("description", rule.what[:1].upper() + rule.what[1:] + f": {rule.describe()}.")
    return Field(default, **rule.pydantic(), **extra)


def cli_label(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_all(values: dict[str, Any], *, cli: bool = False) -> None:
    """:func:`check` for every (name, value); ``cli`` names them as options (``--top-k``)."""
    for name, value in values.items():
        check(name, value, label=cli_label(name) if cli else None)


DESIGN_MIN_LEN = 30
"""``design``'s fewest residues when a request gives none."""


def check_design(
    *,
    n: Any,
    temperature: Any,
    top_p: Any,
    seed: Any,
    min_len: Any,
    max_len: Any = None,
    length: Any = None,
    cli: bool = False,
) -> None:
    """Every design parameter, and ``min_len`` at most ``max_len``."""
    check_all(
        {
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "min_len": min_len,
            "max_len": max_len,
            "length": length,
        },
        cli=cli,
    )
    if min_len is None:
        min_len = DESIGN_MIN_LEN  # what design() uses when it is not given
    if max_len is not None and min_len > max_len:
        lo, hi = (cli_label("min_len"), cli_label("max_len")) if cli else ("min_len", "max_len")
        raise InputError(f"{lo} {min_len} is above {hi} {max_len}")


def check_text(name: str, text: Any, limit: int, *, empty_ok: bool = False) -> str:
    """A question / prefix / option: a string of at most ``limit`` characters (non-blank unless ``empty_ok``)."""
    if not isinstance(text, str):
        raise InputError(f"{name}: expected text, got {type(text).__name__}")
    if len(text) > limit:
        raise InputError(f"{name}: {len(text):,} characters, at most {limit:,} are accepted")
    if not empty_ok and not text.strip():
        raise InputError(f"{name}: empty")
    return text


def check_classify(question: Any, options: Sequence[Any], prefix: Any = "", *, max_options: int = 1000) -> None:
    """The question, prefix and options of a classify request (each option named by its number)."""
    check_text("question", question, MAX_QUESTION_CHARS)
    check_text("prefix", prefix, MAX_QUESTION_CHARS, empty_ok=True)
    if isinstance(options, str) or not isinstance(options, Sequence):
        raise InputError("options: expected a list of answers")
    if not 2 <= len(options) <= max_options:
        raise InputError(f"options: {len(options)} given, between 2 and {max_options} are accepted")
    for i, o in enumerate(options):
        check_text(f"option {i + 1}", o, MAX_OPTION_CHARS)
