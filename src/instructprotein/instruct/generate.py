"""Instructions for one protein: the pure, per-protein part of the dataset builder.

:func:`instructions_for_protein` turns one protein's triples into instructions of every
task in :data:`~instructprotein.instruct.templates.TASKS`, framed as knowledge-graph
completion as in the paper: tail prediction (protein -> annotation: ``function``,
``location``, ``go_terms``, ``protein_kind``, ``multiple_choice``), triple classification
(``yes_no``) and head prediction (annotation -> protein: ``design``). Each instruction
records the triples it states, the negatives it denies and, where there is one, the
knowledge chain that explains the answer (the paper's KCM); with probability
``options.chain_in_answer`` the chain is also written into the answer as its reason.

It is pure: everything comes from the :class:`KGView` (memory), the
:class:`NegativeSampler` (memory) and the ``rng`` passed in, so the same seed, graph and
options give the same instructions, and shards can be generated in any order or process.
Which proteins and triples to use (debiased sampling), decontamination and writing are
the dataset builder's job, not this module's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from instructprotein.instruct.chains import Chain, chain_text, cross_aspect_chain, go_chain, go_path_chain
from instructprotein.instruct.compartments import Compartments, location_text, view_compartments
from instructprotein.instruct.kgview import GO_ASPECTS, KGView, ProteinInfo, ProteinTerms
from instructprotein.instruct.negatives import NegativeSampler
from instructprotein.instruct.templates import (
    ASPECT_NAMES,
    TASKS,
    Direction,
    capitalize_first,
    function_phrase,
    join_list,
    kind_from_function,
    kind_from_signatures,
    length_hint,
    location_phrase,
    process_phrase,
    render,
    signature_phrase,
)
from instructprotein.kg.schema import PROTEIN_RELATIONS
from instructprotein.prompt.evidence import evidence_block, with_evidence
from instructprotein.prompt.render import protein_text, render_paper, render_plain

if TYPE_CHECKING:
    from instructprotein.instruct.facts import ViewFacts

Triple = tuple[str, str, str]

# relation of a protein -> entity triple by annotation group (GO aspect or entity kind)
RELATION: dict[str, str] = {
    (aspect if kind == "go" else kind): rel
    for (kind, aspect), rel in PROTEIN_RELATIONS.items()  # type: ignore[misc]
}
SIGNATURE_KINDS = ("interpro", "pfam")


@dataclass(slots=True)
class Instruction:
    """One rendered instruction and where it came from.

    ``text`` is the full training text, ``prompt`` is ``text[:answer_span[0]]`` (so
    ``prompt + answer == text``) and ``text[answer_span[0]:answer_span[1]] == answer``.
    ``triples`` are the (accession, relation, term id) facts the answer states;
    ``negatives`` the term ids it denies (yes/no "no", multiple-choice distractors).
    ``phrasing`` is the index into ``TASKS[task].phrasings``.
    """

    task: str
    direction: Direction
    prompt: str
    answer: str
    text: str
    answer_span: tuple[int, int]
    accession: str
    triples: list[Triple]
    chain: str = ""
    phrasing: int = 0
    negatives: list[str] = field(default_factory=list)
    aspect: str = ""
    format: Literal["paper", "plain"] = "paper"

    def to_dict(self) -> dict:
        """A plain dict of plain values, ready for ``json.dumps`` (which writes tuples as lists)."""
        return asdict(self)


@dataclass(frozen=True)
class GenerateOptions:
    """Knobs of per-protein generation; defaults are what the dataset builder uses.

    - ``counts``: instructions to try per task (a task absent from ``tasks`` makes none);
      a task that does not apply to the protein (no annotation of its kind) makes none.
    - ``max_terms``: at most this many terms in a function / location / kind / design answer;
      ``max_list_terms`` for ``go_terms`` lists.
    - ``min_depth``: yes/no and multiple-choice terms are at least this far below the root
      ("binding" and "cellular process" say nothing); negatives follow the same rule.
    - ``direct_positive``: probability that a yes/no or multiple-choice positive is one of
      the protein's most specific direct terms rather than any propagated one.
    - ``chain_in_answer``: probability of writing the knowledge chain into the answer.
    - ``length_hint``: probability that a design instruction states the length.
    - ``max_design_length``: no design instruction for longer proteins (None: no limit).
    - ``evidence_fraction``: probability that a protein -> text instruction of a protein
      with searched homologs (an :class:`Evidence` given) carries their evidence block
      before its question (:mod:`~instructprotein.prompt.evidence`), so the model learns
      to answer with and without retrieval.
    - ``paper_phrasing``: probability of phrasing 0 (the paper's benchmark wording, the
      one inference asks in) instead of a uniform choice among all phrasings.
    - ``task_paper_phrasing``: the same probability for one task, over ``paper_phrasing``:
      one answer form for yes/no (``{"yes_no": 1.0}``) keeps the other tasks' varied
      wording, which a model needs to follow requests it was not trained on verbatim.
    """

    tasks: tuple[str, ...] = tuple(TASKS)
    counts: Mapping[str, int] = field(default_factory=dict)
    default_count: int = 1
    max_terms: int = 5
    max_list_terms: int = 10
    min_depth: int = 2
    yes_fraction: float = 0.5
    hard_fraction: float = 0.5
    n_choices: int = 4
    direct_positive: float = 0.5
    chain_in_answer: float = 0.5
    length_hint: float = 0.5
    max_design_annotations: int = 3
    max_design_length: int | None = 1024
    design_format: Literal["paper", "plain"] = "paper"
    evidence_fraction: float = 0.5
    paper_phrasing: float = 0.3
    task_paper_phrasing: Mapping[str, float] = field(default_factory=dict)

    def count(self, task: str) -> int:
        return self.counts.get(task, self.default_count) if task in self.tasks else 0


@dataclass
class Evidence:
    """Retrieval for the generator: each protein's homologs (pid, identity; best first) among
    the training proteins, found by the dataset builder, and how to describe them. A protein
    absent from ``homologs`` was not searched and gets no block; an empty list gets
    ``Homologs: none found.``"""

    facts: ViewFacts
    homologs: Mapping[int, Sequence[tuple[int, float]]]

    def block(self, pid: int, kind: str, term: int | None = None) -> str | None:
        found = self.homologs.get(pid)
        if found is None:
            return None
        name = self.facts.view.names[term] if term is not None else None
        return evidence_block(kind, self.facts.facts(found, kind, term), name)


class _Protein:
    """Per-protein working state: looked-up once, shared by every task."""

    def __init__(
        self,
        view: KGView,
        accession: str,
        rng: random.Random,
        sampler: NegativeSampler,
        options: GenerateOptions,
        evidence: Evidence | None = None,
    ):
        self.evidence = evidence
        self.view = view
        self.pid = view.pid(accession)
        self.accession = view.accessions[self.pid]
        self.rng = rng
        self.sampler = sampler
        self.options = options
        self.terms: ProteinTerms = view.terms(self.pid)
        self._info: ProteinInfo | None = None
        self._protein_text: str | None = None
        self.specific: dict[str, list[int]] = {a: view.most_specific(self.terms.direct.get(a, ())) for a in GO_ASPECTS}
        self._carried: dict[str, list[int]] = {}
        self._cross: Chain | None | Literal[False] = False
        # the sampled triple's term an instruction must be about (debiased sampling), if any
        self.focus: int | None = None

    @property
    def compartments(self) -> Compartments:
        return view_compartments(self.view)

    def ordered(self, group: str) -> list[int]:
        """The most specific direct terms of a group, the focus term first when it is of it."""
        terms = (
            self.specific[group]
            if group in self.specific
            else sorted(self.terms.direct.get(group, ()), key=lambda e: self.view.ids[e])
        )
        f = self.focus
        if f is None or self.view.group[f] != group:
            return list(terms)
        return [f] + [e for e in terms if e != f]

    @property
    def info(self) -> ProteinInfo:
        if self._info is None:
            self._info = self.view.protein_info(self.pid)
        return self._info

    @property
    def protein_text(self) -> str:
        """The protein in model notation, written once for all of this protein's instructions."""
        if self._protein_text is None:
            self._protein_text = protein_text(self.info.sequence)
        return self._protein_text

    def carried(self, aspect: str) -> list[int]:
        """Carried terms of an aspect deep enough to ask about, in a fixed order."""
        got = self._carried.get(aspect)
        if got is None:
            v, d = self.view, self.options.min_depth
            got = sorted(e for e in self.terms.carried if v.aspects[e] == aspect and v.depth[e] >= d)
            self._carried[aspect] = got
        return got

    def cross_chain(self) -> Chain | None:
        if self._cross is False:
            self._cross = cross_aspect_chain(self.view, self.accession)
        return self._cross

    def triple(self, eid: int) -> Triple:
        return (self.accession, RELATION[self.view.group[eid]], self.view.ids[eid])

    def name(self, eid: int) -> str:
        return self.view.names[eid]

    def phrasing(self, task: str, indices: list[int] | None = None) -> int:
        n = len(TASKS[task].phrasings)
        pool = list(range(n)) if indices is None else indices
        paper = self.options.task_paper_phrasing.get(task, self.options.paper_phrasing)
        if 0 in pool and paper and self.rng.random() < paper:
            return 0
        return pool[self.rng.randrange(len(pool))]

    def chain_for(self, eid: int) -> Chain:
        """Why the protein carries ``eid``: its hierarchy chain if direct, else the path
        from the nearest direct term up to it."""
        v = self.view
        if eid in self.terms.direct_go:
            return go_chain(v, v.ids[eid])
        sources = [d for d in self.terms.direct_go if eid in v.ancestor_set(d)]
        best = min(sources, key=lambda d: (v.ancestor_distances(d)[eid], v.ids[d]))
        chain = go_path_chain(v, v.ids[best], v.ids[eid])
        return chain if chain is not None else Chain([])

    def positive(self, aspect: str) -> int | None:
        """A term of ``aspect`` the protein carries, deep enough to ask about."""
        min_depth = self.options.min_depth
        f = self.focus
        if f is not None and self.view.group[f] == aspect and self.view.depth[f] >= min_depth:
            return f
        direct = [e for e in self.specific[aspect] if self.view.depth[e] >= min_depth]
        if direct and self.rng.random() < self.options.direct_positive:
            return direct[self.rng.randrange(len(direct))]
        pool = self.carried(aspect)
        return pool[self.rng.randrange(len(pool))] if pool else None

    def finish(
        self,
        task: str,
        index: int,
        question: str,
        answer: str,
        triples: list[Triple],
        chain: Chain | None = None,
        negatives: list[str] | None = None,
        aspect: str = "",
        asked: int | None = None,
    ) -> Instruction:
        """Render the instruction; write the chain into the answer with probability ``chain_in_answer``;
        put the homologs' evidence before the question with probability ``evidence_fraction``
        (about the ``asked`` term for a yes/no question)."""
        if self.evidence is not None and TASKS[task].direction == "protein_to_text":
            if self.rng.random() < self.options.evidence_fraction:
                kind = "location" if task == "location" else "term" if asked is not None else "general"
                question = with_evidence(question, self.evidence.block(self.pid, kind, asked))
        ctext = chain_text(chain, self.rng) if chain is not None else ""
        if ctext and self.rng.random() < self.options.chain_in_answer:
            # the reason follows the answer as its own sentence (its own line after a list)
            sep = "\n" if "\n" in answer else (" " if answer.endswith((".", "?", "!")) else ". ")
            answer = f"{answer}{sep}{capitalize_first(ctext)}{'' if ctext.endswith('.') else '.'}"
        direction = TASKS[task].direction
        fmt: Literal["paper", "plain"] = "paper"
        if direction == "protein_to_text":
            text, span = render_paper(self.protein_text, question, answer)
        elif self.options.design_format == "plain":
            text, span = render_plain(question, answer)
            fmt = "plain"
        else:
            text, span = render_paper(None, question, answer)
        return Instruction(
            task,
            direction,
            text[: span[0]],
            answer,
            text,
            span,
            self.accession,
            triples,
            ctext,
            index,
            negatives or [],
            aspect,
            fmt,
        )


# -- one function per task; None when the task does not apply to the protein ---------------------


def _function(p: _Protein) -> Instruction | None:
    mf = p.ordered("F")[: p.options.max_terms]
    text = p.info.function
    if not mf and not text:
        return None
    index = p.phrasing("function")
    if mf:
        names = [p.name(e) for e in mf]
        question, answer = render(
            "function", index, {"functions": join_list([function_phrase(n) for n in names]), "terms": join_list(names)}
        )
        if text:
            answer = f"{answer} {text}"
    else:  # FUNCTION text only (a UniProt graph): the free text is the answer
        question, _ = render("function", index, {"functions": "", "terms": ""})
        answer = text or ""
    chain = p.cross_chain() or (go_chain(p.view, p.view.ids[mf[0]]) if mf else None)
    return p.finish("function", index, question, answer, [p.triple(e) for e in mf], chain, aspect="F")


def _location(p: _Protein) -> Instruction | None:
    cc = p.ordered("C")[: p.options.max_terms]
    chain = None
    if cc:
        eids = cc
        names = [location_text(p.compartments.of_terms(p.terms.direct.get("C", ())), [p.name(e) for e in cc])]
        chain = go_chain(p.view, p.view.ids[cc[0]])
    else:  # UniProt subcellular locations where the graph has no CC term
        eids = sorted(p.terms.direct.get("location", ()), key=lambda e: p.view.ids[e])[: p.options.max_terms]
        names = [_lower_first(p.name(e)) for e in eids]
    if not eids:
        return None
    index = p.phrasing("location")
    question, answer = render("location", index, {"locations": join_list(names)})
    return p.finish("location", index, question, answer, [p.triple(e) for e in eids], chain, aspect="C")


def _go_terms(p: _Protein) -> Instruction | None:
    aspects = [a for a in GO_ASPECTS if p.specific[a]]
    if not aspects:
        return None
    focus_group = p.view.group[p.focus] if p.focus is not None else None
    aspect = focus_group if focus_group in aspects else aspects[p.rng.randrange(len(aspects))]
    eids = p.ordered(aspect)[: p.options.max_list_terms]
    v = p.view
    slots = {
        "aspect_name": ASPECT_NAMES[aspect],
        "terms": join_list([v.names[e] for e in eids]),
        "term_lines": "\n".join(f"{v.ids[e]} {v.names[e]}" for e in eids),
        "n": str(len(eids)),
    }
    index = p.phrasing("go_terms")
    question, answer = render("go_terms", index, slots)
    chain = go_chain(v, v.ids[eids[0]])
    return p.finish("go_terms", index, question, answer, [p.triple(e) for e in eids], chain, aspect=aspect)


def _protein_kind(p: _Protein) -> Instruction | None:
    v = p.view
    sig: list[int] = []
    for kind in SIGNATURE_KINDS:
        sig = sorted(p.terms.direct.get(kind, ()), key=lambda e: v.ids[e])
        if sig:
            break
    chain: Chain | None
    if sig:
        used = sig[:3]
        kind_text = kind_from_signatures([(v.ids[e], v.names[e]) for e in used])
        cross = p.cross_chain()
        chain = cross if cross is not None and cross.steps[0].kind in SIGNATURE_KINDS else None
    elif p.specific["F"]:
        used = p.specific["F"][:1]
        kind_text = kind_from_function(v.names[used[0]])
        chain = go_chain(v, v.ids[used[0]])
    else:
        return None
    index = p.phrasing("protein_kind")
    question, answer = render("protein_kind", index, {"kind": kind_text})
    return p.finish("protein_kind", index, question, answer, [p.triple(e) for e in used], chain)


def _question_aspect(p: _Protein) -> str | None:
    """An aspect the protein has direct GO terms in: only there can the graph say yes or no."""
    aspects = [a for a in GO_ASPECTS if p.specific[a] and p.carried(a)]
    focus_group = p.view.group[p.focus] if p.focus is not None else None
    if focus_group in aspects:
        return focus_group
    return aspects[p.rng.randrange(len(aspects))] if aspects else None


def _yes_no(p: _Protein) -> Instruction | None:
    aspect = _question_aspect(p)
    if aspect is None:
        return None
    positive = p.positive(aspect)
    if positive is None:
        return None
    index = p.phrasing("yes_no")
    if p.rng.random() < p.options.yes_fraction:
        question, answer = render("yes_no", index, {"term": p.name(positive), "answer": "yes"})
        return p.finish(
            "yes_no",
            index,
            question,
            answer,
            [p.triple(positive)],
            p.chain_for(positive),
            aspect=aspect,
            asked=positive,
        )
    negs = p.sampler.sample(p.rng, aspect, p.terms, 1, anchor=positive, hard_fraction=p.options.hard_fraction)
    if not negs:
        return None
    neg = negs[0].eid
    question, answer = render("yes_no", index, {"term": p.name(neg), "answer": "no"})
    return p.finish("yes_no", index, question, answer, [], None, [p.view.ids[neg]], aspect, asked=neg)


def _multiple_choice(p: _Protein) -> Instruction | None:
    aspect = _question_aspect(p)
    if aspect is None:
        return None
    positive = p.positive(aspect)
    if positive is None:
        return None
    k = p.options.n_choices - 1
    negs = p.sampler.sample(p.rng, aspect, p.terms, k, anchor=positive, hard_fraction=p.options.hard_fraction)
    if len(negs) < k:
        return None
    options = [positive] + [n.eid for n in negs]
    p.rng.shuffle(options)
    letters = "ABCDEFGHIJ"
    lines = "\n".join(f"{letters[i]}. {p.name(e)}" for i, e in enumerate(options))
    right = options.index(positive)
    index = p.phrasing("multiple_choice")
    slots = {
        "options": lines,
        "letter": letters[right],
        "option": p.name(positive),
        "aspect_name": ASPECT_NAMES[aspect],
    }
    question, answer = render("multiple_choice", index, slots)
    return p.finish(
        "multiple_choice",
        index,
        question,
        answer,
        [p.triple(positive)],
        p.chain_for(positive),
        [p.view.ids[n.eid] for n in negs],
        aspect,
    )


def _design(p: _Protein) -> Instruction | None:
    v, opts, rng = p.view, p.options, p.rng
    length = int(v.lengths[p.pid])
    if opts.max_design_length is not None and length > opts.max_design_length:
        return None
    groups: list[tuple[str, list[int]]] = []
    sig = sorted(p.terms.direct.get("interpro", ()) or p.terms.direct.get("pfam", ()), key=lambda e: v.ids[e])
    focus = p.focus
    if focus is not None and v.group[focus] in ("interpro", "pfam"):
        sig = [focus] + [e for e in sig if e != focus]
    if sig:
        groups.append(("signature", sig[: opts.max_terms]))
    groups += [(a, p.ordered(a)[: opts.max_terms]) for a in GO_ASPECTS if p.specific[a]]
    if not groups:
        return None
    n = rng.randint(1, min(opts.max_design_annotations, len(groups)))
    chosen = sorted(rng.sample(range(len(groups)), n))  # keep the order domain, function, process, location
    holding = [i for i, (_g, eids) in enumerate(groups) if focus is not None and eids[0] == focus]
    if holding and holding[0] not in chosen:  # the sampled term must be part of the request
        chosen = sorted([holding[0]] + chosen[1:])
    clauses, names, picked = [], [], []
    for i in chosen:
        group, eids = groups[i]
        e = eids[0] if i in holding else eids[rng.randrange(len(eids))]
        name = v.names[e]
        picked.append(e)
        names.append(name if group != "signature" else f"{name} ({v.ids[e]})")
        clauses.append(
            signature_phrase(name, v.ids[e])
            if group == "signature"
            else function_phrase(name)
            if group == "F"
            else process_phrase(name)
            if group == "P"
            else location_phrase(name)
        )
    task = TASKS["design"]
    with_length = rng.random() < opts.length_hint
    index = p.phrasing("design", task.indices(requires="length") if with_length else task.indices(excludes="length"))
    slots = {
        "description": join_list(clauses),
        "properties": "; ".join(names),
        "length": str(length_hint(length)),
        "protein": p.protein_text,
    }
    question, answer = render("design", index, slots)
    return p.finish("design", index, question, answer, [p.triple(e) for e in picked])


def _lower_first(name: str) -> str:
    """UniProt location names are capitalised ("Nucleus"); GO-style lower case reads as the benchmark."""
    first = name.split(" ", 1)[0]
    return name[0].lower() + name[1:] if first[1:] == first[1:].lower() else name


_BUILDERS = {
    "function": _function,
    "location": _location,
    "go_terms": _go_terms,
    "protein_kind": _protein_kind,
    "yes_no": _yes_no,
    "multiple_choice": _multiple_choice,
    "design": _design,
}


def instructions_for_protein(
    kg_view: KGView,
    accession: str,
    rng: random.Random,
    negatives_provider: NegativeSampler,
    options: GenerateOptions | None = None,
    evidence: Evidence | None = None,
) -> list[Instruction]:
    """Every instruction ``options`` asks for that this protein supports, in task order.

    A protein without annotations yields no instruction (and no error): there is nothing
    true to say about it. Deterministic given ``rng``'s state.
    """
    options = options or GenerateOptions()
    unknown = set(options.tasks) - set(_BUILDERS)
    if unknown:
        raise ValueError(f"unknown task(s): {', '.join(sorted(unknown))}")
    if negatives_provider.min_depth != options.min_depth:
        # positives and negatives must share the depth floor, or depth alone gives the answer away
        raise ValueError(
            f"NegativeSampler min_depth {negatives_provider.min_depth} != options.min_depth {options.min_depth}"
        )
    p = _Protein(kg_view, accession, rng, negatives_provider, options, evidence)
    out: list[Instruction] = []
    for task in TASKS:
        for _ in range(options.count(task)):
            inst = _BUILDERS[task](p)
            if inst is not None:
                out.append(inst)
    return out


def instructions_for_triples(
    kg_view: KGView,
    accession: str,
    focus: Sequence[tuple[int, str]],
    rng: random.Random,
    negatives_provider: NegativeSampler,
    options: GenerateOptions | None = None,
    evidence: Evidence | None = None,
) -> list[Instruction]:
    """One instruction per sampled (term eid, task) of this protein, about that term.

    This is how debiased sampling reaches the text: the sampler picks triples with
    probability 1/m * 1/|cluster| * 1/|triples|, and each becomes an instruction whose
    positive (yes/no, multiple choice), first listed term (function, location, GO terms)
    or requested property (design) is the sampled term. A (term, task) pair that the task
    cannot express for this protein (a term too general to ask about, say) falls back to
    the task's own choice of term; a task that does not apply yields nothing.
    """
    options = options or GenerateOptions()
    p = _Protein(kg_view, accession, rng, negatives_provider, options, evidence)
    out: list[Instruction] = []
    for eid, task in focus:
        p.focus = eid
        inst = _BUILDERS[task](p)
        if inst is not None:
            out.append(inst)
    p.focus = None
    return out
