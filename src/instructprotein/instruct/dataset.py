"""Build the instruction dataset: decontaminate, split, sample debiased triples, generate in shards.

Stages and their files (all under one output folder, each reused when its inputs match):

- ``decontamination/``: proteins too close to a benchmark sequence (``removed.tsv``);
- ``splits/``: train / valid / test by 30 %-identity cluster, and the 80 % clusters;
- ``plan.npz``: the sampled (protein, term, task) triples of every split, a pure function
  of the graph, the clusters and the seed;
- ``jsonl/{split}-{shard}.jsonl`` and ``parquet/...``: the instructions, each shard a pure
  function of (graph, plan, shard) so that shards can run on any machine in any order;
- ``hf/``: the Hugging Face ``DatasetDict`` (Arrow) of the three splits;
- ``instructions.json``: parameters, counts, skipped records; ``frequency.tsv``: each
  term's triples before and its draws after debiased sampling.

Rule for long proteins: a protein longer than ``max_residues`` (default 1000, as the
paper's evaluation cut) makes no instruction and is counted as skipped. Cropping would
keep text that may no longer be true of the fragment (a domain cut in half).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from instructprotein.atomic import atomic_dir, atomic_path, write_text
from instructprotein.errors import InputError
from instructprotein.instruct.decontaminate import decontaminate
from instructprotein.instruct.facts import ViewFacts
from instructprotein.instruct.generate import Evidence, GenerateOptions, Instruction, instructions_for_triples
from instructprotein.instruct.homologs import training_homologs
from instructprotein.instruct.kgview import KGView
from instructprotein.instruct.negatives import NegativeSampler
from instructprotein.instruct.sampling import merge_clusters, minhash, plan, signature_keys
from instructprotein.instruct.splits import make_splits, sequence_clusters
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.progress import Progress

SPLITS = ("train", "valid", "test")

# Which tasks can state a sampled triple, by the group of its term, with relative weights.
# Keywords and PROSITE patterns make no instruction of their own (they ride along in text).
TASK_WEIGHTS: dict[str, dict[str, float]] = {
    "F": {"function": 2, "go_terms": 1, "yes_no": 2, "multiple_choice": 1, "design": 1, "protein_kind": 0.5},
    "P": {"go_terms": 1, "yes_no": 2, "multiple_choice": 1, "design": 1},
    "C": {"location": 2, "go_terms": 1, "yes_no": 2, "multiple_choice": 1, "design": 1},
    "interpro": {"protein_kind": 1, "design": 1},
    "pfam": {"protein_kind": 1, "design": 1},
    "location": {"location": 1},
}
TASK_NAMES = tuple(sorted({t for w in TASK_WEIGHTS.values() for t in w}))


@dataclass
class BuildConfig:
    """Every knob of a dataset build; stored in ``instructions.json`` with the results."""

    n_train: int = 100_000
    eval_fraction: float = 0.05  # valid and test each get n_train * eval_fraction draws
    seed: int = 0
    max_residues: int = 1000
    shards: int = 8
    workers: int = 2
    min_identity: float = 0.7  # decontamination threshold
    sensitivity: float = 4.0  # MMseqs2 -s for decontamination
    split_identity: float = 0.3
    split_linclust: bool = False
    cluster_identity: float = 0.8
    minhash_hashes: int = 4
    benchmarks: list[str] = field(default_factory=list)
    generate: dict = field(default_factory=dict)  # GenerateOptions overrides
    evidence_fraction: float = 0.5  # protein -> text instructions with the homologs' evidence block
    evidence_top_k: int = 3
    evidence_max_identity: float | None = None  # None: the decontamination threshold (min_identity)
    evidence_sensitivity: float = 4.0
    task_multipliers: dict[str, float] = field(default_factory=dict)  # task -> factor on its TASK_WEIGHTS


@dataclass
class BuildResult:
    out_dir: Path
    counts: dict[str, dict[str, int]]
    summary: dict


# ------------------------------------------------------------------------------- planning
def eligible_triples(view: KGView, max_residues: int) -> tuple[np.ndarray, np.ndarray, Counter]:
    """All (pid, eid) direct triples that some task can state, of proteins short enough."""
    ptr, eids = view.annotation_csr()
    counts = np.diff(ptr[: view.n_proteins + 2])
    pids = np.repeat(np.arange(len(counts), dtype=np.int32), counts)[: len(eids)]
    group_ok = np.array([g in TASK_WEIGHTS for g in view.group], dtype=bool)
    ok = group_ok[eids]
    short = view.lengths[pids] <= max_residues
    skipped = Counter(
        triples_of_long_proteins=int((ok & ~short).sum()),
        long_proteins=int(((view.lengths > max_residues) & (counts[: len(view.lengths)] > 0)).sum()),
        triples_without_task=int((~ok).sum()),
    )
    keep = ok & short
    return pids[keep], eids[keep], skipped


def profile_keys(view: KGView, seed: int, num_hashes: int) -> np.ndarray:
    """MinHash key of each protein's propagated GO set (roots excluded); index = pid."""
    ptr, eids = view.annotation_csr()
    n_prot = view.n_proteins + 1
    n_ent = view.n_entities + 1
    counts = np.diff(ptr[: n_prot + 1])
    pids = np.repeat(np.arange(n_prot), counts)
    is_go = np.array([a is not None for a in view.aspects], dtype=bool)
    go = is_go[eids]
    direct = sp.csr_matrix((np.ones(int(go.sum()), dtype=np.float32), (pids[go], eids[go])), shape=(n_prot, n_ent))
    cptr, canc = view.closure_csr()
    crow = np.repeat(np.arange(len(cptr) - 1), np.diff(cptr))[: len(canc)]
    keep = ~np.isin(canc, np.fromiter(view.roots, dtype=np.int64))
    closure = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (crow[keep], canc[keep])), shape=(n_ent, n_ent)
    )
    carried = (direct @ closure).tocsr()
    carried.sort_indices()
    return signature_keys(minhash(carried.indptr, carried.indices, num_hashes=num_hashes, seed=seed))


def choose_tasks(
    view: KGView, eids: np.ndarray, rng: np.random.Generator, multipliers: dict[str, float] | None = None
) -> np.ndarray:
    """A task (index into TASK_NAMES) per drawn triple, by the weights of its term's group
    (times ``multipliers[task]``: a build that wants more of one task, e.g. location)."""
    tasks = np.zeros(len(eids), dtype=np.int16)
    groups = np.array([view.group[e] for e in eids.tolist()], dtype=object)
    multipliers = multipliers or {}
    for group, weights in TASK_WEIGHTS.items():
        at = np.flatnonzero(groups == group)
        if len(at) == 0:
            continue
        names = sorted(weights)
        p = np.array([weights[n] * multipliers.get(n, 1.0) for n in names], dtype=np.float64)
        if p.sum() <= 0:
            p = np.array([weights[n] for n in names], dtype=np.float64)
        picks = rng.choice(len(names), size=len(at), p=p / p.sum())
        tasks[at] = np.array([TASK_NAMES.index(n) for n in names], dtype=np.int16)[picks]
    return tasks


# ------------------------------------------------------------------------------- shards
_VIEW: KGView | None = None
_SAMPLER: NegativeSampler | None = None
_EVIDENCE: Evidence | None = None


def _protein_rng(seed: int, pid: int) -> random.Random:
    """A protein's RNG depends only on (seed, protein): shard layout never changes the text."""
    digest = hashlib.blake2b(f"{seed}:{pid}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def _record(inst: Instruction, split: str, focus: str, residues: int) -> dict:
    return {
        "split": split,
        "task": inst.task,
        "direction": inst.direction,
        "accession": inst.accession,
        "focus_term": focus,
        "prompt": inst.prompt,
        "answer": inst.answer,
        "text": inst.text,
        "answer_start": inst.answer_span[0],
        "answer_end": inst.answer_span[1],
        "triples": [list(t) for t in inst.triples],
        "negatives": list(inst.negatives),
        "chain": inst.chain,
        "aspect": inst.aspect,
        "phrasing": inst.phrasing,
        "format": inst.format,
        "residues": residues,
    }


SCHEMA = pa.schema(
    [
        ("split", pa.string()),
        ("task", pa.string()),
        ("direction", pa.string()),
        ("accession", pa.string()),
        ("focus_term", pa.string()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("text", pa.string()),
        ("answer_start", pa.int32()),
        ("answer_end", pa.int32()),
        ("triples", pa.list_(pa.list_(pa.string()))),
        ("negatives", pa.list_(pa.string())),
        ("chain", pa.string()),
        ("aspect", pa.string()),
        ("phrasing", pa.int16()),
        ("format", pa.string()),
        ("residues", pa.int32()),
    ]
)


def generate_shard(
    view: KGView,
    sampler: NegativeSampler,
    split: str,
    pids: np.ndarray,
    eids: np.ndarray,
    tasks: np.ndarray,
    seed: int,
    options: GenerateOptions,
    evidence: Evidence | None = None,
) -> list[dict]:
    """Instructions for one shard of drawn (pid, eid, task) rows, sorted by pid."""
    out: list[dict] = []
    if len(pids) == 0:
        return out
    bounds = np.flatnonzero(np.diff(pids)) + 1
    view.prefetch(np.unique(pids).tolist())
    for part in np.split(np.arange(len(pids)), bounds):
        pid = int(pids[part[0]])
        accession = view.accessions[pid]
        focus = [(int(e), TASK_NAMES[int(t)]) for e, t in zip(eids[part], tasks[part])]
        insts = instructions_for_triples(view, accession, focus, _protein_rng(seed, pid), sampler, options, evidence)
        residues = int(view.lengths[pid])
        # instructions come back in focus order, skipping tasks that did not apply
        for inst in insts:
            out.append(_record(inst, split, _focus_id(view, inst, focus), residues))
    return out


def _focus_id(view: KGView, inst: Instruction, focus: list[tuple[int, str]]) -> str:
    for eid, task in focus:
        if task == inst.task:
            return view.ids[eid]
    return ""


def _write_shard(out_dir: Path, name: str, records: list[dict]) -> int:
    with atomic_path(out_dir / "jsonl" / f"{name}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    with atomic_path(out_dir / "parquet" / f"{name}.parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return len(records)


def _run_shard(job: tuple) -> tuple[str, int]:
    out_dir, name, split, pids, eids, tasks, seed, options = job
    assert _VIEW is not None and _SAMPLER is not None
    records = generate_shard(_VIEW, _SAMPLER, split, pids, eids, tasks, seed, options, _EVIDENCE)
    return name, _write_shard(out_dir, name, records)


# ------------------------------------------------------------------------------- the build
def build_instructions(
    kg_path: str | Path,
    out_dir: str | Path,
    config: BuildConfig,
    progress: Progress | None = None,
    cluster_cache: str | Path | None = None,
) -> BuildResult:
    """Run every stage; reuse those whose outputs match their inputs (``cluster_cache``: a
    folder that keeps the graph's sequence clusterings for other work folders)."""
    global _VIEW, _SAMPLER, _EVIDENCE
    progress = progress or Progress()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = GenerateOptions(**{"evidence_fraction": config.evidence_fraction, **config.generate})
    with KnowledgeGraph(kg_path) as kg:
        removed = (
            decontaminate(
                kg,
                config.benchmarks,
                out_dir / "decontamination",
                min_identity=config.min_identity,
                sensitivity=config.sensitivity,
                progress=progress,
            )
            if config.benchmarks
            else None
        )
        excluded = removed.excluded if removed else frozenset()
        splits = make_splits(
            kg,
            out_dir / "splits",
            min_seq_id=config.split_identity,
            seed=config.seed,
            exclude=excluded,
            progress=progress,
            linclust=config.split_linclust,
            shared=cluster_cache,
        )
        reps = sequence_clusters(
            kg, out_dir / "splits", config.cluster_identity, progress=progress, shared=cluster_cache
        )
    with progress.step("load the graph into memory"):
        view = KGView(kg_path)
        sampler = NegativeSampler(view, min_depth=options.min_depth)
    with progress.step("annotation profiles (MinHash) and clusters"):
        pids, eids, skipped = eligible_triples(view, config.max_residues)
        keys = profile_keys(view, config.seed, config.minhash_hashes)
        rep_pid = np.arange(view.n_proteins + 1)
        for acc, rep in reps.items():
            if acc in view.pid_of and rep in view.pid_of:
                rep_pid[view.pid_of[acc]] = view.pid_of[rep]
        cluster = merge_clusters(rep_pid, keys)
        split_code = np.full(view.n_proteins + 1, -1, dtype=np.int8)
        for acc, name in splits.split.items():
            if name in SPLITS and acc in view.pid_of:
                split_code[view.pid_of[acc]] = SPLITS.index(name)
    rng = np.random.default_rng(config.seed)
    drawn: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    plan_stats: dict[str, dict] = {}
    frequency_before: Counter = Counter()
    frequency_after: Counter = Counter()
    expected_after: dict[int, float] = {}
    with progress.step("debiased sampling"):
        for code, name in enumerate(SPLITS):
            mask = split_code[pids] == code
            s_pids, s_eids = pids[mask], eids[mask]
            n = config.n_train if name == "train" else max(1, round(config.n_train * config.eval_fraction))
            if len(s_pids) == 0:
                drawn[name] = (s_pids, s_eids, np.zeros(0, dtype=np.int16))
                plan_stats[name] = {"triples": 0, "clusters": 0, "proteins": 0, "draws": 0}
                continue
            sampling = plan(s_pids, cluster)
            idx = sampling.draw(n, seed=config.seed * 1000 + code)
            d_pids, d_eids = s_pids[idx], s_eids[idx]
            d_tasks = choose_tasks(view, d_eids, rng, config.task_multipliers)
            drawn[name] = (d_pids, d_eids, d_tasks)
            plan_stats[name] = {
                "triples": int(len(s_pids)),
                "clusters": sampling.clusters,
                "proteins": sampling.proteins,
                "draws": n,
            }
            if name == "train":
                frequency_before.update(s_eids.tolist())
                frequency_after.update(d_eids.tolist())
                # the sampler's own expectation per term: free of the noise of a finite draw
                mass = np.bincount(s_eids, weights=sampling.probability * len(s_eids))
                expected_after = {int(e): float(mass[e]) for e in np.unique(s_eids)}
    evidence, evidence_info = None, {}
    if options.evidence_fraction > 0:
        evidence, evidence_info = _evidence(kg_path, view, drawn, splits, out_dir, config, progress)
    with atomic_path(out_dir / "plan.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, **{f"{s}_{k}": v for s, arrs in drawn.items() for k, v in zip(("pid", "eid", "task"), arrs)}
        )
    jobs = []
    for name in SPLITS:
        d_pids, d_eids, d_tasks = drawn[name]
        n_shards = max(1, min(config.shards, len(d_pids))) if name == "train" else 1
        for k, part in enumerate(_pid_aligned_chunks(d_pids, n_shards)):
            jobs.append(
                (out_dir, f"{name}-{k:05d}", name, d_pids[part], d_eids[part], d_tasks[part], config.seed, options)
            )
    for sub in ("jsonl", "parquet"):
        (out_dir / sub).mkdir(exist_ok=True)
        for old in (out_dir / sub).glob("*"):
            old.unlink()
    _VIEW, _SAMPLER, _EVIDENCE = view, sampler, evidence
    counts: dict[str, int] = {}
    total_draws = sum(len(j[3]) for j in jobs)
    with progress.step("generate instructions", total=total_draws) as bar:
        if config.workers > 1 and len(jobs) > 1:
            ctx = mp.get_context("fork")
            with ctx.Pool(min(config.workers, len(jobs))) as pool:
                for (name, n), job in zip(pool.imap(_run_shard, jobs), jobs):
                    counts[name] = n
                    bar.advance(len(job[3]))
        else:
            for job in jobs:
                name, n = _run_shard(job)
                counts[name] = n
                bar.advance(len(job[3]))
    _VIEW = _SAMPLER = _EVIDENCE = None
    with progress.step("Hugging Face dataset (Arrow)"):
        per_split = assemble_hf(out_dir)
    summary = {
        "config": asdict(config),
        "kg": str(kg_path),
        "kg_content_hash": view.meta.get("content_hash", "") if hasattr(view, "meta") else "",
        "decontamination": removed.counts if removed else {},
        "splits": splits.counts,
        "evidence": evidence_info,
        "sampling": plan_stats,
        "skipped": dict(skipped),
        "instructions": per_split,
        "shards": counts,
    }
    write_text(out_dir / "instructions.json", json.dumps(summary, indent=2, default=str) + "\n")
    with atomic_path(out_dir / "frequency.tsv") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        # triples_before: the term's triples in the train split; expected_after: its expected
        # number among as many draws under debiased sampling; draws_after: the actual draws
        fh.write("term\tname\tgroup\ttriples_before\texpected_after\tdraws_after\n")
        for eid in sorted(frequency_before, key=lambda e: (-frequency_before[e], view.ids[e])):
            fh.write(
                f"{view.ids[eid]}\t{view.names[eid]}\t{view.group[eid]}\t{frequency_before[eid]}\t"
                f"{expected_after.get(eid, 0.0):.3f}\t{frequency_after.get(eid, 0)}\n"
            )
    view.close()
    return BuildResult(out_dir, {"instructions": per_split}, summary)


def _evidence(
    kg_path: str | Path,
    view: KGView,
    drawn: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    splits,
    out_dir: Path,
    config: BuildConfig,
    progress: Progress,
) -> tuple[Evidence, dict]:
    """Search the homologs of every protein a protein -> text instruction is drawn about (all
    splits) among the training split's proteins (:mod:`~instructprotein.instruct.homologs`)."""
    design = TASK_NAMES.index("design")
    pids = sorted({int(p) for d_pids, _e, d_tasks in drawn.values() for p, t in zip(d_pids, d_tasks) if t != design})
    train = [a for a, name in splits.split.items() if name == "train"]
    max_identity = config.evidence_max_identity
    if max_identity is None:
        max_identity = config.min_identity if config.benchmarks else 0.7
    with KnowledgeGraph(kg_path) as kg:
        found = training_homologs(
            kg,
            [view.accessions[p] for p in pids],
            train,
            out_dir / "homologs",
            top_k=config.evidence_top_k,
            max_identity=max_identity,
            sensitivity=config.evidence_sensitivity,
            progress=progress,
        )
    by_pid = {
        view.pid_of[q]: [(view.pid_of[a], ident) for a, ident in hits if a in view.pid_of]
        for q, hits in found.items()
        if q in view.pid_of
    }
    info = {
        "proteins_searched": len(by_pid),
        "with_homologs": sum(1 for v in by_pid.values() if v),
        "max_identity": max_identity,
        "top_k": config.evidence_top_k,
        "fraction": config.evidence_fraction,
    }
    return Evidence(ViewFacts(view), by_pid), info


def _pid_aligned_chunks(pids: np.ndarray, n: int) -> list[np.ndarray]:
    """Split sorted draws into ``n`` chunks of similar size that never cut a protein in two."""
    if len(pids) == 0:
        return [np.arange(0)]
    cuts = [0]
    for k in range(1, n):
        at = int(np.searchsorted(pids, pids[min(len(pids) - 1, k * len(pids) // n)], side="left"))
        if at > cuts[-1]:
            cuts.append(at)
    cuts.append(len(pids))
    return [np.arange(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def assemble_hf(out_dir: Path) -> dict[str, dict[str, int]]:
    """Join the Parquet shards into a ``DatasetDict`` saved with ``save_to_disk``.

    Streams: the shards' record batches go into one Arrow stream file per split (in a scratch
    folder removed afterwards), which ``Dataset.from_file`` memory-maps and ``save_to_disk``
    copies from, so memory stays flat whatever the number of instructions (a million
    instructions are ~1.5 GB of text).
    """
    import shutil
    import tempfile

    import datasets

    datasets.disable_progress_bars()
    files: dict[str, list[str]] = {s: [] for s in SPLITS}
    for path in sorted((out_dir / "parquet").glob("*.parquet")):
        files[path.name.split("-")[0]].append(str(path))
    scratch = Path(tempfile.mkdtemp(prefix=".hf-cache-", dir=out_dir))
    try:
        dd = datasets.DatasetDict()
        per_split: dict[str, dict[str, int]] = {}
        for name, paths in files.items():
            arrow = scratch / f"{name}.arrow"
            with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as writer:
                for path in paths:
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000):
                        writer.write_batch(batch)
            ds = datasets.Dataset.from_file(str(arrow))
            dd[name] = ds
            tasks = Counter()
            for batch in ds.data.to_batches(max_chunksize=200_000):
                tasks.update(batch.column(batch.schema.get_field_index("task")).to_pylist())
            per_split[name] = dict(sorted(tasks.items()))
            per_split[name]["total"] = ds.num_rows
        if sum(v["total"] for v in per_split.values()) == 0:
            raise InputError("no instruction was generated (no annotated protein in any split?)", out_dir)
        with atomic_dir(out_dir / "hf") as tmp:
            # one shard per 500 MB, and one even for an empty split (zero shards would not load)
            shards = {name: max(1, int(ds.data.nbytes // 500_000_000) + 1) for name, ds in dd.items()}
            dd.save_to_disk(str(tmp), num_shards=shards)
        del dd
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return per_split


def load_instructions(out_dir: str | Path):
    """The built ``DatasetDict`` (train / valid / test)."""
    import datasets

    path = Path(out_dir) / "hf"
    if not path.exists():
        raise InputError("no instruction dataset here; run `instructprotein instructions build`", out_dir)
    return datasets.load_from_disk(str(path))


__all__ = ["BuildConfig", "build_instructions", "load_instructions"]
