"""describe: sequence -> function text, location and GO terms, with the homologs' evidence.

It asks the questions the model was instruction-tuned on (phrasing 0 of the ``function``,
``location`` and ``go_terms`` tasks of :mod:`instructprotein.instruct.templates`), decodes
greedily, and maps the GO terms the answers name to real ids
(:class:`~instructprotein.infer.terms.TermIndex`), closed under the ontology; no id is ever
made up. Location is also scored directly: the paper's prompt and the 10 DeepLoc words through
:func:`~instructprotein.infer.classify.classify`, with probabilities. With retrieval and the
model folder's combination, the location and GO terms are the system's answers
(:mod:`~instructprotein.infer.verify`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from instructprotein.errors import InputError
from instructprotein.infer.classify import DEFAULT_RULE, Choice, Rule, classify, context_length, prompt_residues
from instructprotein.infer.combine import Combination
from instructprotein.infer.generate import generate_answers, prompt_fits
from instructprotein.infer.inputs import Query, clean_sequence
from instructprotein.infer.prompts import (
    FUNCTION_QUESTION,
    LOCATION_LABELS,
    LOCATION_PREFIX,
    LOCATION_QUESTION,
    go_question,
)
from instructprotein.infer.retrieval import Homolog, ProteinIndex, homolog_contexts
from instructprotein.infer.terms import TermIndex, TermSet, merge
from instructprotein.prompt import CUT_ABOVE, KEEP_LAST, fit_prompt

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.model.tokenizer import ProteinTokenizer


# -- describe -------------------------------------------------------------------------------------------


@dataclass
class Description:
    """What the model says about one sequence, and what of it the knowledge graph recognises."""

    id: str
    length: int
    model_length: int  # residues the model read (after the paper's cut and the fit to its context)
    function: str
    location: str
    go_answers: dict[str, str]
    location_scores: Choice | None = None
    terms: TermSet | None = None
    homologs: list[Homolog] = field(default_factory=list)
    context: str | None = None
    notes: list[str] = field(default_factory=list)
    system_location: list[tuple[str, float]] | None = None  # the system's answer (model + homologs), best first
    verified_terms: dict[str, list[Any]] | None = None  # aspect -> VerifiedTerm, most confident first

    @property
    def location_probabilities(self) -> list[tuple[str, float]]:
        if self.location_scores is None:
            return []
        pairs = zip(self.location_scores.options, self.location_scores.probabilities)
        return sorted(pairs, key=lambda kv: -kv[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "length": self.length,
            "model_length": self.model_length,
            "function": self.function,
            "location": self.location,
            "location_scores": {
                "rule": self.location_scores.rule,
                "prediction": self.location_scores.answer,
                "probabilities": {k: round(v, 4) for k, v in self.location_probabilities},
            }
            if self.location_scores
            else None,
            "system_location": [{"location": c, "probability": round(p, 4)} for c, p in self.system_location]
            if self.system_location is not None
            else None,
            "go_verified": {a: [t.to_dict() for t in ts] for a, ts in self.verified_terms.items()}
            if self.verified_terms is not None
            else None,
            "go_answers": self.go_answers,
            "go_terms": self.terms.to_dict() if self.terms is not None else None,
            "homologs": [h.to_dict() for h in self.homologs],
            "retrieval_context": self.context,
            "notes": self.notes,
        }

    def to_text(self) -> str:
        cut = f", the model read {self.model_length} of them" if self.model_length < self.length else ""
        lines = [f"# {self.id} ({self.length} residues{cut})"]
        lines.append(f"Function: {self.function or '(no answer)'}")
        if self.system_location is not None:
            top = ", ".join(f"{k} {v:.2f}" for k, v in self.system_location[:3])
            lines.append(f"Location: {self.system_location[0][0]} (system: {top})")
            lines.append(f"Location, the model's own words: {self.location or '(no answer)'}")
        else:
            lines.append(f"Location: {self.location or '(no answer)'}")
        if self.location_scores is not None:
            top = ", ".join(f"{k} {v:.2f}" for k, v in self.location_probabilities[:3])
            lines.append(f"Location by the model's likelihood ({self.location_scores.rule}): {top}")
        if self.verified_terms is not None:
            for aspect, got in self.verified_terms.items():
                shown = "; ".join(f"{t.id} {t.name} {t.confidence:.2f}" for t in got[:8])
                more = f" (+{len(got) - 8} more)" if len(got) > 8 else ""
                lines.append(f"GO {aspect}, verified (confidence): {shown or '(none confident)'}{more}")
        else:
            for aspect, text in self.go_answers.items():
                lines.append(f"GO {aspect} answer: {' | '.join(text.splitlines()) or '(no answer)'}")
        if self.terms is not None and self.verified_terms is None:
            specific = {m.term.id for m in self.terms.most_specific}
            if self.terms.direct:
                lines.append("GO terms named (* most specific):")
                for m in self.terms.direct:
                    star = "*" if m.term.id in specific else " "
                    how = "" if m.matched_by in ("name", "id") else f"  [{m.matched_by}]"
                    lines.append(f"  {star} {m.term.id} {m.term.name} ({m.term.aspect}){how}")
                implied = [t.id for t, _ in self.terms.implied]
                shown = ", ".join(implied[:8]) + (", ..." if len(implied) > 8 else "")
                lines.append(f"GO terms implied by the ontology: {len(implied)}" + (f" ({shown})" if implied else ""))
            else:
                lines.append("GO terms: the answers name no GO term known to the knowledge graph")
        if self.homologs:
            lines.append("Homologs: " + ", ".join(f"{h.accession} ({h.identity:.2f})" for h in self.homologs))
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def describe(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    sequences: str | Query | Sequence[str | Query],
    *,
    terms: TermIndex | None = None,
    index: ProteinIndex | None = None,
    retrieval: bool | None = None,
    top_k: int = 3,
    max_identity: float | None = None,
    exclude: Sequence[str] = (),
    aspects: Sequence[str] = ("F", "P", "C"),
    max_new_tokens: int = 128,
    location_rule: Rule = DEFAULT_RULE,
    fuzzy: bool = False,
    cut_above: int | None = CUT_ABOVE,
    keep: int = KEEP_LAST,
    combination: Combination | None = None,
) -> list[Description]:
    """Describe sequences: function, location, GO terms (mapped and closed when ``terms`` is given).

    With retrieval and a ``combination`` (the model folder's ``combination.json``), the
    location and the GO terms are the system's answers (:mod:`instructprotein.infer.verify`):
    model and homologs combined as the evaluation measured them, GO terms verified one by one
    with a confidence each.

    ``retrieval`` (default: on when ``index`` is given) puts the top-``top_k`` homologs'
    annotations before every question (``max_identity`` / ``exclude`` drop hits, as in
    :meth:`ProteinIndex.search`). A plain string is one sequence.
    """
    if isinstance(sequences, (str, Query)):
        sequences = [sequences]
    queries = [
        q if isinstance(q, Query) else Query(f"seq{i + 1}", clean_sequence(q, f"seq{i + 1}"))
        for i, q in enumerate(sequences)
    ]
    for a in aspects:
        if a not in ("F", "P", "C"):
            raise InputError(f"unknown GO aspect {a!r}; use F, P or C")
    use_retrieval = (index is not None) if retrieval is None else retrieval
    if use_retrieval and index is None:
        raise InputError("retrieval needs a knowledge graph (its proteins are what is searched)")
    asks: list[tuple[str, str]] = [("function", FUNCTION_QUESTION), ("location", LOCATION_QUESTION)]
    asks += [(f"go_{a}", go_question(a)) for a in aspects]
    ctx_len, most = context_length(model), prompt_residues(model)
    contexts: dict[str, tuple[list[Homolog], str | None]] = {}
    location_blocks: dict[str, tuple[list[Homolog], str | None]] = {}
    if use_retrieval and index is not None:
        fits = prompt_fits(model, tokenizer, [text for _, text in asks], reserve=0, cut_above=cut_above, keep=keep)
        search = {"top_k": top_k, "max_identity": max_identity, "exclude": exclude, "fits": fits}
        contexts = homolog_contexts(index, queries, **search)
        location_blocks = homolog_contexts(index, queries, kind="location", **search)  # the same hits, cached
    prompts, names = [], []
    read: dict[str, int] = {}
    for q in queries:
        for key, text in asks:
            got = (location_blocks if key == "location" else contexts).get(q.id, (None, None))[1]
            fitted = fit_prompt(
                tokenizer,
                q.sequence,
                text,
                context=got,
                context_len=ctx_len,
                cut_above=cut_above,
                keep=keep,
                max_residues=most,
            )  # the answer room kept free, as in training
            prompt, residues = fitted.prompt.text, fitted.residues
            read[q.id] = min(read.get(q.id, residues), residues)
            prompts.append(prompt)
            names.append(f"{q.id} ({key} question)")
    answers = [
        drop_repeats(a) for a in generate_answers(model, tokenizer, prompts, names=names, max_new_tokens=max_new_tokens)
    ]
    loc = classify(
        model,
        tokenizer,
        queries,
        LOCATION_QUESTION,
        LOCATION_LABELS,
        prefix=LOCATION_PREFIX,
        rule=location_rule,
        contexts=[location_blocks.get(q.id, (None, None))[1] for q in queries],
        cut_above=cut_above,
        keep=keep,
    )
    system = (
        _system_answers(
            model, tokenizer, queries, loc, index, combination, aspects, max_identity, exclude, cut_above, keep
        )
        if (use_retrieval and index is not None and combination)
        else {}
    )
    out: list[Description] = []
    for i, q in enumerate(queries):
        got = dict(zip([k for k, _ in asks], answers[i * len(asks) : (i + 1) * len(asks)]))
        model_length = read[q.id]
        desc = Description(
            q.id,
            len(q.sequence),
            model_length,
            got["function"],
            got["location"],
            {a: got[f"go_{a}"] for a in aspects},
            loc[i],
        )
        if cut_above is not None and len(q.sequence) > cut_above:
            desc.notes.append(f"longer than {cut_above} residues: cut to its last {keep} (the paper's rule)")
        if model_length < min(
            len(q.sequence), keep if cut_above is not None and len(q.sequence) > cut_above else len(q.sequence)
        ):
            why = (
                f"was tuned on {most}-residue proteins"
                if most is not None and model_length == most
                else f"reads {ctx_len} tokens"
            )
            desc.notes.append(
                f"the model {why}: it read {model_length} residues, the first three "
                "quarters and the last quarter joined by one X, as in training"
            )
        if q.id in system:
            desc.system_location, desc.verified_terms = system[q.id]
        if q.id in contexts:
            desc.homologs, desc.context = contexts[q.id]
            if desc.context is None:
                desc.notes.append("retrieval left out: no homolog block fits the model's context with this sequence")
        if terms is not None:
            found = [terms.find(text, source=key, fuzzy=fuzzy) for key, text in got.items()]
            desc.terms = merge(found, terms)
            for key, s in zip(got, found):
                if not s.direct:
                    what = key.replace("_", " ")
                    desc.notes.append(f"the {what} answer names no GO term known to the knowledge graph")
        out.append(desc)
    return out


_SUBJECT = re.compile(r"^(the protein|this protein|it)\s+")
_CLAUSE_SPLIT = re.compile(r"(,\s+and\s+|,\s+|\s+and\s+|;\s+)")


def drop_repeats(text: str) -> str:
    """The answer with every clause said a second time left out ("binds DNA, binds DNA and
    binds DNA" -> "binds DNA"): a small greedy decoder loops, and a repeat adds nothing."""
    parts = _CLAUSE_SPLIT.split(text.strip())
    if len(parts) < 3:
        return text
    end = ""
    if parts[-1].endswith("."):
        parts[-1], end = parts[-1][:-1], "."
    clauses, seps = parts[0::2], parts[1::2]
    seen: set[str] = set()
    kept: list[str] = []
    for n, clause in enumerate(clauses):
        key = _SUBJECT.sub("", " ".join(clause.lower().split()))
        if key in seen:
            continue
        seen.add(key)
        if kept:
            kept.append(seps[n - 1])
        kept.append(clause)
    if len(kept) == len(parts):
        return text
    if len(kept) >= 3 and kept[-2].strip(", ") != "and" and not kept[-2].strip().startswith("and"):
        kept[-2] = " and "
    return "".join(kept) + end


def _system_answers(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    queries: Sequence[Query],
    loc: Sequence[Choice],
    index: ProteinIndex,
    combination: Combination,
    aspects: Sequence[str],
    max_identity: float | None,
    exclude: Sequence[str],
    cut_above: int | None,
    keep: int,
) -> dict[str, tuple[list[tuple[str, float]] | None, dict[str, list[Any]] | None]]:
    """Per query: the system's location distribution and its verified GO terms (see :mod:`.verify`)."""
    from instructprotein.infer import verify as ver
    from instructprotein.infer.prompts import YES_NO_OPTIONS, YES_NO_PREFIX, YES_NO_QUESTION

    hits = index.search(queries, top_k=ver.SEARCH_K, max_identity=max_identity, exclude=exclude, max_seqs=1000)
    alone = classify(
        model,
        tokenizer,
        queries,
        LOCATION_QUESTION,
        LOCATION_LABELS,
        prefix=LOCATION_PREFIX,
        cut_above=cut_above,
        keep=keep,
    )
    want_go = any(combination.get(f"describe_{a}") for a in aspects)
    cands = {q.id: ver.go_candidates(index, hits[q.id], aspects) for q in queries} if want_go else {}
    asked = {q.id: ver.verification_questions(index, hits[q.id], cands[q.id]) for q in queries} if want_go else {}
    seqs, questions, blocks, keys = [], [], [], []
    for q in queries:
        for a, term, name, block in asked.get(q.id, []):
            seqs.append(q)
            questions.append(YES_NO_QUESTION.format(term=name))
            blocks.append(block)
            keys.append((q.id, a, term))
    yes: dict[str, dict[tuple[str, str], float]] = {q.id: {} for q in queries}
    if seqs:
        choices = classify(
            model,
            tokenizer,
            seqs,
            questions,
            YES_NO_OPTIONS,
            prefix=YES_NO_PREFIX,
            contexts=blocks,
            cut_above=cut_above,
            keep=keep,
        )
        for (qid, a, term), c in zip(keys, choices):
            yes[qid][(a, term)] = float(c.probabilities[1])
    out = {}
    for i, q in enumerate(queries):
        location = ver.location_answer(
            combination, loc[i].probabilities, alone[i].probabilities, hits[q.id], index, LOCATION_LABELS, q.sequence
        )
        terms = ver.ranked_terms(combination, index, hits[q.id], cands[q.id], yes[q.id]) if want_go else None
        out[q.id] = (location, terms)
    return out
