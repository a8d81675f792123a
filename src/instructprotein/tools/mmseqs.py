"""MMseqs2 as a subprocess: locate the binary, cluster sequences, search one set against another.

The instruction layer needs two things from MMseqs2 (Steinegger & Söding 2017): sequence
clusters (80 % identity for the debiased sampler, 30 % for homology-aware splits) and a
homology search (decontamination against benchmark sets; the evaluation's homology-transfer
baseline). Both go through :class:`MMseqs`, which

- finds a binary (:meth:`MMseqs.locate`): an explicit path, ``$INSTRUCTPROTEIN_MMSEQS``,
  ``mmseqs`` on ``PATH``, or the Debian build unpacked by ``instructprotein data fetch
  --group tools`` (the fastest SIMD build this CPU runs, with ``LD_LIBRARY_PATH`` pointing
  at the unpacked ``libgzstream``, so no root install is needed);
- writes its inputs under *internal* ids (``0``, ``1``, ...), so that any user id (with
  ``|``, ``:`` or anything MMseqs2 might parse) comes back unchanged and in full;
- runs every job inside a scratch folder under the caller's ``workdir``, removed afterwards
  whatever happens (MMseqs2's temporary databases reach gigabytes on big inputs);
- turns a failure into :class:`MMseqsError` carrying the tail of MMseqs2's own message.

Speed versus sensitivity (2 cores; the Swiss-Prot 2014 graph has 435k distinct sequences):

- ``easy-linclust`` is linear-time and the right tool at high identity: 80 % identity took
  92 s here. At 30 % it is fast too (110 s) but blind: 123k clusters where ``easy-cluster``
  finds 59k, i.e. half the 30 % links missed. ``easy-cluster`` at 30 % took 598 s.
- For search, ``-s`` (``sensitivity``) sets how many similar k-mers the prefilter tries.
  ``-s 7.5`` over 11k queries against 516k targets took 36 minutes. For
  near-identical hits it buys nothing: on 1,000 random benchmark sequences against the
  435k, ``-s 4`` and ``-s 7.5`` found the same 6,791 pairs at >= 70 % identity (174 s vs
  222 s; fixed costs dominate a run this small). Remote homologs (< 40 %) are where a
  higher ``-s`` pays. Small runs cost ~2 s whatever their size: the prefilter allocates its
  k-mer table (~0.9 GB) every time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from instructprotein.errors import InputError, InstructProteinError, SourceError
from instructprotein.formats.fasta import read_fasta, write_fasta
from instructprotein.formats.records import SequenceRecord
from instructprotein.progress import Progress
from instructprotein.sources.registry import resource_path

__all__ = [
    "MMSEQS_ENV",
    "SEARCH_COLUMNS",
    "Hit",
    "MMseqs",
    "MMseqsError",
    "cluster",
    "default_threads",
    "search",
]

MMSEQS_ENV = "INSTRUCTPROTEIN_MMSEQS"
FETCH_HINT = "run `instructprotein data fetch --group tools` (or install MMseqs2 and put `mmseqs` on PATH)"

# Debian ships one build per SIMD level (plus a dispatcher script we do not keep); the
# first whose CPU flag is present wins. ``pni`` is how /proc/cpuinfo spells SSE3.
SIMD_BUILDS: tuple[tuple[str, str], ...] = (
    ("avx2", "mmseqs-avx2"),
    ("avx", "mmseqs-avx"),
    ("sse4_1", "mmseqs-sse4.1"),
    ("ssse3", "mmseqs-ssse3"),
    ("pni", "mmseqs-sse3"),
)

# Columns of ``--format-output`` that :class:`Hit` holds, in this order.
SEARCH_COLUMNS = ("query", "target", "fident", "alnlen", "evalue", "bits", "qcov", "tcov")

_STDERR_TAIL = 2000  # characters of MMseqs2's output quoted in an error


class MMseqsError(InstructProteinError):
    """MMseqs2 ran but failed; the message ends with the tail of what it printed."""

    def __init__(self, command: str, returncode: int, output: str):
        self.command = command
        self.returncode = returncode
        self.output = output
        tail = output.strip()[-_STDERR_TAIL:]
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
        hint = ""
        if "error while loading shared libraries" in output:
            hint = f"\n(a runtime library is missing: {FETCH_HINT})"
        super().__init__(f"mmseqs {command} {how}:\n{tail or '(no output)'}{hint}")


@dataclass(frozen=True, slots=True)
class Hit:
    """One alignment of a query to a target, as MMseqs2 reports it.

    ``fident`` is the fraction of identical residues over the alignment length (0..1; with
    ``--format-output`` MMseqs2 gives ``fident`` as a fraction and ``pident`` as a percent).
    ``qcov`` / ``tcov`` are the fractions of the query / target covered by the alignment.
    """

    query: str
    target: str
    fident: float
    alnlen: int
    evalue: float
    bits: float
    qcov: float
    tcov: float

    @property
    def shorter_coverage(self) -> float:
        """Coverage of the shorter of the two sequences (the larger of ``qcov`` and ``tcov``)."""
        return max(self.qcov, self.tcov)


def default_threads() -> int:
    """The CPUs this process may run on (the affinity mask a batch scheduler sets), else all."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)  # is_file follows links: a dangling one fails


def _best_build(folder: Path, flags: set[str]) -> Path | None:
    """The fastest SIMD build in ``folder`` that this CPU runs; plain ``mmseqs`` as a last resort.

    Plain ``mmseqs`` is Debian's dispatcher script (a link to ``../lib/mmseqs2/simd-dispatch``),
    which the cache does not keep, so it only counts where it resolves.
    """
    for flag, name in SIMD_BUILDS:
        if flag in flags and _runnable(folder / name):
            return folder / name
    if _runnable(folder / "mmseqs"):
        return folder / "mmseqs"
    return None


def _library_dirs(lib_root: Path) -> tuple[Path, ...]:
    """Folders under the unpacked ``libgzstream0`` that hold a shared library."""
    return tuple(sorted({p.parent for p in lib_root.rglob("libgzstream.so*")}))


@dataclass(frozen=True)
class MMseqs:
    """A located MMseqs2 binary plus the library folders it needs at run time."""

    binary: Path
    library_path: tuple[Path, ...] = ()

    # -- locating ---------------------------------------------------------------------------------
    @classmethod
    def locate(cls, cache: str | Path | None = None, binary: str | Path | None = None) -> MMseqs:
        """Find MMseqs2: ``binary``, then ``$INSTRUCTPROTEIN_MMSEQS``, ``mmseqs`` on PATH, the cache.

        An explicit choice that does not exist is an error rather than a silent fall-back,
        so a typo never runs a different MMseqs2 than the one asked for. The cached
        libgzstream folder, where present, is put on ``LD_LIBRARY_PATH`` for every binary
        (it is what the cached Debian build needs; other builds ignore it).
        """
        libs: tuple[Path, ...] = ()
        with contextlib.suppress(SourceError):
            libs = _library_dirs(resource_path("mmseqs-lib", cache))
        for chosen, what in (
            (binary, "the given MMseqs2 binary"),
            (os.environ.get(MMSEQS_ENV) or None, f"${MMSEQS_ENV}"),
        ):
            if chosen is None:
                continue
            path = Path(chosen).expanduser()
            if not path.is_absolute() and path.parent == Path("."):
                found = shutil.which(str(path))
                path = Path(found) if found else path
            if not _runnable(path):
                raise SourceError(f"{what} {path} is not an executable file; {FETCH_HINT}")
            return cls(path, libs)
        on_path = shutil.which("mmseqs")
        if on_path:
            return cls(Path(on_path), libs)
        try:
            folder = resource_path("mmseqs-bin", cache)
        except SourceError:
            raise SourceError(f"MMseqs2 not found (not on PATH, not in the data cache); {FETCH_HINT}") from None
        best = _best_build(folder, _cpu_flags())
        if best is None:
            raise SourceError(f"no MMseqs2 build in {folder} runs on this CPU; {FETCH_HINT}")
        if not libs:
            raise SourceError(f"MMseqs2 is in the cache but its runtime library libgzstream is not; {FETCH_HINT}")
        return cls(best, libs)

    # -- running ----------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """This process's environment with the library folders put first on ``LD_LIBRARY_PATH``."""
        env = dict(os.environ)
        if self.library_path:
            old = env.get("LD_LIBRARY_PATH", "")
            env["LD_LIBRARY_PATH"] = os.pathsep.join([*map(str, self.library_path), *([old] if old else [])])
        return env

    def run(self, args: Sequence[str | Path]) -> str:
        """Run ``mmseqs ARGS``; return its standard output, raise :class:`MMseqsError` on failure."""
        argv = [str(self.binary), *map(str, args)]
        try:
            proc = subprocess.run(argv, env=self.environment(), capture_output=True, text=True, errors="replace")
        except OSError as exc:
            raise SourceError(f"cannot run MMseqs2 at {self.binary} ({exc.strerror or exc}); {FETCH_HINT}") from exc
        if proc.returncode != 0:
            # MMseqs2 prints its errors on stderr, but some workflows only on stdout
            output = proc.stderr if proc.stderr.strip() else proc.stdout
            raise MMseqsError(str(args[0]) if args else "", proc.returncode, output)
        return proc.stdout

    def version(self) -> str:
        """The version string MMseqs2 reports (``14-7e284+ds-1+b2`` for Debian's bookworm build)."""
        return self.run(["version"]).strip()

    # -- clustering -------------------------------------------------------------------------------
    def cluster(
        self,
        records: Iterable[SequenceRecord] | str | Path,
        workdir: str | Path,
        *,
        min_seq_id: float = 0.8,
        coverage: float = 0.8,
        cov_mode: int = 0,
        linclust: bool = True,
        threads: int | None = None,
        extra_args: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> dict[str, str]:
        """Cluster sequences; return member id -> representative id (a representative maps to itself).

        ``records`` are sequence records or a FASTA file (read and checked like any FASTA;
        ids must be unique). ``linclust=True`` runs ``easy-linclust`` (linear time, meant for
        >= 50 % identity), ``False`` runs ``easy-cluster`` (prefilter + alignment, sensitive
        down to ~30 % identity, several times slower). ``coverage`` / ``cov_mode`` are MMseqs2's
        ``-c`` / ``--cov-mode`` (0: the alignment covers that fraction of both sequences).
        """
        _check_fraction("min_seq_id", min_seq_id)
        _check_fraction("coverage", coverage)
        if cov_mode not in range(6):
            raise ValueError(f"cov_mode must be 0..5, got {cov_mode}")
        progress = progress or Progress()
        workflow = "easy-linclust" if linclust else "easy-cluster"
        with _scratch(workdir) as tmp:
            ids = _write_input(records, tmp / "input.fasta", progress, "write sequences to cluster")
            if not ids:
                return {}
            seen: set[str] = set()
            for rid in ids:
                if rid in seen:
                    raise InputError(f"duplicate sequence id {rid!r}: cluster members must be unique")
                seen.add(rid)
            args: list[str | Path] = [
                workflow,
                tmp / "input.fasta",
                tmp / "result",
                tmp / "tmp",
                "--min-seq-id",
                f"{min_seq_id:g}",
                "-c",
                f"{coverage:g}",
                "--cov-mode",
                str(cov_mode),
                "--threads",
                str(threads or default_threads()),
                "-v",
                "1",
                *extra_args,
            ]
            with progress.step(f"mmseqs {workflow} of {len(ids):,} sequences at {min_seq_id:.0%} identity"):
                self.run(args)
            clusters: dict[str, str] = {}
            with open(tmp / "result_cluster.tsv", encoding="ascii") as fh:
                for line in fh:
                    rep, member = line.split()
                    clusters[ids[int(member)]] = ids[int(rep)]
        if len(clusters) != len(ids):
            raise MMseqsError(workflow, 0, f"clustered {len(clusters)} of {len(ids)} sequences")
        return clusters

    # -- searching --------------------------------------------------------------------------------
    def search(
        self,
        queries: Iterable[SequenceRecord] | str | Path,
        targets: Iterable[SequenceRecord] | str | Path,
        workdir: str | Path,
        *,
        min_seq_id: float = 0.0,
        sensitivity: float = 4.0,
        max_seqs: int = 300,
        evalue: float = 1e-3,
        coverage: float = 0.0,
        cov_mode: int = 0,
        threads: int | None = None,
        extra_args: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[Hit]:
        """Search queries against targets with ``easy-search``; return every hit, best first per query.

        ``sensitivity`` is ``-s``: 4 is fast and finds everything above ~50 % identity;
        7.5 is MMseqs2's sensitive setting for remote homologs and costs many times more
        (36 min for 11k queries x 516k targets on 2 cores). ``max_seqs`` caps the targets
        per query that pass the prefilter: a query in a family larger than that loses its
        least similar members, so raise it when every member matters (decontamination).
        ``min_seq_id`` (0..1) drops alignments below that identity, ``evalue`` is the E-value
        cut-off. Ids may repeat: hits carry the records' ids as given.
        """
        _check_fraction("min_seq_id", min_seq_id)
        _check_fraction("coverage", coverage)
        if max_seqs < 1:
            raise ValueError(f"max_seqs must be positive, got {max_seqs}")
        if sensitivity <= 0:
            raise ValueError(f"sensitivity must be positive, got {sensitivity}")
        progress = progress or Progress()
        with _scratch(workdir) as tmp:
            qids = _write_input(queries, tmp / "queries.fasta", progress, "write query sequences")
            tids = _write_input(targets, tmp / "targets.fasta", progress, "write target sequences")
            if not qids or not tids:
                return []
            args: list[str | Path] = [
                "easy-search",
                tmp / "queries.fasta",
                tmp / "targets.fasta",
                tmp / "hits.tsv",
                tmp / "tmp",
                "--format-mode",
                "0",
                "--format-output",
                ",".join(SEARCH_COLUMNS),
                "-s",
                f"{sensitivity:g}",
                "--max-seqs",
                str(max_seqs),
                "-e",
                f"{evalue:g}",
                "--min-seq-id",
                f"{min_seq_id:g}",
                "-c",
                f"{coverage:g}",
                "--cov-mode",
                str(cov_mode),
                "--threads",
                str(threads or default_threads()),
                "-v",
                "1",
                *extra_args,
            ]
            desc = f"mmseqs easy-search of {len(qids):,} against {len(tids):,} sequences (-s {sensitivity:g})"
            with progress.step(desc):
                self.run(args)
            hits: list[Hit] = []
            with open(tmp / "hits.tsv", encoding="ascii") as fh:
                for line in fh:
                    q, t, fident, alnlen, ev, bits, qcov, tcov = line.rstrip("\n").split("\t")
                    hits.append(
                        Hit(
                            qids[int(q)],
                            tids[int(t)],
                            float(fident),
                            int(alnlen),
                            float(ev),
                            float(bits),
                            float(qcov),
                            float(tcov),
                        )
                    )
        return hits


# -- module-level conveniences ------------------------------------------------------------------------


def cluster(
    records: Iterable[SequenceRecord] | str | Path,
    workdir: str | Path,
    min_seq_id: float = 0.8,
    coverage: float = 0.8,
    cov_mode: int = 0,
    linclust: bool = True,
    threads: int | None = None,
    progress: Progress | None = None,
    mmseqs: MMseqs | None = None,
) -> dict[str, str]:
    """:meth:`MMseqs.cluster` with the binary located by :meth:`MMseqs.locate` unless given."""
    tool = mmseqs or MMseqs.locate()
    return tool.cluster(
        records,
        workdir,
        min_seq_id=min_seq_id,
        coverage=coverage,
        cov_mode=cov_mode,
        linclust=linclust,
        threads=threads,
        progress=progress,
    )


def search(
    queries: Iterable[SequenceRecord] | str | Path,
    targets: Iterable[SequenceRecord] | str | Path,
    workdir: str | Path,
    min_seq_id: float = 0.0,
    sensitivity: float = 4.0,
    max_seqs: int = 300,
    threads: int | None = None,
    progress: Progress | None = None,
    mmseqs: MMseqs | None = None,
) -> list[Hit]:
    """:meth:`MMseqs.search` with the binary located by :meth:`MMseqs.locate` unless given."""
    tool = mmseqs or MMseqs.locate()
    return tool.search(
        queries,
        targets,
        workdir,
        min_seq_id=min_seq_id,
        sensitivity=sensitivity,
        max_seqs=max_seqs,
        threads=threads,
        progress=progress,
    )


# -- helpers --------------------------------------------------------------------------------------------


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a fraction in 0..1, got {value}")


@contextlib.contextmanager
def _scratch(workdir: str | Path) -> Iterator[Path]:
    """A fresh folder under ``workdir`` for one MMseqs2 job, removed however the job ends."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mmseqs-", dir=workdir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_input(
    records: Iterable[SequenceRecord] | str | Path, path: Path, progress: Progress, description: str
) -> list[str]:
    """Stream records (or a FASTA file's records) to ``path`` under ids 0, 1, ...; return the real ids."""
    source: Iterable[SequenceRecord] = read_fasta(records) if isinstance(records, str | Path) else records
    ids: list[str] = []

    def renamed() -> Iterator[SequenceRecord]:
        for rec in progress.track(source, description):
            if not rec.sequence:
                raise InputError(f"sequence record {rec.id!r} is empty")
            yield SequenceRecord(str(len(ids)), "", rec.sequence)
            ids.append(rec.id)

    write_fasta(renamed(), path, width=1 << 20)  # one line per sequence: less to write and parse
    return ids
