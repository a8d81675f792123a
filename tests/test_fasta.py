"""FASTA reader/writer and the gzip-aware text helpers, on real EMBOSS test files and small bad inputs."""

from __future__ import annotations

import gzip
import shutil
import types
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SkipLog
from instructprotein.formats.fasta import PROTEIN_ALPHABET, parse_fasta_text, read_fasta, write_fasta
from instructprotein.formats.records import SequenceRecord
from instructprotein.formats.textio import numbered_lines, open_text


@pytest.fixture(scope="module")
def emboss_data(resource) -> Path:
    """EMBOSS's test/data folder (same Debian package as the Swiss-Prot sample)."""
    return resource("fasta-samples")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- real files ---------------------------------------------------------------------------


def test_real_globins(emboss_data):
    records = list(read_fasta(emboss_data / "globins.fasta"))
    assert [r.id for r in records] == [
        "HBB_HUMAN",
        "HBB_HORSE",
        "HBA_HUMAN",
        "HBA_HORSE",
        "MYG_PHYCA",
        "GLB5_PETMA",
        "LGB2_LUPLU",
    ]
    hbb = records[0]
    assert hbb.description == "Sw:Hbb_Human => HBB_HUMAN"
    assert hbb.line == 1
    assert len(hbb.sequence) == 146
    assert hbb.sequence.startswith("VHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKV")
    assert records[1].line == 5


def test_real_lowercase_and_final_stop_are_normalised(emboss_data):
    # prot.m-fasta: three records, 100, 80 and 60 residues
    assert [len(r.sequence) for r in read_fasta(emboss_data / "prot.m-fasta")] == [100, 80, 60]


def test_real_bad_files(emboss_data):
    with pytest.raises(InputError) as err:
        list(read_fasta(emboss_data / "noid.fa"))
    assert err.value.line == 1 and "no id" in err.value.message
    with pytest.raises(InputError) as err:  # ambiguity code J is not in the protein alphabet
        list(read_fasta(emboss_data / "ambigprot.fasta"))
    assert (err.value.line, "'J'" in err.value.message, "column 10" in err.value.message) == (2, True, True)
    with pytest.raises(InputError) as err:  # an aligned sequence: gaps
        list(read_fasta(emboss_data / "protgap.fasta"))
    assert err.value.line == 2 and "gap" in err.value.message and "column 3" in err.value.message
    assert str(err.value).startswith(str(emboss_data / "protgap.fasta") + ":2: ")


# --- parsing rules ------------------------------------------------------------------------


def test_header_whitespace_case_and_stop():
    recs = parse_fasta_text(">sp|P1|A_HUMAN  Some protein  OS=Homo\nmk vl\n\tAAG*\n\n>b\nWW\n")
    assert recs == [
        SequenceRecord("sp|P1|A_HUMAN", "Some protein  OS=Homo", "MKVLAAG", 1),
        SequenceRecord("b", "", "WW", 5),
    ]


def test_nonstandard_residues_are_kept_for_the_tokenizer():
    assert parse_fasta_text(">x\nXUBZOACD\n")[0].sequence == "XUBZOACD"
    assert set(PROTEIN_ALPHABET) == set("ACDEFGHIKLMNPQRSTVWYXUBZO")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("MKV\n>a\nMK\n", 1, "before the first"),
        (">\nMKV\n", 1, "no id"),
        (">   \nMKV\n", 1, "no id"),
        (">a\n>b\nMK\n", 1, "empty sequence"),
        (">a\nMK\n>b\n", 3, "empty sequence"),
        (">a\nMK1V\n", 2, "'1' is a digit"),
        (">a\nMK-V\n", 2, "gap"),
        (">a\nMK*V\n", 2, "'*' (stop)"),
        (">a\nMK*\nVV\n", 2, "followed by more sequence"),
        (">a\nMK**\n", 2, "'*' (stop)"),
        (">a\nMKJ\n", 2, "'J' is not a protein residue (column 3)"),
        (">a\nMK\u212a\n", 2, "not a protein residue"),  # Kelvin sign, not the letter K
    ],
)
def test_bad_records(text, line, fragment):
    with pytest.raises(InputError) as err:
        parse_fasta_text(text, source="pasted")
    assert err.value.line == line
    assert err.value.path == "pasted"
    assert fragment in err.value.message


def test_empty_inputs(tmp_path):
    for text in ("", "\n\n  \n"):
        with pytest.raises(InputError, match="empty"):
            parse_fasta_text(text)
        with pytest.raises(InputError, match="empty") as err:
            list(read_fasta(write(tmp_path / "e.fa", text)))
        assert err.value.path == str(tmp_path / "e.fa")
    with pytest.raises(InputError, match="empty"):  # even in skip mode: a file-level error
        list(read_fasta(write(tmp_path / "e.fa", ""), skip=SkipLog()))


def test_other_alphabets():
    assert parse_fasta_text(">a\nAC-GT\n", alphabet="ACGT-")[0].sequence == "AC-GT"
    assert parse_fasta_text(">a\nAC-G1\n", alphabet=None)[0].sequence == "AC-G1"
    with pytest.raises(InputError, match="'N' is not a residue of alphabet 'ACGT'"):
        parse_fasta_text(">a\nACGN\n", alphabet="ACGT")
    with pytest.raises(InputError, match="stop"):
        parse_fasta_text(">a\nAC*GT\n", alphabet=None)


def test_duplicate_ids():
    text = ">a\nMK\n>b\nMV\n>a first\nML\n"
    assert [r.id for r in parse_fasta_text(text)] == ["a", "b", "a"]
    with pytest.raises(InputError) as err:
        parse_fasta_text(text, check_unique=True)
    assert err.value.line == 5 and "duplicate id 'a' (first at line 1)" in err.value.message
    skip = SkipLog()
    assert [r.sequence for r in parse_fasta_text(text, check_unique=True, skip=skip)] == ["MK", "MV"]
    assert skip.count == 1


def test_skip_mode_reports_and_continues(tmp_path):
    path = write(tmp_path / "mixed.fa", ">ok1\nMKV\n>bad1\nMK1\nVVV\n>\nMMM\n>ok2 two\nAAA\nCC\n>empty\n>ok3\nW*\n")
    skip = SkipLog()
    records = list(read_fasta(path, skip=skip))
    assert [(r.id, r.sequence, r.line) for r in records] == [("ok1", "MKV", 1), ("ok2", "AAACC", 8), ("ok3", "W", 12)]
    assert skip.count == 3
    assert [e.line for e in skip.errors] == [4, 6, 11]
    assert all(e.path == str(path) for e in skip.errors)
    assert "skipped 3 bad record(s)" in skip.summary()


def test_reader_is_a_lazy_stream(tmp_path):
    path = write(tmp_path / "s.fa", ">a\nMK\n>b\nM1\n")
    stream = read_fasta(path)
    assert isinstance(stream, types.GeneratorType)
    assert next(stream).id == "a"  # the bad second record is not read yet
    with pytest.raises(InputError):
        next(stream)


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "w.fa"
    path.write_bytes(b">a desc\r\nMK\r\nVL\r\n")
    assert list(read_fasta(path)) == [SequenceRecord("a", "desc", "MKVL", 1)]


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.fa"
    path.write_bytes(b">a ok\nMK\n>b caf\xe9\nMK\n")
    with pytest.raises(InputError) as err:
        list(read_fasta(path))
    assert err.value.line == 3 and "0xe9" in err.value.message


# --- gzip -----------------------------------------------------------------------------------


def gzip_copy(src: Path, dest: Path) -> Path:
    with open(src, "rb") as fin, gzip.open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dest


def test_gzip_by_magic_bytes(emboss_data, tmp_path):
    plain = list(read_fasta(emboss_data / "globins.fasta"))
    assert list(read_fasta(gzip_copy(emboss_data / "globins.fasta", tmp_path / "g.fasta.gz"))) == plain
    # compressed but not named .gz: still read as gzip
    assert list(read_fasta(gzip_copy(emboss_data / "globins.fasta", tmp_path / "g.fasta"))) == plain


def test_gz_name_without_gzip_content(emboss_data, tmp_path):
    fake = tmp_path / "g.fasta.gz"
    shutil.copy(emboss_data / "globins.fasta", fake)
    with pytest.raises(InputError, match="not gzip") as err:
        list(read_fasta(fake))
    assert err.value.path == str(fake)


def test_truncated_gzip(emboss_data, tmp_path):
    full = gzip_copy(emboss_data / "globins.fasta", tmp_path / "full.fa.gz").read_bytes()
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="truncated") as err:
        list(read_fasta(cut))
    assert err.value.path == str(cut)
    with pytest.raises(InputError, match="truncated"):  # also for generic users of open_text
        with open_text(cut) as fh:
            fh.read()


def test_corrupt_gzip(tmp_path):
    bad = tmp_path / "bad.fa.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"this is not deflate data" * 4)
    with pytest.raises(InputError, match="gzip") as err:
        list(read_fasta(bad))
    assert err.value.path == str(bad)


def test_textio_helpers(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"one\r\ntwo\n\nlast")
    assert list(numbered_lines(path)) == [(1, "one"), (2, "two"), (3, ""), (4, "last")]
    with open_text(path) as fh:
        assert fh.read() == "one\ntwo\n\nlast"
    with pytest.raises(InputError, match="no such file"):
        list(numbered_lines(tmp_path / "missing.txt"))


# --- writing --------------------------------------------------------------------------------


def test_write_read_round_trip(emboss_data, tmp_path):
    records = list(read_fasta(emboss_data / "globins.fasta"))
    out = tmp_path / "out" / "copy.fasta"
    assert write_fasta(records, out, width=50) == 7
    lines = out.read_text().splitlines()
    assert lines[0] == ">HBB_HUMAN Sw:Hbb_Human => HBB_HUMAN"
    assert max(len(line) for line in lines if not line.startswith(">")) == 50
    back = list(read_fasta(out))
    assert [(r.id, r.description, r.sequence) for r in back] == [(r.id, r.description, r.sequence) for r in records]
    gz = tmp_path / "copy.fasta.gz"
    write_fasta(records, gz)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert [r.sequence for r in read_fasta(gz)] == [r.sequence for r in records]
    write_fasta(records, tmp_path / "again.fasta.gz")
    assert (tmp_path / "again.fasta.gz").read_bytes() == gz.read_bytes()  # reproducible bytes


def test_write_is_atomic_and_refuses_unreadable_records(tmp_path):
    out = write(tmp_path / "keep.fa", ">old\nMK\n")
    bad = [SequenceRecord("fine", "", "MK"), SequenceRecord("two words", "", "MK")]
    with pytest.raises(ValueError, match="one non-empty word"):
        write_fasta(bad, out)
    assert out.read_text() == ">old\nMK\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.fa"]  # no temporary left behind
    with pytest.raises(ValueError, match="empty"):
        write_fasta([SequenceRecord("e", "", "")], tmp_path / "e.fa")
    with pytest.raises(ValueError, match="width"):
        write_fasta([], tmp_path / "w.fa", width=0)
