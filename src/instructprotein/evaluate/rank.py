"""Ranking tasks (``kind: rank``): which of several requests did this protein come from?

The InstructProtein paper measures text -> protein by likelihood ranking
(``benchmarks/evaluations/scope_fold_rank.py`` in its repository): for a protein and 10
candidate requests (the true one and 9 others), each request is scored by the **mean
log-probability of the protein's residue tokens after it**; the item is right when the true
request scores highest. A model that writes proteins from text must find a protein more
likely under its own description than under others; this is that test, without sampling.

Here a request is put in the model's design prompt, ``Instruction: {request}\\n\\nOutput:
<protein>``, and the candidate scored is the protein's residue tokens (not ``</protein>``).
The mean (the paper's rule) and the sum are both reported; a tie counts as wrong (the true
request must score strictly highest), so the order candidates are listed in cannot help.
The ten prompts of one protein share their common token prefix and run as one batch
(:func:`~instructprotein.evaluate.scoring.score_token_groups`: one sequence under ten
prefixes); a protein longer than the context leaves after the longest of its prompts is
scored on its first residues, the ones a design would write first (counted in the results).

Data formats (``data.format``):

- ``scope``: the paper's SCOPe sets (``*.lm.json``: ``name``, ``sequence``, ``fold`` the
  true SCOPe id, ``negative_labels`` 9 other ids); ids become words through SCOPe's
  description file ``dir.des.scope.2.08-stable.txt`` (``sunid TAB level TAB sccs TAB sid TAB
  description``), which the paper's release does not ship: the user brings it
  (``data.descriptions: FILE`` or ``instructprotein evaluate --scope-des FILE``). Requests
  fill ``request:`` (default the paper's ``I would like a protein that is in
  {description}``, the description lower-cased as the paper does);
- ``candidates``: JSON lines ``{"sequence", "requests": [texts], "answer": index}`` (any
  requests of one's own; ``answer`` defaults to 0);
- ``{heldout: design_rank}``: our held-out split (:meth:`~instructprotein.evaluate.heldout.HeldOut._design_rank`).

Baselines: **chance** (1 / candidates) and, for GO requests, **homology**: the candidates
ranked by whether the closest decontaminated training protein (MMseqs2, the same search
as every homology baseline) carries the candidate's term by propagation, ties broken by
a seeded draw (a protein without a hit is a draw among all).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError
from instructprotein.evaluate.data import Item, TaskData
from instructprotein.evaluate.results import entry_head, write_predictions
from instructprotein.evaluate.stats import wilson
from instructprotein.evaluate.task_parse import _DATA_KEYS, _NAME, _source, _unknown
from instructprotein.evaluate.task_spec import HomologyRule, TaskSpec

FORMATS = ("scope", "candidates", "go_rank")
SCOPE_DES = "scope_des"
"""``data.descriptions`` of the built-in SCOPe tasks: the file the user brings (``--scope-des``)."""
SCOPE_DES_NAME = "dir.des.scope.2.08-stable.txt"
SCOPE_HELP = (
    f"SCOPe's description file {SCOPE_DES_NAME} (columns sunid, level, sccs, sid, description; from "
    "https://scop.berkeley.edu/downloads/parse/, SCOPe 2.08 'dir.des' parseable file), which the paper's "
    "release does not ship; give it with `instructprotein evaluate --scope-des FILE` (or data.descriptions "
    "in the task file)"
)
PAPER_REQUEST = "I would like a protein that is in {description}"
SCOPE_LEVELS = ("cl", "cf", "sf", "fa", "dm", "sp", "px")
RULES = ("mean", "sum")
RULE_NAMES = {"mean": "mean log-probability (paper)", "sum": "sum log-probability"}
_RANK_KEYS = {"name", "description", "kind", "data", "request", "baselines", "paper", "notes", "metrics"}


def parse_rank(d: dict[str, Any], path: Path | None) -> TaskSpec:
    """A ranking task's file (see the module docstring) into a :class:`TaskSpec`."""
    _unknown(d, _RANK_KEYS, "the task (kind rank)", path)
    name = str(d["name"])
    if not _NAME.fullmatch(name):
        raise InputError(f"name {name!r}: use letters, digits, '_' and '-' only", path)
    data = d["data"]
    if not isinstance(data, dict) or not data.get("test"):
        raise InputError("missing required field 'data.test'", path)
    _unknown(data, _DATA_KEYS, "data", path)
    test = _source(data["test"], "test", path)
    if test.heldout and test.heldout != "design_rank":
        raise InputError("a rank task's held-out source is {heldout: design_rank}", path)
    fmt = str(data.get("format") or ("go_rank" if test.heldout else "candidates"))
    if fmt not in FORMATS:
        raise InputError(f"a rank task's data.format must be one of {', '.join(FORMATS)}, got {fmt!r}", path)
    if (fmt == "go_rank") != bool(test.heldout):
        raise InputError("data.format go_rank goes with {heldout: design_rank} and only with it", path)
    descriptions = data.get("descriptions")
    if fmt == "scope":
        if not descriptions:
            raise InputError(f"a scope rank task needs data.descriptions: {SCOPE_HELP}", path)
        descriptions = str(descriptions)
        if descriptions != SCOPE_DES:
            p = Path(descriptions).expanduser()
            descriptions = str(p if p.is_absolute() or path is None else path.parent / p)
    elif descriptions:
        raise InputError("data.descriptions is for format scope (SCOPe ids -> words)", path)
    request = d.get("request")
    if request is not None:
        request = str(request)
        if fmt != "scope":
            raise InputError("request is for format scope; other rank data carry each candidate's request", path)
        if "{description}" not in request:
            raise InputError("request must contain {description}", path)
    elif fmt == "scope":
        request = PAPER_REQUEST
    metrics = d.get("metrics") or ["accuracy"]
    if metrics != ["accuracy"]:
        raise InputError(f"a rank task's metrics are [accuracy], got {metrics!r}", path)
    b = d.get("baselines") or {}
    if not isinstance(b, dict):
        raise InputError("baselines must be a mapping", path)
    _unknown(b, {"chance", "homology"}, "baselines (rank)", path)
    if b.get("homology") and fmt != "go_rank":
        raise InputError("a rank task's homology baseline needs GO candidates ({heldout: design_rank})", path)
    homology = HomologyRule("rank_terms", k=1) if b.get("homology", fmt == "go_rank") else None
    paper = d.get("paper") or {}
    if not isinstance(paper, dict) or any(not isinstance(v, int | float) for v in paper.values()):
        raise InputError("paper must map a metric name to a number (percent)", path)
    return TaskSpec(
        name=name,
        description=str(d.get("description") or name),
        test=test,
        train=None,
        train_note=None,
        format=fmt,
        sequence_field=str(data.get("sequence_field") or "sequence"),
        label_field=str(data.get("label_field") or ("fold" if fmt == "scope" else "answer")),
        term_field=None,
        question=None,
        prefix="",
        template=None,
        candidates={},
        classes=[],
        labels=None,
        positive=None,
        metrics=["accuracy"],
        cut_above=None,
        keep=1000,
        majority=False,
        composition=False,
        term_frequency=False,
        homology=homology,
        paper={str(k): float(v) for k, v in paper.items()},
        notes=str(d["notes"]) if d.get("notes") else None,
        source=path,
        raw=json.loads(json.dumps(d, default=str)),
        kind="rank",
        request=request,
        descriptions=descriptions,
        chance=bool(b.get("chance", True)),
    )


def with_scope_descriptions(spec: TaskSpec, des: str | Path | None) -> TaskSpec:
    """The task with the user's SCOPe description file where the task asks for it (``scope_des``)."""
    if spec.kind == "rank" and spec.descriptions == SCOPE_DES and des is not None:
        spec.descriptions = str(Path(des).expanduser())
    return spec


def needs_scope_file(spec: TaskSpec) -> bool:
    """Whether the task still waits for the user's SCOPe description file."""
    return spec.kind == "rank" and spec.descriptions == SCOPE_DES


# -- reading -------------------------------------------------------------------------------------------------


def read_scope_descriptions(path: str | Path) -> dict[str, str]:
    """sccs (``a.1``, ``a.1.1``, ...) -> description, from SCOPe's ``dir.des`` file (class, fold,
    superfamily and family rows; ``#`` lines are comments)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file; the SCOPe tasks need {SCOPE_HELP}", p)
    out: dict[str, str] = {}
    import gzip

    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) != 5:
                    raise InputError(
                        f"expected 5 tab-separated columns (sunid, level, sccs, sid, description), got {len(cols)}",
                        p,
                        line_no,
                    )
                sunid, level, sccs, _sid, desc = (c.strip() for c in cols)
                if not sunid.isdigit():
                    raise InputError(f"sunid {sunid!r} is not a number", p, line_no)
                if level not in SCOPE_LEVELS:
                    raise InputError(f"level {level!r} is not one of {', '.join(SCOPE_LEVELS)}", p, line_no)
                if level in ("cl", "cf", "sf", "fa") and desc:
                    out.setdefault(sccs, desc)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"cannot read the SCOPe description file ({exc})", p) from None
    if not out:
        raise InputError(f"no class, fold, superfamily or family rows; expected {SCOPE_HELP}", p)
    return out


def read_rank_items(spec: TaskSpec, path: Path, stem: str, counts: Counter) -> list[Item]:
    """Items of a ranking data file (format scope or candidates)."""
    from instructprotein.evaluate.data import _clean
    from instructprotein.formats.benchmarks import numbered_jsonl

    items: list[Item] = []
    if spec.format == "scope":
        if needs_scope_file(spec):
            raise InputError(f"task {spec.name} needs {SCOPE_HELP}")
        names = read_scope_descriptions(str(spec.descriptions))
        for line, obj in numbered_jsonl(path, [spec.sequence_field, spec.label_field, "negative_labels"]):
            seq, true, negs = obj[spec.sequence_field], obj[spec.label_field], obj["negative_labels"]
            if not isinstance(seq, str) or not seq.strip():
                raise InputError(f"{spec.sequence_field!r} must be a non-empty string", path, line)
            if not isinstance(negs, list) or not negs or not all(isinstance(x, str) for x in [true, *negs]):
                raise InputError("the true id and negative_labels must be SCOPe ids (strings)", path, line)
            ids = [str(true), *map(str, negs)]
            if len(set(ids)) != len(ids):
                raise InputError("a negative label repeats the true one or another", path, line)
            missing = [x for x in ids if x not in names]
            if missing:
                counts["items skipped (an id not in the description file)"] += 1
                continue
            requests = tuple(str(spec.request).replace("{description}", names[x].lower()) for x in ids)
            ident = f"{stem}:{line}" + (f"|{obj['name']}" if isinstance(obj.get("name"), str) else "")
            items.append(
                Item(
                    ident,
                    _clean(seq.strip(), path, line),
                    ids[0],
                    line=line,
                    terms=tuple(ids),
                    requests=requests,
                    term_name=names[ids[0]],
                )
            )
        return items
    for line, obj in numbered_jsonl(path, [spec.sequence_field, "requests"]):
        seq, reqs = obj[spec.sequence_field], obj["requests"]
        if not isinstance(seq, str) or not seq.strip():
            raise InputError(f"{spec.sequence_field!r} must be a non-empty string", path, line)
        if not isinstance(reqs, list) or len(reqs) < 2 or not all(isinstance(r, str) and r.strip() for r in reqs):
            raise InputError("'requests' must be a list of at least two non-empty request texts", path, line)
        answer = obj.get(spec.label_field, 0)
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(reqs):
            raise InputError(
                f"{spec.label_field!r} must be the index of the true request (0..{len(reqs) - 1})", path, line
            )
        order = [answer] + [k for k in range(len(reqs)) if k != answer]
        requests = tuple(reqs[k].strip() for k in order)
        items.append(
            Item(
                f"{stem}:{line}",
                _clean(seq.strip(), path, line),
                str(answer),
                line=line,
                terms=tuple(str(k) for k in order),
                requests=requests,
            )
        )
    return items


# -- scoring -------------------------------------------------------------------------------------------------


def residue_ids(tokenizer: Any, sequence: str) -> list[int]:
    """The residue tokens of a sequence, as the model writes them after ``<protein>``."""
    from instructprotein.instruct.render import protein_text

    ids = tokenizer.encode_batch([protein_text(sequence)], add_bos=False)[0].input_ids
    return list(ids[1:-1])  # without <protein> and </protein>


def score_rank(
    spec: TaskSpec,
    model: Any,
    tokenizer: Any,
    items: Sequence[Item],
    prep: dict[str, Any],
    progress: Any,
    max_rows: int = 64,
) -> None:
    """Every candidate request's score for every item, into ``prep["scores"]`` (items x
    candidates: (sum, tokens)); proteins cut to their first residues where the context ends."""
    from instructprotein.evaluate.scoring import score_token_groups
    from instructprotein.infer.classify import context_length
    from instructprotein.infer.prompts import design_prompt

    t0 = time.perf_counter()
    ctx = context_length(model)
    prompt_ids: list[list[int]] = []
    cand_ids: list[list[list[int]]] = []
    groups: list[int] = []
    names: list[str] = []
    cut = 0
    shortest: int | None = None
    for n, item in enumerate(items):
        assert item.requests is not None
        enc = [e.input_ids for e in tokenizer.encode_batch([design_prompt(r) for r in item.requests], add_bos=True)]
        residues = residue_ids(tokenizer, item.sequence)
        room = ctx - max(map(len, enc))
        if room < 8:
            raise InputError(
                f"task {spec.name}, item {item.id}: a request takes {ctx - room} of the model's {ctx} "
                "tokens, leaving no room for a protein"
            )
        if len(residues) > room:
            residues = residues[:room]
            cut += 1
            shortest = room if shortest is None else min(shortest, room)
        for k, ids in enumerate(enc):
            prompt_ids.append(ids)
            cand_ids.append([residues])
            groups.append(n)
            names.append(f"{item.id}#{k}")
    with progress.step(
        f"{spec.name}: score {len(prompt_ids):,} requests for {len(items):,} proteins", total=len(prompt_ids)
    ) as bar:
        scored = score_token_groups(
            model,
            prompt_ids,
            cand_ids,
            groups,
            ids=names,
            max_rows=max_rows,
            on_group=lambda members, _s: bar.advance(len(members)),
        )
    k = 0
    per_item: list[list[tuple[float, int]]] = []
    for item in items:
        m = len(item.requests or ())
        per_item.append([(s.total[0], s.token_counts[0]) for s in scored[k : k + m]])
        k += m
    prep.update(
        scores=per_item,
        prompts_scored=len(prompt_ids),
        prompts_reused=0,
        cut={
            "rule": "a protein longer than the context leaves after its longest request is scored on its "
            "first residues",
            "context_cut": cut,
            "shortest_kept": shortest,
        },
    )
    prep.setdefault("seconds", {})["model"] = round(time.perf_counter() - t0, 2)


# -- metrics -------------------------------------------------------------------------------------------------


def _accuracy(correct: Sequence[bool], ranks: Sequence[float] | None = None) -> dict[str, Any]:
    k, n = sum(map(bool, correct)), len(correct)
    out: dict[str, Any] = {"accuracy": k / n if n else float("nan"), "ci95": list(wilson(k, n)), "k": k, "n": n}
    if ranks is not None and ranks:
        out["mean_rank"] = sum(ranks) / len(ranks)
        out["mrr"] = sum(1 / r for r in ranks) / len(ranks)
    return out


def _rank_of_true(scores: Sequence[float]) -> float:
    """1-based rank of candidate 0, ties counted against it (the worst place among equals)."""
    return float(1 + sum(1 for s in scores[1:] if s >= scores[0]))


def homology_ranks(items: Sequence[Item], side: Any, seed: int) -> tuple[list[bool], list[float], list[dict[str, Any]]]:
    """Candidates ranked by whether the closest decontaminated training protein carries them,
    ties broken by a seeded draw: (correct, rank of the true one, per-item details)."""
    correct, ranks, rows = [], [], []
    for item in items:
        hits = side.hits.get(item.sequence, []) if side is not None else []
        hit = hits[0] if hits else None
        carried = side.propagated(hit.accession) if hit is not None else frozenset()
        terms = list(item.terms or ())
        flags = [t in carried for t in terms]
        rng = random.Random(f"{seed}:{item.id}")
        order = sorted(range(len(terms)), key=lambda k: (not flags[k], rng.random()))
        rank = order.index(0) + 1
        correct.append(rank == 1)
        ranks.append(float(rank))
        rows.append(
            {
                "closest": hit.accession if hit else None,
                "identity": round(hit.identity, 4) if hit else None,
                "carries": [terms[k] for k in range(len(terms)) if flags[k]],
            }
        )
    return correct, ranks, rows


def finish_rank(
    spec: TaskSpec, td: TaskData, prep: dict[str, Any], side: Any, seed: int, pred_dir: Path
) -> dict[str, Any]:
    """The results entry of a ranking task: accuracy [Wilson 95 %] by the mean (paper) and the
    sum, beside chance and homology."""
    items = td.items
    per_rule: dict[str, Any] = {}
    rank_by_rule: dict[str, list[float]] = {}
    for rule in RULES:
        ranks = []
        for sc in prep["scores"]:
            vals = [s / max(n, 1) for s, n in sc] if rule == "mean" else [s for s, _ in sc]
            ranks.append(_rank_of_true(vals))
        rank_by_rule[rule] = ranks
        per_rule[rule] = _accuracy([r == 1 for r in ranks], ranks)
    base: dict[str, Any] = {}
    sizes = [len(i.terms or ()) for i in items]
    if spec.chance and items:
        p = sum(1 / s for s in sizes) / len(sizes)
        base["chance"] = {
            "accuracy": p,
            "ci95": [p, p],
            "n": len(items),
            "candidates": Counter(sizes).most_common(1)[0][0],
        }
    hom_rows: list[dict[str, Any]] | None = None
    if spec.homology is not None and side is not None:
        correct, ranks, hom_rows = homology_ranks(items, side, seed)
        r = _accuracy(correct, ranks)
        covered = [h["closest"] is not None for h in hom_rows]
        r["coverage"] = sum(covered) / len(covered) if covered else float("nan")
        r["covered"] = sum(covered)
        r["fallback"] = "a seeded draw among the candidates the closest protein carries (all, without a hit)"
        base["homology"] = r
    rows = []
    for n, item in enumerate(items):
        row: dict[str, Any] = {
            "id": item.id,
            "true": item.label,
            "candidates": list(item.terms or ()),
            "requests": list(item.requests or ()),
            "sum": [round(s, 3) for s, _ in prep["scores"][n]],
            "tokens": prep["scores"][n][0][1] if prep["scores"][n] else 0,
        }
        row["mean"] = [round(s / max(t, 1), 4) for s, t in prep["scores"][n]]
        row["rank"] = {r: rank_by_rule[r][n] for r in RULES}
        if hom_rows is not None:
            row["homology"] = hom_rows[n]
        rows.append(row)
    write_predictions(pred_dir, spec, rows)
    head = entry_head(spec, td, prep)
    head["task"]["resolved"].update(
        request=spec.request,
        descriptions=spec.descriptions,
        prompt="Instruction: {request}\\n\\nOutput: <protein>{residues scored}",
    )
    return {
        **head,
        "accuracy": per_rule["mean"]["accuracy"],
        "ci95": per_rule["mean"]["ci95"],
        "ranking": per_rule,
        "rules": dict(RULE_NAMES),
        "baselines": base,
        "paper": spec.paper,
        "prompts_scored": prep.get("prompts_scored", 0),
        "prompts_reused": 0,
        "seconds": dict(prep.get("seconds", {})),
        "examples": rows[:3],
    }


def resolve_scope_tasks(
    asked: Sequence[str | Path], names: Sequence[str | Path], scope_des: str | Path | None, console: Any = None
) -> list[str | Path | TaskSpec]:
    """The tasks to run, SCOPe tasks given the user's description file: without one, a SCOPe
    task named outright is an error that says which file and where it comes from, and one
    that came with a group (``all``, ``paper``) is left out with a note."""
    from instructprotein.evaluate.tasks import load_task

    if scope_des is not None and not Path(scope_des).expanduser().is_file():
        raise InputError(f"no such file; --scope-des takes {SCOPE_HELP}", Path(scope_des))
    out: list[str | Path | TaskSpec] = []
    left_out = []
    explicit = {str(t) for t in asked}
    for name in names:
        spec = load_task(name)
        if not needs_scope_file(spec):
            out.append(spec)
            continue
        if scope_des is not None:
            out.append(with_scope_descriptions(spec, scope_des))
        elif str(name) in explicit:
            raise InputError(f"task {spec.name} needs {SCOPE_HELP}")
        else:
            left_out.append(spec.name)
    if left_out and console is not None:
        console.print(
            f"[yellow]no SCOPe description file (--scope-des {SCOPE_DES_NAME}): {', '.join(left_out)} left out[/]"
        )
    return out
