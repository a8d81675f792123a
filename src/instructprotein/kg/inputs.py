"""Feed the builder from a source: Debian's Swiss-Prot 2014 set, or UniProt flat files + OBO.

Each loader ends in :meth:`GraphBuilder.write`; the choice of source is the only thing a
user changes to move from the embedded default to their own UniProt release.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from instructprotein.errors import InputError, SkipLog
from instructprotein.formats.records import Ontology
from instructprotein.kg.builder import GraphBuilder, add_uniprot_entry
from instructprotein.progress import Progress

ASPECT_DIRS = {"F": "MFO", "P": "BPO", "C": "CCO"}


def enrich_text(base: Ontology, *others: Ontology) -> Ontology:
    """Fill missing definitions and synonyms of ``base`` from other releases of GO.

    The 2014 graph of metastudent-data has names only; the 2013 OBO (every term defined)
    and the 2022 GO.sqlite supply the text the instruction generator and the text corpus
    need. Structure (edges, obsolescence) always stays that of ``base``, the release the
    annotations were made against.
    """
    for other in others:
        for tid, term in base.terms.items():
            src = other.terms.get(tid)
            if src is None:
                continue
            if not term.definition and src.definition:
                term.definition = src.definition
            if not term.synonyms and src.synonyms:
                term.synonyms = list(src.synonyms)
            if not term.name and src.name:
                term.name = src.name
            extra = [a for a in src.alt_ids if a not in term.alt_ids and a not in base.terms]
            term.alt_ids.extend(extra)
        base.alt_index.update({a: t.id for t in base.terms.values() for a in t.alt_ids})
    return base


def check_sample(fraction: float | None) -> None:
    """:class:`InputError` unless ``fraction`` is None or in (0, 1]: ``--sample 0`` once wrote an
    empty graph and reported success."""
    if fraction is None:
        return
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise InputError(f"--sample must be a fraction of the proteins in (0, 1], e.g. 0.01, got {fraction!r}")


def in_sample(accession: str, fraction: float | None) -> bool:
    """Deterministic subset by accession hash: the same proteins for every run and machine."""
    if fraction is None or fraction >= 1:
        return True
    h = int.from_bytes(hashlib.blake2b(accession.encode(), digest_size=8).digest(), "little")
    return h / 2**64 < fraction


def build_from_metastudent(
    folder: str | Path,
    out: str | Path,
    *,
    text_sources: Sequence[Ontology] = (),
    sample: float | None = None,
    skip: SkipLog | None = None,
    progress: Progress | None = None,
) -> Path:
    """Swiss-Prot 2014 (metastudent-data): sequences from the BLAST dbs, GO from goasp_annot.dat."""
    from instructprotein.formats.blastdb import BlastDb, accession_from_title
    from instructprotein.formats.metastudent import metastudent_folder_check, read_annotations, read_go_graph

    check_sample(sample)
    progress = progress or Progress()
    folder = Path(folder)
    metastudent_folder_check(folder)
    with progress.step("read the GO graph (2014)"):
        onto = enrich_text(read_go_graph(folder), *text_sources)
    builder = GraphBuilder(onto, source=f"metastudent-data:{folder}")
    sequences: dict[str, str] = {}
    for sub in ASPECT_DIRS.values():
        prefix = folder / sub / "goasp.fasta"
        with progress.step(f"read sequences {sub}"):
            titles, seqs = BlastDb(prefix).read_all()
        for title, seq in zip(titles, seqs):
            acc = accession_from_title(title)
            if not in_sample(acc, sample):
                continue
            old = sequences.setdefault(acc, seq)
            if old != seq:
                raise InputError(f"accession {acc} has two different sequences across aspects", prefix)
    for acc in sorted(sequences):
        builder.add_protein(acc, sequences[acc])
    for aspect, sub in ASPECT_DIRS.items():
        path = folder / sub / "goasp_annot.dat"
        for acc, ids in progress.track(read_annotations(path, aspect, skip=skip), f"read annotations {sub}"):
            if not in_sample(acc, sample):
                continue
            pid = builder.pid.get(acc)
            if pid is None:
                raise InputError(f"protein {acc} is annotated but has no sequence in {sub}", path)
            builder.annotate_go(pid, ids)
    if skip is not None:
        builder.counts.skipped_records = skip.count
    return builder.write(out, progress, extra_meta={"sample": str(sample or 1.0)})


def build_from_uniprot(
    entries: Sequence[str | Path],
    ontology: Ontology,
    out: str | Path,
    *,
    sample: float | None = None,
    skip: SkipLog | None = None,
    progress: Progress | None = None,
) -> Path:
    """A user's UniProt release (.dat / .dat.gz, Swiss-Prot or TrEMBL) with a GO OBO file."""
    from instructprotein.formats.uniprot import read_uniprot

    check_sample(sample)
    progress = progress or Progress()
    builder = GraphBuilder(ontology, source="uniprot:" + ",".join(str(p) for p in entries))
    for path in entries:
        for entry in progress.track(read_uniprot(path, skip=skip), f"read {Path(path).name}"):
            if in_sample(entry.accession, sample):
                add_uniprot_entry(builder, entry, str(path))
    if skip is not None:
        builder.counts.skipped_records = skip.count
    if not builder.proteins:
        raise InputError("no protein entries read", ",".join(str(p) for p in entries))
    return builder.write(out, progress, extra_meta={"sample": str(sample or 1.0)})
