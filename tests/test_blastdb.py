"""The pure-Python BLAST v4 reader against NCBI's own tools and the real metastudent databases.

Small databases are written by ``makeblastdb`` (Debian ncbi-blast+) and every title, id and
sequence read back is compared with what ``blastdbcmd`` prints for the same database, with
and without ``-parse_seqids`` (metastudent's were made without).
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from instructprotein.errors import InputError
from instructprotein.formats.blastdb import NCBISTDAA, BlastDb, accession_from_title

needs_blast = pytest.mark.skipif(
    shutil.which("makeblastdb") is None or shutil.which("blastdbcmd") is None,
    reason="NCBI BLAST+ (Debian ncbi-blast+) not installed",
)

_rng = random.Random(20140101)
_AA20 = "ACDEFGHIKLMNPQRSTVWY"

# (FASTA header line without ">", sequence): unusual residues, lengths 1 and 5000, titles over
# 127 and over 255 bytes (long-form BER lengths), UniProt / RefSeq / PDB / gi / general ids.
ENTRIES: list[tuple[str, str]] = [
    ("B0RED7|GO:0046933,GO:0046933", "MGSASRASLDSARRVLAELGG"),
    ("sp|P12345|AATM_RABIT Aspartate aminotransferase, mitochondrial", "".join(_rng.choices(_AA20, k=5000))),
    ("one residue", "W"),
    ("odd XUBZOJ residues", "MXUBZOJKXXA"),
    # 157- and 337-byte titles; a space after the id, since -parse_seqids takes the whole first
    # word as an id and refuses one over 50 characters
    ("Q9XYZ1 " + ",".join(f"GO:{n:07d}" for n in range(1, 16)), "MKV" * 40),
    ("P99999 " + ",".join(f"GO:{n:07d}" for n in range(100, 130)), "ACDEFGHIKLMNPQRSTVWY"),
    ("ref|NP_000537.3| cellular tumor antigen p53", "MEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSPDDIEQWFTEDPGP"),
    ("pdb|1ABC|A chain A", "GSHMAS"),
    ("gi|12345|gb|AAB12345.1| a gi and a GenBank id", "MKVLA"),
    ("gnl|mydb|abc123 general id", "MLLKA"),
    ("lowercase in input", "mkvlaa"),
]


def _write_fasta(path: Path, entries: list[tuple[str, str]]) -> None:
    with path.open("w") as fh:
        for header, seq in entries:
            fh.write(f">{header}\n")
            for k in range(0, len(seq), 60):
                fh.write(seq[k : k + 60] + "\n")


def _makeblastdb(fasta: Path, out: Path, *args: str, dbtype: str = "prot") -> Path:
    subprocess.run(
        ["makeblastdb", "-in", str(fasta), "-dbtype", dbtype, "-out", str(out), *args],
        check=True,
        capture_output=True,
    )
    return out


def _blastdbcmd(db: Path, outfmt: str) -> list[str]:
    out = subprocess.run(
        ["blastdbcmd", "-db", str(db), "-entry", "all", "-outfmt", outfmt],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.splitlines()


def _blastdbcmd_fasta(db: Path, extra: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(header, sequence) pairs of ``blastdbcmd -outfmt %f`` (the only output that prints * and - as such)."""
    out = subprocess.run(
        ["blastdbcmd", "-db", str(db), "-outfmt", "%f", *(extra or ("-entry", "all"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    records: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if line.startswith(">"):
            records.append((line[1:], []))
        elif line:
            records[-1][1].append(line)
    return [(h, "".join(parts)) for h, parts in records]


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fasta") / "small.fasta"
    _write_fasta(path, ENTRIES)
    return path


@pytest.fixture(scope="module", params=["plain", "parse_seqids"])
def small_db(request: pytest.FixtureRequest, fasta: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("makeblastdb") is None:
        pytest.skip("NCBI BLAST+ not installed")
    args = ["-blastdb_version", "4"] + (["-parse_seqids"] if request.param == "parse_seqids" else [])
    return _makeblastdb(fasta, tmp_path_factory.mktemp(request.param) / "db", *args)


@needs_blast
def test_small_db_matches_blastdbcmd(small_db: Path) -> None:
    titles = _blastdbcmd(small_db, "%t")
    seqids = _blastdbcmd(small_db, "%i")
    fasta = _blastdbcmd_fasta(small_db)
    with BlastDb(small_db) as db:
        assert len(db) == len(ENTRIES) == len(titles)
        assert db.version == 4
        all_titles, all_seqs = db.read_all()
        for i, (title, seqid, (fasta_header, fasta_seq)) in enumerate(zip(titles, seqids, fasta, strict=True)):
            assert db.header(i) == title == all_titles[i]
            assert db.sequence(i) == fasta_seq == all_seqs[i]
            assert db.length(i) == len(fasta_seq)
            assert db.deflines(i)[0].title == title
            assert seqid in db.deflines(i)[0].seqids  # %i prints the "best" id: gb|... over gi|...
            record = db.record(i)
            # blastdbcmd's FASTA header is "id title" (id only where the title is empty)
            assert f"{record.id} {record.description}".strip() == fasta_header.strip()
            assert record.sequence == fasta_seq
        assert [r.sequence for r in db] == all_seqs
        assert db.total_residues == sum(len(s) for s in all_seqs)
        assert db.max_length == 5000


@needs_blast
def test_small_db_content_is_the_input(small_db: Path) -> None:
    """Independent of blastdbcmd: residues as written (upper-cased), lengths 1 and 5000, X U B Z O J."""
    with BlastDb(str(small_db) + ".pin") as db:  # a path with the .pin suffix works too
        _, seqs = db.read_all()
    assert seqs == [s.upper() for _, s in ENTRIES]
    assert len(seqs[1]) == 5000 and seqs[2] == "W"


@needs_blast
def test_plain_db_ids_are_the_first_title_word(fasta: Path, tmp_path: Path) -> None:
    db_path = _makeblastdb(fasta, tmp_path / "db", "-blastdb_version", "4")
    with BlastDb(db_path) as db:
        records = list(db)
        assert db.deflines(0)[0].ordinal_only
        assert db.deflines(0)[0].seqids == ("gnl|BL_ORD_ID|0",)
    assert records[0].id == "B0RED7|GO:0046933,GO:0046933" and records[0].description == ""
    assert records[1].id == "sp|P12345|AATM_RABIT"
    assert records[1].description == "Aspartate aminotransferase, mitochondrial"
    assert accession_from_title(records[0].id) == "B0RED7"
    assert accession_from_title(db_path.name) == "db"


@needs_blast
def test_stop_and_gap_residues(tmp_path: Path) -> None:
    """'*' and '-' are NCBIstdaa codes 25 and 0; the 0 must not be taken for a separator."""
    fasta = tmp_path / "x.fasta"
    # (tiny inputs make makeblastdb's format sniffing fail, hence the longer sequences)
    seqs = ["MKVLAAGIVLLAWTE*", "ACDEFGH-IKLMNPQRSTVWY", "M"]
    _write_fasta(fasta, [("a", seqs[0]), ("b", seqs[1]), ("c", seqs[2])])
    db_path = _makeblastdb(fasta, tmp_path / "db", "-blastdb_version", "4")
    with BlastDb(db_path) as db:
        assert db.read_all()[1] == seqs == [s for _, s in _blastdbcmd_fasta(db_path)]


def test_accession_from_title() -> None:
    assert accession_from_title("P12345|GO:0005524,GO:0000166") == "P12345"
    assert accession_from_title("sp|Q9XYZ1|NAME_HUMAN Some protein") == "Q9XYZ1"
    assert accession_from_title("tr|A0A000|A0A000_9BACT x") == "A0A000"
    assert accession_from_title("plain words") == "plain"
    assert accession_from_title("") == ""
    assert len(NCBISTDAA) == 28


# -- bad input ---------------------------------------------------------------------------------


@pytest.fixture()
def db_copy(fasta: Path, tmp_path: Path) -> Path:
    if shutil.which("makeblastdb") is None:
        pytest.skip("NCBI BLAST+ not installed")
    return _makeblastdb(fasta, tmp_path / "db", "-blastdb_version", "4")


def _suffix(prefix: Path, suffix: str) -> Path:
    return prefix.with_name(prefix.name + suffix)


def test_missing_database(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.pin") as info:
        BlastDb(tmp_path / "nothing")
    assert info.value.path == str(tmp_path / "nothing.pin")


@needs_blast
@pytest.mark.parametrize("suffix", [".phr", ".psq"])
def test_missing_file_of_the_trio(db_copy: Path, suffix: str) -> None:
    _suffix(db_copy, suffix).unlink()
    with pytest.raises(InputError, match="missing") as info:
        BlastDb(db_copy)
    assert info.value.path == str(_suffix(db_copy, suffix))


@needs_blast
@pytest.mark.parametrize("suffix", [".psq", ".phr", ".pin"])
def test_truncated_file(db_copy: Path, suffix: str) -> None:
    path = _suffix(db_copy, suffix)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    with pytest.raises(InputError, match="truncated") as info:
        BlastDb(db_copy)
    assert info.value.path == str(path)


@needs_blast
def test_psq_longer_than_index(db_copy: Path) -> None:
    path = _suffix(db_copy, ".psq")
    path.write_bytes(path.read_bytes() + b"\x01\x00")
    with pytest.raises(InputError, match="past the end") as info:
        BlastDb(db_copy)
    assert info.value.path == str(path)


@needs_blast
def test_bad_residue_code(db_copy: Path) -> None:
    path = _suffix(db_copy, ".psq")
    data = bytearray(path.read_bytes())
    data[3] = 0x40  # inside sequence 0
    path.write_bytes(bytes(data))
    with BlastDb(db_copy) as db:
        with pytest.raises(InputError, match=r"\(sequence 0\) is not an NCBIstdaa") as info:
            db.sequence(0)
        assert info.value.path == str(path)
        with pytest.raises(InputError, match="NCBIstdaa"):
            db.read_all()
        assert db.sequence(1) == ENTRIES[1][1]  # the others still read


@needs_blast
def test_corrupt_header(db_copy: Path) -> None:
    path = _suffix(db_copy, ".phr")
    data = bytearray(path.read_bytes())
    data[0] = 0x31  # no longer a SEQUENCE, so the fast path declines and the decoder must judge
    path.write_bytes(bytes(data))
    with BlastDb(db_copy) as db:
        with pytest.raises(InputError, match="sequence 0") as info:
            db.header(0)
        assert info.value.path == str(path)
        assert db.header(1) == ENTRIES[1][0]


@needs_blast
def test_version_5_is_refused(fasta: Path, tmp_path: Path) -> None:
    db_path = _makeblastdb(fasta, tmp_path / "db", "-blastdb_version", "5")
    with pytest.raises(InputError, match="version 5.*-blastdb_version 4") as info:
        BlastDb(db_path)
    assert info.value.path == str(_suffix(db_path, ".pin"))


@needs_blast
def test_nucleotide_db_is_refused(tmp_path: Path) -> None:
    fasta = tmp_path / "n.fasta"
    _write_fasta(fasta, [("n1", "ACGTACGTTT"), ("n2", "GGGCCCAAAT")])
    db_path = _makeblastdb(fasta, tmp_path / "db", "-blastdb_version", "4", dbtype="nucl")
    with pytest.raises(InputError, match="nucleotide"):
        BlastDb(db_path)
    # the same index renamed to .pin: caught by its type field
    for suffix in ("in", "hr", "sq"):
        shutil.copy(_suffix(db_path, ".n" + suffix), _suffix(db_path, ".p" + suffix))
    with pytest.raises(InputError, match="nucleotide") as info:
        BlastDb(db_path)
    assert info.value.path == str(_suffix(db_path, ".pin"))


def test_garbage_index(tmp_path: Path) -> None:
    prefix = tmp_path / "junk"
    _suffix(prefix, ".pin").write_bytes(struct.pack(">II", 4, 1) + b"\x00\x00")
    _suffix(prefix, ".phr").write_bytes(b"")
    _suffix(prefix, ".psq").write_bytes(b"")
    with pytest.raises(InputError, match="truncated BLAST index"):
        BlastDb(prefix)


def test_empty_database(tmp_path: Path) -> None:
    """A v4 index with no sequences (hand-made; makeblastdb refuses empty input) reads as empty."""
    prefix = tmp_path / "empty"
    pin = struct.pack(">III", 4, 1, 1) + b"t" + struct.pack(">I", 1) + b"d"
    pin += struct.pack(">I", 0) + struct.pack("<Q", 0) + struct.pack(">I", 0)
    pin += struct.pack(">I", 0) + struct.pack(">I", 0)  # the one-entry offset tables
    _suffix(prefix, ".pin").write_bytes(pin)
    _suffix(prefix, ".phr").write_bytes(b"")
    _suffix(prefix, ".psq").write_bytes(b"")
    with BlastDb(prefix) as db:
        assert len(db) == 0 and db.title == "t" and db.read_all() == ([], []) and list(db) == []


# -- the real metastudent Swiss-Prot 2014 databases ----------------------------------------------


@pytest.fixture(scope="module")
def mfo(resource) -> Path:  # noqa: ANN001 - conftest's session fixture
    return resource("swissprot-2014") / "MFO" / "goasp.fasta"


def test_real_mfo_header_and_first_records(mfo: Path) -> None:
    with BlastDb(mfo) as db:
        assert len(db) == 459_503  # the guide's count of MF proteins
        assert db.version == 4
        assert db.title == "dataset_201401/MFO/goasp.fasta"
        assert db.total_residues == 170_481_152
        assert db.max_length == 35_213
        first = db.record(0)
        assert first.id == "B0RED7|GO:0046933,GO:0046933"
        assert accession_from_title(first.id) == "B0RED7"
        assert db.sequence(0).startswith("MGSASRASLDSARRVLAELGGVDLSTAGQLLGAGRAIG")
        last = db.record(len(db) - 1)
        assert last.sequence and last.id


@needs_blast
def test_real_mfo_matches_blastdbcmd_first_entries(mfo: Path) -> None:
    """The first entries as blastdbcmd prints them (read from the head of its output only).

    blastdbcmd cannot fetch single entries of a database made without -parse_seqids (no
    ``BL_ORD_ID:n`` lookup), so a few from the start of ``-entry all`` stand for the whole.
    """
    n = 50
    with subprocess.Popen(
        ["blastdbcmd", "-db", str(mfo), "-entry", "all", "-outfmt", "%o\t%t\t%s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(n)]
        proc.kill()
    with BlastDb(mfo) as db:
        for oid, line in enumerate(lines):
            o, title, seq = line.split("\t")
            assert int(o) == oid
            assert db.header(oid) == title
            assert db.sequence(oid) == seq


def test_real_mfo_read_all(mfo: Path) -> None:
    """Every MF sequence decoded (about 1 s; the guide's target is 2-3 s)."""
    with BlastDb(mfo) as db:
        titles, seqs = db.read_all()
        assert len(titles) == len(seqs) == 459_503
        assert sum(map(len, seqs)) == db.total_residues
        assert max(map(len, seqs)) == db.max_length
        assert titles[0] == db.header(0) and seqs[-1] == db.sequence(len(db) - 1)
        assert all(t and "|" in t for t in titles)
        assert set("".join(seqs[:2000])) <= set(NCBISTDAA)
