"""Instruction task families as data: hand-written phrasings and the English helpers they use.

The paper had an LLM paraphrase its instructions; we have no LLM here, so each task has
many hand-written phrasings that differ in wording *and* structure (question vs
imperative, terse vs long, with or without a context sentence). A model that sees only
one wording learns the wording; one that sees a dozen learns the task.

A :class:`Phrasing` is a question template and an answer template with ``{slot}``
placeholders; each :class:`Task` lists the slots its generator fills (``Task.slots``), and
:func:`render` refuses a phrasing that asks for a slot the caller did not give. Task names
are stable ids written into datasets: rename one and old datasets no longer match.

The first phrasing of ``location`` and ``yes_no`` is the exact wording of the paper's
benchmark prompts, so zero-shot evaluation prompts are in-distribution.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Direction = Literal["protein_to_text", "text_to_protein"]

ASPECT_NAMES: dict[str, str] = {"F": "molecular function", "P": "biological process", "C": "cellular component"}


@dataclass(frozen=True)
class Phrasing:
    """One wording of a task: a question template and the answer template that goes with it."""

    question: str
    answer: str

    @cached_property
    def slots(self) -> frozenset[str]:
        """Slots used in the question or the answer (``{Terms}`` counts as ``terms``)."""
        return frozenset(_base_slot(s) for s in _slots(self.question) | _slots(self.answer))


@dataclass(frozen=True)
class Task:
    """A task family: its stable name, its direction, the slots it fills, its phrasings."""

    name: str
    direction: Direction
    phrasings: list[Phrasing]
    slots: frozenset[str] = field(default_factory=frozenset)
    description: str = ""

    def indices(self, *, requires: str | None = None, excludes: str | None = None) -> list[int]:
        """Phrasing indices that use (or do not use) a given slot, e.g. design with a length hint."""
        out = []
        for i, p in enumerate(self.phrasings):
            if requires is not None and requires not in p.slots:
                continue
            if excludes is not None and excludes in p.slots:
                continue
            out.append(i)
        return out


def _slots(template: str) -> frozenset[str]:
    return frozenset(name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name)


def _base_slot(name: str) -> str:
    """``{Terms}`` is ``{terms}`` with its first letter capitalised (for answers that open with it)."""
    return name[0].lower() + name[1:] if name and name[0].isupper() else name


class _Strict(dict):
    def __missing__(self, key: str) -> str:
        base = _base_slot(key)
        if base != key and base in self:
            return capitalize_first(str(self[base]))
        raise KeyError(key)


def render(task: str | Task, index: int, slots: Mapping[str, str]) -> tuple[str, str]:
    """``(question, answer)`` of phrasing ``index`` of ``task`` with its slots filled.

    Extra slots are ignored (a generator fills every slot of the task once and lets the
    phrasing pick); a missing one is an error naming the task and the phrasing. A
    capitalised placeholder (``{Terms}``) is its lower-case slot with the first letter
    upper-cased, so an answer may open with a slot value.
    """
    t = TASKS[task] if isinstance(task, str) else task
    p = t.phrasings[index]
    values = _Strict(slots)
    try:
        return p.question.format_map(values), p.answer.format_map(values)
    except KeyError as exc:
        raise KeyError(f"task {t.name} phrasing {index} needs slot {exc.args[0]!r}") from None


# -- the tasks ------------------------------------------------------------------------------

FUNCTION = Task(
    "function",
    "protein_to_text",
    description="Summarise the protein's molecular function from its most specific MF terms"
    " (the generator appends the UniProt FUNCTION text where the graph has it).",
    slots=frozenset({"functions", "terms"}),
    phrasings=[
        Phrasing("What is the function of this protein?", "The protein {functions}."),
        Phrasing("Describe the molecular function of the protein.", "Its molecular function: {terms}."),
        Phrasing("What does this protein do at the molecular level?", "At the molecular level it {functions}."),
        Phrasing("Summarize the protein's molecular function in one sentence.", "This protein {functions}."),
        Phrasing("Function?", "{Terms}."),
        Phrasing(
            "Proteins act through molecular activities such as binding a ligand or catalysing a reaction."
            " Which activities does this protein carry out?",
            "It {functions}.",
        ),
        Phrasing(
            "Based on its sequence, what would you predict the molecular function of this protein to be?",
            "Based on its sequence, the protein most likely {functions}.",
        ),
        Phrasing("Tell me what this protein does.", "It {functions}."),
        Phrasing("Please give a brief functional annotation of the protein above.", "Molecular function: {terms}."),
        Phrasing("Which molecular functions does the protein enable?", "The protein enables the following: {terms}."),
        Phrasing("Characterize the biochemical role of this protein.", "Biochemically, this protein {functions}."),
        Phrasing(
            "I have sequenced the protein shown above and need to know its activity. What is it?",
            "The protein {functions}.",
        ),
    ],
)

LOCATION = Task(
    "location",
    "protein_to_text",
    description="Where the protein is: its most specific cellular-component terms (or UniProt"
    " subcellular locations where the graph has no CC term).",
    slots=frozenset({"locations"}),
    phrasings=[
        # The paper's benchmark prompt and answer prefix, verbatim.
        Phrasing("What cellular components is the protein located in?", "The protein is located in {locations}."),
        Phrasing("Where is this protein located in the cell?", "It is found in {locations}."),
        Phrasing("Subcellular location?", "{Locations}."),
        Phrasing("Predict the subcellular localization of the protein.", "The protein localizes to {locations}."),
        Phrasing("In which part of the cell does this protein reside?", "It resides in {locations}."),
        Phrasing(
            "Proteins are made in the cytosol and then sorted to the compartments where they work."
            " Which cellular component does this protein end up in?",
            "This protein ends up in {locations}.",
        ),
        Phrasing("Name the cellular component(s) this protein is associated with.", "Cellular component: {locations}."),
        Phrasing("Tell me where in the cell this protein can be found.", "The protein can be found in {locations}."),
        Phrasing("Which cellular compartment does the protein belong to?", "The protein is located in {locations}."),
        Phrasing(
            "Given the amino acid sequence above, where would you expect the protein to be localized?",
            "I would expect it to be localized in {locations}.",
        ),
        Phrasing("Give the localization of this protein.", "Localization: {locations}."),
    ],
)

GO_TERMS = Task(
    "go_terms",
    "protein_to_text",
    description="List the protein's GO terms of one aspect (F, P or C: a parameter).",
    slots=frozenset({"aspect_name", "terms", "term_lines", "n"}),
    phrasings=[
        Phrasing("List the {aspect_name} GO terms of this protein.", "{term_lines}"),
        Phrasing(
            "Which Gene Ontology {aspect_name} terms annotate the protein?", "The protein is annotated with {terms}."
        ),
        Phrasing("What are the protein's GO annotations in the {aspect_name} aspect?", "{Terms}."),
        Phrasing("GO {aspect_name} terms?", "{term_lines}"),
        Phrasing(
            "The Gene Ontology describes proteins in three aspects: molecular function, biological process"
            " and cellular component. Give this protein's {aspect_name} terms with their identifiers.",
            "Its {aspect_name} terms are:\n{term_lines}",
        ),
        Phrasing("Annotate the protein with Gene Ontology terms ({aspect_name} only).", "{term_lines}"),
        Phrasing(
            "Which {aspect_name} terms would a curator assign to this protein?", "A curator would assign {terms}."
        ),
        Phrasing("Name the GO terms for the {aspect_name} of the protein above.", "{Terms}."),
        Phrasing("Predict the Gene Ontology {aspect_name} annotations of this sequence, one per line.", "{term_lines}"),
        Phrasing(
            "How would you annotate this protein's {aspect_name} using the Gene Ontology?",
            "I would annotate it with {n} {aspect_name} term(s): {terms}.",
        ),
        Phrasing("Give the {aspect_name} GO terms of the protein.", "{Terms}."),
    ],
)

PROTEIN_KIND = Task(
    "protein_kind",
    "protein_to_text",
    description="What kind of protein this is: from InterPro / family signatures where present,"
    " else from the most specific MF terms.",
    slots=frozenset({"kind"}),
    phrasings=[
        Phrasing("What kind of protein is this?", "This is {kind}."),
        Phrasing("What type of protein is shown above?", "It is {kind}."),
        Phrasing("Classify this protein.", "{Kind}."),
        Phrasing("Which protein family or class does this sequence belong to?", "The sequence is {kind}."),
        Phrasing("Identify the kind of protein.", "The protein is {kind}."),
        Phrasing(
            "Proteins are grouped into families by shared domains and activities. How would you classify"
            " the protein above?",
            "I would classify it as {kind}.",
        ),
        Phrasing("Protein class?", "{Kind}."),
        Phrasing("Tell me what sort of protein this sequence encodes.", "The sequence encodes {kind}."),
        Phrasing("What is this protein, broadly speaking?", "Broadly speaking, it is {kind}."),
        Phrasing("Describe the protein in a few words.", "{Kind}."),
        Phrasing(
            "Looking at this amino acid sequence, what category of protein would you say it is?",
            "It looks like {kind}.",
        ),
    ],
)

YES_NO = Task(
    "yes_no",
    "protein_to_text",
    description="Triple classification: is (protein, relation, term) true? Negatives from"
    " NegativeSampler, never carried by the protein.",
    slots=frozenset({"term", "answer"}),
    phrasings=[
        # The paper's benchmark prompt and answer prefix, verbatim.
        Phrasing("Does the protein associate with {term}?", "Based on the record, the answer is {answer}."),
        Phrasing("Is this protein associated with {term}?", "{Answer}."),
        Phrasing("Answer yes or no: is the protein annotated with {term}?", "{Answer}."),
        Phrasing("Does {term} describe this protein?", "The answer is {answer}."),
        Phrasing("{Term}: does it apply to the protein above?", "{Answer}."),
        Phrasing(
            "Gene Ontology terms describe what a protein does, which processes it takes part in and where"
            " it is. Does the term {term} apply to this protein?",
            "Based on the record, the answer is {answer}.",
        ),
        Phrasing("Check whether the protein carries the annotation {term}.", "{Answer}, according to its annotations."),
        Phrasing("True or false (reply yes or no): this protein is linked to {term}.", "{Answer}."),
        Phrasing('Can the protein be described by the term "{term}"?', "{Answer}."),
        Phrasing("Is there a record linking this protein to {term}?", "Based on the record, the answer is {answer}."),
        Phrasing("Would you annotate this sequence with {term}? Answer yes or no.", "{Answer}."),
    ],
)

MULTIPLE_CHOICE = Task(
    "multiple_choice",
    "protein_to_text",
    description="Pick the one true annotation among lettered options; distractors from NegativeSampler.",
    slots=frozenset({"options", "letter", "option", "aspect_name"}),
    phrasings=[
        Phrasing(
            "Which of the following {aspect_name} terms applies to this protein?\n{options}", "{letter}. {option}"
        ),
        Phrasing("Choose the correct annotation for the protein.\n{options}", "The answer is {letter}: {option}."),
        Phrasing("{options}\nWhich option describes the protein above?", "{letter} ({option})"),
        Phrasing(
            "Only one of these Gene Ontology terms is a true annotation of the protein. Which one?\n{options}",
            "{letter}. {option}",
        ),
        Phrasing("Select the {aspect_name} of this protein:\n{options}", "Answer: {letter}. {option}"),
        Phrasing(
            "Multiple choice. The protein is associated with which term?\n{options}\nAnswer with the letter.",
            "{letter}. {option}",
        ),
        Phrasing("Pick the right {aspect_name} term.\n{options}", "The correct option is {letter}, {option}."),
        Phrasing(
            "A curator annotated this protein with one of the following terms. Which?\n{options}",
            "{letter}: {option}",
        ),
        Phrasing("Which is true of this protein?\n{options}", "{letter}. {option}"),
        Phrasing(
            "Read the protein sequence and decide which {aspect_name} below belongs to it.\n{options}",
            "It is {letter}: {option}.",
        ),
        Phrasing("Identify the correct GO term:\n{options}", "{letter}. {option}"),
        Phrasing("Which applies?\n{options}", "{letter}. {option}"),
    ],
)

DESIGN = Task(
    "design",
    "text_to_protein",
    description="Head prediction: write a protein from one or several annotations, with or without a"
    " length hint. The answer is the protein itself, so decoding can start at <protein>.",
    slots=frozenset({"description", "properties", "length", "protein"}),
    phrasings=[
        Phrasing("Design a protein that {description}.", "{protein}"),
        Phrasing("Generate the sequence of a protein with these properties: {properties}.", "{protein}"),
        Phrasing("Write an amino acid sequence for a protein that {description}.", "{protein}"),
        Phrasing("I need a protein that {description}. Give me its sequence.", "{protein}"),
        Phrasing("Protein with: {properties}.", "{protein}"),
        Phrasing(
            "Proteins with the same annotations often share sequence features. Propose a sequence for a"
            " protein that {description}.",
            "{protein}",
        ),
        Phrasing("Can you design a protein that {description}?", "{protein}"),
        Phrasing("Create a protein sequence matching these annotations: {properties}.", "{protein}"),
        Phrasing("Design a protein of about {length} residues that {description}.", "{protein}"),
        Phrasing("Generate a sequence of roughly {length} amino acids for a protein that {description}.", "{protein}"),
        Phrasing("Write a protein, about {length} residues long, with these properties: {properties}.", "{protein}"),
        Phrasing("I need a protein that {description}; it should be about {length} residues long.", "{protein}"),
        Phrasing("Sequence (about {length} aa) for: {properties}.", "{protein}"),
    ],
)

TASKS: dict[str, Task] = {
    t.name: t for t in (FUNCTION, LOCATION, GO_TERMS, PROTEIN_KIND, YES_NO, MULTIPLE_CHOICE, DESIGN)
}
"""Every task by its stable id."""


# -- English helpers ------------------------------------------------------------------------
#
# GO names are noun phrases ("zinc ion binding", "protein kinase activity"); answers read
# better as verb phrases ("binds zinc ion", "has protein kinase activity") and noun phrases
# ("a protein kinase"). The rules are few and conservative: a name they do not recognise is
# wrapped in a neutral verb ("enables ...") rather than mangled.

_ENZYME_LIKE = re.compile(r"(ase|or|er|channel|factor|protein|pump|antiporter|symporter|uniporter)$")


def article(phrase: str) -> str:
    """``a`` or ``an`` for a phrase, including letter-by-letter acronyms ("an RNA", "a DNA")."""
    word = phrase.split(" ", 1)[0].split("-", 1)[0]
    if not word:
        return "a"
    if len(word) > 1 and word.isupper():  # an acronym: read letter by letter
        return "an" if word[0] in "AEFHILMNORSX" else "a"
    return "an" if word[0].lower() in "aeiou" else "a"


def capitalize_first(text: str) -> str:
    """Upper-case the first letter unless the first word is cased on purpose ("mRNA", "ATP")."""
    if not text:
        return text
    first = text.split(" ", 1)[0]
    if text[0].islower() and first[1:] == first[1:].lower():
        return text[0].upper() + text[1:]
    return text


def join_list(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"; with "; " when an item has its own comma (GO names can)."""
    items = list(items)
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    sep = "; " if any("," in i for i in items) else ", "
    return sep.join(items[:-1]) + " and " + items[-1]


def function_phrase(name: str, form: Literal["third", "base"] = "third") -> str:
    """A molecular-function name as a verb phrase: "binds zinc ion", "has kinase activity"."""
    third = form == "third"
    if name.endswith(" binding") and "," not in name and " involved in " not in name:
        return f"{'binds' if third else 'bind'} {name[: -len(' binding')]}"
    if " activity" in name:
        return f"{'has' if third else 'have'} {name}"
    if name.startswith("structural constituent of ") or name.startswith("structural molecule"):
        return f"{'is' if third else 'be'} {article(name)} {name}"
    return f"{'enables' if third else 'enable'} {name}"


def process_phrase(name: str, form: Literal["third", "base"] = "third") -> str:
    """A biological-process name as a verb phrase: "takes part in DNA repair"."""
    return f"{'takes' if form == 'third' else 'take'} part in {name}"


def location_phrase(name: str, form: Literal["third", "base"] = "third") -> str:
    """A cellular-component name as a verb phrase: "is located in nucleus" (no article, as the benchmark)."""
    return f"{'is' if form == 'third' else 'be'} located in {name}"


def signature_phrase(name: str, accession: str, form: Literal["third", "base"] = "third") -> str:
    """An InterPro / Pfam / PROSITE entry as a verb phrase: "has the Znf_C2H2_type signature (IPR013087)"."""
    return f"{'has' if form == 'third' else 'have'} the {name} signature ({accession})"


def kind_from_function(name: str) -> str:
    """A noun phrase for "what kind of protein" from an MF name.

    "protein kinase activity" -> "a protein kinase", "zinc ion binding" -> "a zinc
    ion-binding protein", anything else -> "a protein with <name>".
    """
    if name.endswith(" activity") and "," not in name:
        core = name[: -len(" activity")]
        if _ENZYME_LIKE.search(core):
            return f"{article(core)} {core}"
        return f"a protein with {name}"
    if name.endswith(" binding") and "," not in name and " involved in " not in name:
        core = name[: -len(" binding")]
        return f"{article(core)} {core}-binding protein"
    return f"a protein with {name}"


def kind_from_signatures(entries: Sequence[tuple[str, str]]) -> str:
    """A noun phrase from (accession, short name) signature entries: "a member of the X family (IPR...)"."""
    if len(entries) == 1:
        acc, name = entries[0]
        return f"a member of the {name} family ({acc})" if name and name != acc else f"a member of the {acc} family"
    named = [f"{name} ({acc})" if name and name != acc else acc for acc, name in entries]
    return f"a protein with the signatures {join_list(named)}"


def length_hint(length: int) -> int:
    """A round number near the length: to 10 below 500 residues, to 50 above (a hint, not a spec)."""
    step = 10 if length < 500 else 50
    return max(step, int(round(length / step)) * step)


def scaffold_texts(repeat: int = 50) -> list[str]:
    """The fixed words of every instruction, for the tokenizer to learn as whole tokens.

    A BPE trained on GO and ChEBI text alone splits "Instruction", "Output", "identical" and
    "answer" into three to five pieces each: every prompt then spends some 40 tokens on its
    scaffolding, which a short context takes from the protein. Each phrasing's question and
    answer with its slots left empty, the paper's format markers and the evidence blocks'
    words, ``repeat`` times each.
    """
    from instructprotein.prompt.render import INSTRUCTION_PREFIX, OUTPUT_SEPARATOR

    pieces = [
        INSTRUCTION_PREFIX,
        OUTPUT_SEPARATOR,
        "Based on the record, the answer is yes.",
        "Based on the record, the answer is no.",
        "Homologs: none found.",
        "Homologs with",
        "62% identical: yes. 41% identical: no. 35% identical: unknown.",
        "location unknown.",
        "no GO annotation.",
        "The protein is located in",
    ]
    from instructprotein.instruct.compartments import ANCHORS  # (imports this module: here, not at the top)

    pieces += [f"The protein is located in {c}." for c in ANCHORS]
    for task in TASKS.values():
        for ph in task.phrasings:
            pieces += [re.sub(r"\{\w*\}", "", ph.question), re.sub(r"\{\w*\}", "", ph.answer)]
    return [p for p in pieces if p.strip()] * repeat
