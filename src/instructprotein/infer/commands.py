"""Plain functions behind the ``describe``, ``design`` and ``classify`` sub-commands.

Each takes what a command line gives (paths, strings, numbers), does the work, writes its
output (a file atomically: write aside, then rename; or standard output) and returns the
result objects, so a CLI wrapper is a few lines of option declarations and tests need no
subprocess. Errors a user can cause are :class:`~instructprotein.errors.InputError`; the CLI
prints them as messages.

Formats:

- ``describe``: ``text`` (a block per sequence), ``jsonl`` (one object per sequence: every
  answer, mapped and implied GO terms, location probabilities, homologs, notes), ``tsv``
  (one row per sequence);
- ``design``: FASTA (header ``>designN length=.. ended_by=.. closest=.. identity=..``) and a
  checks table (TSV with ``checks_out``; always printed in readable form);
- ``classify``: ``text``, ``jsonl`` or ``tsv`` (id, answer, its probability, every option's
  probability).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from instructprotein.atomic import atomic_path
from instructprotein.errors import InputError
from instructprotein.infer.classify import DEFAULT_RULE, RULES, Choice
from instructprotein.infer.describe import Description
from instructprotein.infer.generate import DesignRun
from instructprotein.infer.inputs import read_queries
from instructprotein.infer.model import Model
from instructprotein.infer.params import check, check_all, check_classify, check_design
from instructprotein.infer.retrieval import go_labels, transfer

FORMATS = ("text", "jsonl", "tsv")

Echo = Callable[[str], None]


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def write_output(text: str, out: str | Path | None) -> None:
    """``text`` to ``out`` atomically (a crash leaves the old file or none), or to standard output."""
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(Path(out)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _check_identity(max_identity: float | None) -> None:
    """Before the model loads: a mistyped identity (70 for 0.7) fails at once."""
    check("max_identity", max_identity, label="--max-identity")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")


def _tsv(rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("\t", " ").replace("\n", " | ")

    return "".join("\t".join(cell(v) for v in row) + "\n" for row in rows)


def _load(model_path: str | Path, kg_path: str | Path | None, retrieval: bool | None, device: str | None) -> Model:
    return Model.load(model_path, kg=kg_path, retrieval=retrieval, device=device)


# -- describe ---------------------------------------------------------------------------------------------

DESCRIBE_COLUMNS = (
    "id",
    "length",
    "function",
    "location",
    "location_by_likelihood",
    "location_probability",
    "go_named",
    "go_named_names",
    "go_implied",
    "unmatched",
    "homologs",
    "homology_transfer",
    "notes",
)


def describe_command(
    model_path: str | Path,
    inputs: str | Path | Sequence[str | Path],
    kg_path: str | Path | None = None,
    fmt: str = "text",
    out: str | Path | None = None,
    *,
    retrieval: bool | None = None,
    baseline: bool = False,
    top_k: int = 3,
    max_identity: float | None = None,
    max_new_tokens: int = 128,
    fuzzy: bool = False,
    device: str | None = None,
) -> list[Description]:
    """Describe sequences given as plain sequences, pasted FASTA, or FASTA / JSON lines files.

    ``retrieval`` defaults to on when ``kg_path`` is given. ``baseline`` adds the homology
    transfer prediction (GO terms carried by at least half of the identity-weighted top-k
    homologs) beside the model's answer.
    """
    _check_format(fmt)
    check_all({"top_k": top_k, "max_new_tokens": max_new_tokens, "max_identity": max_identity}, cli=True)
    queries = read_queries(inputs)  # before loading the model: a bad input fails fast
    if baseline and kg_path is None:
        raise InputError("the homology-transfer baseline needs a knowledge graph (--kg)")
    _check_identity(max_identity)
    m = _load(model_path, kg_path, retrieval, device)
    results = m.describe_many(
        queries, max_new_tokens=max_new_tokens, fuzzy=fuzzy, top_k=top_k, max_identity=max_identity
    )
    transfers: dict[str, Any] = {}
    if baseline and m.index is not None and m.kg is not None:
        found = m.index.search(queries, top_k=top_k, max_identity=max_identity)
        labels = go_labels(m.kg)
        transfers = {q.id: transfer(found[q.id], labels, k=top_k) for q in queries}
    if fmt == "jsonl":
        lines = []
        for d in results:
            obj = d.to_dict()
            if d.id in transfers:
                obj["homology_transfer"] = transfers[d.id].to_dict()
            lines.append(json.dumps(obj, ensure_ascii=False))
        text = "\n".join(lines) + "\n"
    elif fmt == "tsv":
        rows: list[Sequence[Any]] = [DESCRIBE_COLUMNS]
        for d in results:
            top = d.location_probabilities[0] if d.location_probabilities else (None, None)
            t = d.terms
            tr = transfers.get(d.id)
            rows.append(
                (
                    d.id,
                    d.length,
                    d.function,
                    d.location,
                    top[0],
                    f"{top[1]:.4f}" if top[1] is not None else None,
                    ";".join(m_.term.id for m_ in t.direct) if t else None,
                    ";".join(m_.term.name for m_ in t.direct) if t else None,
                    ";".join(x.id for x, _ in t.implied) if t else None,
                    ";".join(t.unmatched) if t else None,
                    ";".join(f"{h.accession}:{h.identity:.2f}" for h in d.homologs),
                    ";".join(tr.labels()) if tr else None,
                    "; ".join(d.notes),
                )
            )
        text = _tsv(rows)
    else:
        blocks = []
        for d in results:
            block = d.to_text()
            tr = transfers.get(d.id)
            if tr is not None:
                names = [f"{i} {m.kg.entity(i).name}" for i in tr.labels()[:10]] if m.kg else tr.labels()
                best = f"{tr.best.accession} ({tr.best.identity:.2f})" if tr.best else "none"
                block += f"\nHomology transfer (best hit {best}): {'; '.join(names) or 'no GO term'}"
            blocks.append(block)
        text = "\n\n".join(blocks) + "\n"
    write_output(text, out)
    return results


# -- design -----------------------------------------------------------------------------------------------

CHECK_COLUMNS = (
    "id",
    "length",
    "ended_by",
    "valid_alphabet",
    "length_ok",
    "low_complexity_fraction",
    "longest_homopolymer",
    "repeat_fraction",
    "low_complexity",
    "closest",
    "closest_identity",
    "closest_evalue",
    "requested_carried",
    "passed",
    "carries_request",
    "verification",
    "exemplar",
    "exemplar_identity",
)


def _check_row(d: Any) -> tuple[Any, ...]:
    c = d.checks
    if c is None:
        return (d.id, len(d.sequence), d.ended_by) + (None,) * (len(CHECK_COLUMNS) - 7) + _design_extra(d)
    said = {True: "yes", False: "no", None: "?"}
    req = ";".join(f"{r['id']}={said[r['carried']]}" for r in c.requested)
    return (
        d.id,
        c.length,
        d.ended_by,
        c.valid_alphabet,
        c.length_ok,
        f"{c.low_complexity_fraction:.3f}",
        c.longest_homopolymer,
        f"{c.repeat_fraction:.3f}",
        c.low_complexity,
        c.closest.accession if c.closest else ("none found" if c.closest_searched else "not searched"),
        f"{c.closest.identity:.3f}" if c.closest else None,
        f"{c.closest.evalue:.2g}" if c.closest else None,
        req or None,
        c.passed,
    ) + _design_extra(d)


def _design_extra(d: Any) -> tuple[Any, ...]:
    """Whether the closest protein carries the whole request, the model's own score, the exemplar."""
    said = {True: "yes", False: "no", None: "?"}
    ex = getattr(d, "exemplar", None)
    return (
        said[d.carries_request],
        f"{d.verification:+.3f}" if d.verification is not None else None,
        ex.accession if ex is not None else None,
        f"{d.exemplar_identity:.3f}" if d.exemplar_identity is not None else None,
    )


def checks_table(run: DesignRun) -> str:
    """The checks of every design as aligned columns, for a terminal."""
    rows = [CHECK_COLUMNS] + [tuple("" if v is None else str(v) for v in _check_row(d)) for d in run.designs]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(CHECK_COLUMNS))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def design_command(
    model_path: str | Path,
    description: str,
    n: int = 4,
    kg_path: str | Path | None = None,
    out: str | Path | None = None,
    checks_out: str | Path | None = None,
    *,
    temperature: float = 1.0,
    top_p: float = 0.95,
    seed: int = 0,
    min_len: int = 30,
    max_len: int | None = None,
    length: int | None = None,
    device: str | None = None,
    echo: Echo = _stderr,
    strategy: str = "auto",
    candidates: int | None = None,
) -> DesignRun:
    """Design ``n`` sequences: FASTA to ``out`` (or standard output), the checks table to ``checks_out``
    (TSV) when given and, readable, through ``echo`` (standard error by default)."""
    from instructprotein.infer.inputs import check_description

    check_description(description)
    check_design(
        n=n, temperature=temperature, top_p=top_p, seed=seed, min_len=min_len, max_len=max_len, length=length, cli=True
    )
    m = _load(model_path, kg_path, False, device)
    run = m.design(
        description,
        n=n,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        min_len=min_len,
        max_len=max_len,
        length=length,
        strategy=strategy,
        candidates=candidates,
    )
    fasta = []
    for d in run.designs:
        head = f">{d.id} length={len(d.sequence)} ended_by={d.ended_by}"
        c = d.checks
        if c is not None:
            if c.closest is not None:
                head += f" closest={c.closest.accession} identity={c.closest.identity:.3f}"
            head += f" low_complexity={'yes' if c.low_complexity else 'no'}"
            if d.carries_request is not None:
                head += f" carries_request={'yes' if d.carries_request else 'no'}"
        if d.verification is not None:
            head += f" verification={d.verification:+.3f}"
        if d.exemplar is not None:
            head += f" exemplar={d.exemplar.accession}"
        body = "\n".join(d.sequence[i : i + 60] for i in range(0, len(d.sequence), 60)) or ""
        fasta.append(f"{head}\n{body}\n")
    write_output("".join(fasta), out)
    if checks_out is not None:
        write_output(_tsv([CHECK_COLUMNS] + [_check_row(d) for d in run.designs]), checks_out)
    echo(
        f"request: {run.request}\nprompt: {run.prompt!r}\nstrategy: {run.settings.get('strategy')}, best {len(run.designs)} "
        f"of {run.settings.get('candidates')} candidates"
        + (f" ({run.settings['note']})" if run.settings.get("note") else "")
    )
    if run.requested_terms is not None:
        named = ", ".join(f"{x.term.id} {x.term.name}" for x in run.requested_terms.direct)
        echo(f"requested GO terms: {named or 'none recognised'}")
    echo(checks_table(run))
    return run


# -- classify ---------------------------------------------------------------------------------------------


def classify_command(
    model_path: str | Path,
    inputs: str | Path | Sequence[str | Path],
    question: str,
    options: Sequence[str],
    *,
    prefix: str = "",
    rule: str = DEFAULT_RULE,
    kg_path: str | Path | None = None,
    retrieval: bool | None = None,
    top_k: int = 3,
    max_identity: float | None = None,
    fmt: str = "text",
    out: str | Path | None = None,
    device: str | None = None,
) -> list[Choice]:
    """Pick one of ``options`` for every sequence by the model's likelihood (``rule``: first_token, sum, mean).

    ``top_k`` / ``max_identity`` choose the homologs put in the prompt, as for describe.
    """
    _check_format(fmt)
    check_all({"top_k": top_k, "max_identity": max_identity}, cli=True)
    if rule not in RULES:
        raise InputError(f"unknown scoring rule {rule!r}; use one of {', '.join(RULES)}")
    check_classify(question, list(options), prefix)
    queries = read_queries(inputs)
    m = _load(model_path, kg_path, retrieval, device)
    choices = m.classify_many(
        queries,
        question,
        list(options),
        prefix=prefix,
        rule=rule,  # type: ignore[arg-type]
        top_k=top_k,
        max_identity=max_identity,
    )
    if fmt == "jsonl":
        text = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in choices)
    elif fmt == "tsv":
        opts = choices[0].options if choices else []
        rows: list[Sequence[Any]] = [("id", "answer", "probability", *opts)]
        for c in choices:
            rows.append((c.id, c.answer, f"{c.probabilities[c.index]:.4f}", *(f"{p:.4f}" for p in c.probabilities)))
        text = _tsv(rows)
    else:
        lines = []
        for c in choices:
            ranked = sorted(zip(c.options, c.probabilities), key=lambda kv: -kv[1])
            alts = ", ".join(f"{o} {p:.3f}" for o, p in ranked)
            lines.append(f"{c.id}\t{c.answer}\t({c.rule}: {alts}){' [tie]' if c.tied else ''}")
        text = "\n".join(lines) + "\n"
    write_output(text, out)
    return choices
