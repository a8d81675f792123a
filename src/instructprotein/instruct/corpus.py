"""The pre-training corpus: protein sequences and biomedical text, shuffled into shards.

The paper pre-trains on UniRef100 sequences and PubMed text together, so that one model
reads both languages before it learns to translate between them. Here the protein side is
the knowledge graph's sequences (minus held-out and decontaminated proteins, so pre-training
never sees an evaluation protein) and the text side is every GO term's name, definition,
synonyms and parents written as sentences, ChEBI definitions where given, and any text a
user brings (plain text: one document per paragraph; JSON lines: a ``text`` field).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from instructprotein.atomic import atomic_path, write_text
from instructprotein.errors import InputError
from instructprotein.formats.records import ASPECT_NAMESPACE, Ontology
from instructprotein.formats.textio import numbered_lines
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.progress import Progress
from instructprotein.prompt.render import protein_text

ASPECT_PHRASE = {a: ns.replace("_", " ") for a, ns in ASPECT_NAMESPACE.items()}


@dataclass
class CorpusStats:
    proteins: int = 0
    proteins_excluded: int = 0
    proteins_cropped: int = 0
    go_documents: int = 0
    chebi_documents: int = 0
    user_documents: int = 0
    residues: int = 0
    text_characters: int = 0
    proteins_not_sampled: int = 0
    shards: int = 0
    max_residues: int = 0
    max_proteins: int | None = None
    seed: int = 0
    sources: list[str] = field(default_factory=list)


def crop(sequence: str, max_residues: int, key: str) -> str:
    """A window of at most ``max_residues``, placed by a hash of ``key`` (stable across runs).

    Long proteins are cropped rather than dropped (titin would otherwise vanish) and the
    window position varies between proteins so that C-termini are seen too.
    """
    if len(sequence) <= max_residues:
        return sequence
    span = len(sequence) - max_residues
    start = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") % (span + 1)
    return sequence[start : start + max_residues]


def go_documents(kg: KnowledgeGraph) -> Iterator[str]:
    """One short encyclopaedic paragraph per GO term: name, aspect, definition, synonyms, parents."""
    con = kg.con
    parents: dict[int, list[tuple[str, str]]] = {}
    for child, rel, name in con.execute(
        "SELECT g.child, g.relation, e.name FROM edge g JOIN entity e ON e.eid = g.parent ORDER BY g.child, e.name"
    ):
        parents.setdefault(child, []).append((rel, name))
    synonyms: dict[int, list[str]] = {}
    for eid, text in con.execute("SELECT eid, text FROM synonym ORDER BY eid, text"):
        synonyms.setdefault(eid, []).append(text)
    for eid, name, aspect, definition in con.execute(
        "SELECT eid, name, aspect, definition FROM entity WHERE kind = 'go' ORDER BY eid"
    ):
        if not name:
            continue
        parts = [f"{name[0].upper()}{name[1:]} is a {ASPECT_PHRASE.get(aspect, 'term')} in the Gene Ontology."]
        if definition:
            parts.append(definition.strip())
        kinds = [n for rel, n in parents.get(eid, []) if rel == "is_a"]
        wholes = [n for rel, n in parents.get(eid, []) if rel == "part_of"]
        regulated = [n for rel, n in parents.get(eid, []) if rel.endswith("regulates")]
        if kinds:
            parts.append(f"It is a kind of {', '.join(kinds)}.")
        if wholes:
            parts.append(f"It is part of {', '.join(wholes)}.")
        if regulated:
            parts.append(f"It regulates {', '.join(regulated)}.")
        if synonyms.get(eid):
            parts.append(f"Also known as: {'; '.join(synonyms[eid][:8])}.")
        yield " ".join(parts)


def chebi_documents(ontology: Ontology) -> Iterator[str]:
    for term in sorted(ontology.terms.values(), key=lambda t: t.id):
        if term.is_obsolete or not term.name or not term.definition:
            continue
        yield f"{term.name[0].upper()}{term.name[1:]}: {term.definition.strip()}"


def user_documents(path: Path) -> Iterator[str]:
    """Plain text (paragraphs separated by blank lines) or JSON lines with a ``text`` field."""
    is_jsonl = path.name.endswith((".jsonl", ".jsonl.gz"))
    paragraph: list[str] = []
    for number, line in numbered_lines(path):
        if is_jsonl:
            if not line.strip():
                continue
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"expected a JSON object with a 'text' field ({exc})", path, number) from exc
            if not isinstance(text, str):
                raise InputError("'text' must be a string", path, number)
            if text.strip():
                yield text.strip()
        elif line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            yield " ".join(paragraph)
            paragraph = []
    if paragraph:
        yield " ".join(paragraph)


def build_corpus(
    kg: KnowledgeGraph,
    out_dir: str | Path,
    *,
    exclude: Iterable[str] = (),
    chebi: Ontology | None = None,
    user_text: Iterable[Path] = (),
    max_residues: int = 1000,
    max_proteins: int | None = None,
    shards: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
) -> CorpusStats:
    """Write ``out_dir/shard-0000N.jsonl`` (records ``{"text", "source"}``) and ``corpus.json``.

    ``max_proteins``: keep a seeded sample of that many of the allowed proteins (a small
    preset reads a few million tokens in its budget; writing and tokenising all of
    Swiss-Prot for it would cost more than the training).
    """
    progress = progress or Progress()
    out_dir = Path(out_dir)
    excluded = set(exclude)
    stats = CorpusStats(max_residues=max_residues, max_proteins=max_proteins, seed=seed)
    keep: set[str] | None = None
    if max_proteins is not None:
        allowed = [a for a in kg.accessions() if a and a not in excluded]
        if len(allowed) > max_proteins:
            rng = np.random.default_rng(seed)
            keep = {allowed[i] for i in rng.choice(len(allowed), size=max_proteins, replace=False).tolist()}
    docs: list[str] = []
    sources: list[str] = []
    total = kg.count("protein")
    with progress.step("protein sequences", total=total) as bar:
        for accession, sequence in kg.con.execute("SELECT accession, sequence FROM protein ORDER BY pid"):
            bar.advance()
            if accession in excluded:
                stats.proteins_excluded += 1
                continue
            if keep is not None and accession not in keep:
                stats.proteins_not_sampled += 1
                continue
            window = crop(sequence, max_residues, accession)
            stats.proteins_cropped += window != sequence
            stats.proteins += 1
            stats.residues += len(window)
            docs.append(protein_text(window))
            sources.append("protein")
    with progress.step("GO text"):
        for doc in go_documents(kg):
            docs.append(doc)
            sources.append("go")
            stats.go_documents += 1
    if chebi is not None:
        for doc in chebi_documents(chebi):
            docs.append(doc)
            sources.append("chebi")
            stats.chebi_documents += 1
    for path in user_text:
        for doc in user_documents(Path(path)):
            docs.append(doc)
            sources.append("user")
            stats.user_documents += 1
        stats.sources.append(str(path))
    if not docs:
        raise InputError("the corpus would be empty", out_dir)
    stats.text_characters = sum(len(d) for d, s in zip(docs, sources) if s != "protein")
    order = np.random.default_rng(seed).permutation(len(docs))
    shards = max(1, min(shards, len(docs)))
    stats.shards = shards
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("shard-*.jsonl"):
        old.unlink()
    with progress.step("write shards", total=shards) as bar:
        for shard, part in enumerate(np.array_split(order, shards)):
            with atomic_path(out_dir / f"shard-{shard:05d}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
                for i in part.tolist():
                    fh.write(json.dumps({"text": docs[i], "source": sources[i]}, ensure_ascii=False) + "\n")
            bar.advance()
    summary = asdict(stats) | {"kg_content_hash": kg.meta.get("content_hash", "")}
    write_text(out_dir / "corpus.json", json.dumps(summary, indent=2) + "\n")
    return stats
