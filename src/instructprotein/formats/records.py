"""The plain records every reader yields and the knowledge-graph builder consumes.

Keeping them format-neutral is what lets the graph be built from either the Debian
Swiss-Prot 2014 package or a user's own UniProt release with one builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# GO aspects by their one-letter code (as in UniProt's "DR GO; GO:...; F:..." lines).
ASPECT_NAMESPACE = {
    "F": "molecular_function",
    "P": "biological_process",
    "C": "cellular_component",
}
NAMESPACE_ASPECT = {v: k for k, v in ASPECT_NAMESPACE.items()}
# Roots carry no information; annotations to them are dropped by the graph builder.
GO_ROOTS = {"GO:0003674": "F", "GO:0008150": "P", "GO:0005575": "C"}

# Relations between ontology terms that readers keep. Propagation follows only the first
# two (true-path rule); ``regulates`` edges are kept for causal chains but not propagated.
TERM_RELATIONS = ("is_a", "part_of", "regulates", "positively_regulates", "negatively_regulates")
PROPAGATING_RELATIONS = ("is_a", "part_of")


@dataclass(slots=True)
class SequenceRecord:
    """One FASTA (or BLAST database) entry."""

    id: str
    description: str
    sequence: str
    line: int = 0  # 1-based line of the header in its file; 0 where it has no lines


@dataclass(slots=True)
class CrossRef:
    """A database cross-reference of a UniProt entry (InterPro, Pfam, PROSITE, ...)."""

    db: str
    id: str
    name: str = ""


@dataclass(slots=True)
class GoAnnotation:
    """A protein's GO term as its source states it (direct, never propagated)."""

    go_id: str
    aspect: str  # "F", "P" or "C"; "" where the source does not say
    evidence: str | None = None  # GO evidence code such as "IDA", where the source has one


@dataclass(slots=True)
class ProteinEntry:
    """One protein with what a UniProt flat-file entry says about it."""

    accession: str
    sequence: str
    entry_name: str = ""
    secondary_accessions: list[str] = field(default_factory=list)
    protein_name: str = ""
    organism: str = ""
    taxonomy: list[str] = field(default_factory=list)
    taxon_id: int | None = None
    go: list[GoAnnotation] = field(default_factory=list)
    interpro: list[CrossRef] = field(default_factory=list)
    pfam: list[CrossRef] = field(default_factory=list)
    prosite: list[CrossRef] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    function: str | None = None  # CC -!- FUNCTION text
    subcellular_location: str | None = None  # CC -!- SUBCELLULAR LOCATION text
    locations: list[str] = field(default_factory=list)  # location names parsed from it
    line: int = 0


@dataclass(slots=True)
class TermRecord:
    """One ontology term (GO), from an OBO file or the GO.sqlite of Bioconductor's GO.db."""

    id: str
    name: str
    namespace: str | None = None  # molecular_function / biological_process / cellular_component
    definition: str | None = None
    synonyms: list[tuple[str, str]] = field(default_factory=list)  # (text, scope: EXACT/BROAD/...)
    is_obsolete: bool = False
    alt_ids: list[str] = field(default_factory=list)
    replaced_by: list[str] = field(default_factory=list)
    consider: list[str] = field(default_factory=list)
    # (relation, parent id) with relation in TERM_RELATIONS; is_a included here
    parents: list[tuple[str, str]] = field(default_factory=list)
    line: int = 0

    @property
    def aspect(self) -> str | None:
        return NAMESPACE_ASPECT.get(self.namespace or "")


@dataclass
class Ontology:
    """A whole ontology release: terms by id, plus where it came from."""

    terms: dict[str, TermRecord]
    source: str
    version: str | None = None
    alt_index: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.alt_index:
            self.alt_index = {alt: t.id for t in self.terms.values() for alt in t.alt_ids}

    def resolve(self, term_id: str) -> str | None:
        """Map an id (primary, alternative, or obsolete with one replacement) to a live term.

        Returns ``None`` for ids that are unknown or obsolete without a single replacement:
        guessing among several ``consider`` candidates would invent annotations.
        """
        term = self.terms.get(term_id)
        if term is None:
            primary = self.alt_index.get(term_id)
            if primary is None:
                return None
            term = self.terms[primary]
        seen: set[str] = set()
        while term.is_obsolete:
            if len(term.replaced_by) != 1 or term.id in seen:
                return None
            seen.add(term.id)
            nxt = self.terms.get(term.replaced_by[0])
            if nxt is None:
                return None
            term = nxt
        return term.id
