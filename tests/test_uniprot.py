"""UniProt flat-file reader: the real EMBOSS Swiss-Prot sample (May 2012), both dialects, bad inputs."""

from __future__ import annotations

import gzip
import shutil
import types
from pathlib import Path

import pytest

from instructprotein.errors import InputError, SkipLog
from instructprotein.formats.records import CrossRef, GoAnnotation
from instructprotein.formats.uniprot import parse_locations, read_uniprot
from instructprotein.sources.registry import resource_path


@pytest.fixture(scope="module")
def sample(resource) -> Path:
    return resource("swiss-sample")


@pytest.fixture(scope="module")
def entries(sample):
    return list(read_uniprot(sample))


# --- the real sample ------------------------------------------------------------------------


def test_sample_counts(entries):
    assert len(entries) == 100  # grep -c '^//' seq.dat
    assert len({e.accession for e in entries}) == 100
    assert sum(len(e.sequence) for e in entries) == 37225  # sum of the SQ lines' lengths
    assert sum(len(e.go) for e in entries) == 636  # grep -c '^DR   GO;'
    assert all(e.taxon_id and e.organism and e.taxonomy[0] in {"Eukaryota", "Bacteria"} for e in entries)


def test_sample_first_entry(entries):
    e = entries[0]
    assert (e.accession, e.entry_name, e.line) == ("P15455", "CRU4_ARATH", 1)
    assert e.secondary_accessions == ["Q3E711", "Q56Z11", "Q9FFH7"]
    assert e.protein_name == "12S seed storage protein CRU4"  # not a "Contains:" chain name
    assert e.organism == "Arabidopsis thaliana (Mouse-ear cress)"
    assert e.taxon_id == 3702
    assert e.taxonomy[:3] == ["Eukaryota", "Viridiplantae", "Streptophyta"] and e.taxonomy[-1] == "Arabidopsis"
    assert len(e.sequence) == 472 and e.sequence.startswith("MARVSSLLSF") and e.sequence.endswith("PASYGRPRVAAA")
    assert GoAnnotation("GO:0045735", "F", "IDA") in e.go
    assert GoAnnotation("GO:0000326", "C", "IEA") in e.go
    assert e.pfam == [CrossRef("Pfam", "PF00190", "Cupin_1")]
    assert e.prosite == [CrossRef("PROSITE", "PS00305", "11S_SEED_STORAGE")]
    assert CrossRef("InterPro", "IPR006044", "11S_seedstore_pln") in e.interpro and len(e.interpro) == 5
    assert e.keywords[0] == "Alternative splicing" and e.keywords[-1] == "Vacuole"
    assert "Seed storage protein" in e.keywords
    assert e.function == "Seed storage protein."
    assert e.subcellular_location == "Protein storage vacuole (Probable)."
    assert e.locations == ["Protein storage vacuole"]


def test_sample_hemoglobin_two_function_blocks(entries):
    hbb = next(e for e in entries if e.accession == "P68871")
    assert (hbb.entry_name, hbb.line, len(hbb.sequence), hbb.taxon_id) == ("HBB_HUMAN", 9446, 147, 9606)
    assert hbb.organism == "Homo sapiens (Human)"
    assert hbb.function.startswith("Involved in oxygen transport from the lung")
    # the second FUNCTION block (of the LVV-hemorphin-7 peptide) is joined to the first
    assert "tissues. LVV-hemorphin-7 potentiates the activity of bradykinin" in hbb.function
    assert hbb.function.endswith("causing a decrease in blood pressure.")
    assert hbb.subcellular_location is None and hbb.locations == []


def test_sample_locations(entries):
    by_acc = {e.accession: e for e in entries}
    # wrapped over three CC lines, two locations each with a topology
    assert by_acc["P17644"].locations == ["Cell junction, synapse, postsynaptic cell membrane", "Cell membrane"]
    # "Secreted. Cell membrane; Multi-pass membrane protein (By similarity). Note=Secreted as ..."
    assert by_acc["P79755"].locations == ["Secreted", "Cell membrane"]
    assert by_acc["P79755"].subcellular_location.startswith("Secreted. Cell membrane; Multi-pass")
    assert by_acc["P61205"].locations == ["Golgi apparatus", "Cytoplasm, perinuclear region"]
    # OS over two lines
    assert by_acc["P27017"].organism == "Pseudomonas aeruginosa (strain ATCC 15692 / PAO1 / 1C / PRS 101 / LMG 12228)"


def test_sample_matches_biopython(sample, entries):
    """Cross-check against an independent parser on the fields both read."""
    swissprot = pytest.importorskip("Bio.SwissProt")
    with open(sample) as fh:
        theirs = list(swissprot.parse(fh))
    assert [(e.accession, e.secondary_accessions, e.sequence, e.keywords, e.taxonomy) for e in entries] == [
        (b.accessions[0], b.accessions[1:], b.sequence, b.keywords, b.organism_classification) for b in theirs
    ]


def test_trembl_entries_use_subname(sample):
    trembl = resource_path("trembl-sample")  # 9 real TrEMBL entries, same package
    entries = list(read_uniprot(trembl))
    assert len(entries) == 9
    assert (entries[0].accession, entries[0].protein_name, len(entries[0].sequence)) == ("O42495", "SkmBOP", 433)


def test_streaming_generator(sample):
    stream = read_uniprot(sample)
    assert isinstance(stream, types.GeneratorType)
    assert next(stream).accession == "P15455"
    stream.close()


def test_gzip(sample, entries, tmp_path):
    gz = tmp_path / "sample.dat.gz"
    with open(sample, "rb") as fin, gzip.open(gz, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    assert list(read_uniprot(gz)) == entries
    cut = tmp_path / "cut.dat.gz"
    cut.write_bytes(gz.read_bytes()[:50_000])
    with pytest.raises(InputError, match="truncated") as err:
        list(read_uniprot(cut))
    assert err.value.path == str(cut)
    fake = tmp_path / "plain.dat.gz"
    shutil.copy(sample, fake)
    with pytest.raises(InputError, match="not gzip"):
        list(read_uniprot(fake))


# --- dialects ---------------------------------------------------------------------------------

CURRENT = """\
ID   TEST_HUMAN              Reviewed;          12 AA.
AC   Q00001; Q00002;
AC   Q00003;
DT   01-JAN-2020, integrated into UniProtKB/Swiss-Prot.
DE   RecName: Full=Test protein kinase {ECO:0000256|HAMAP-Rule:MF_00001};
DE            EC=2.7.11.1 {ECO:0000269|PubMed:123};
DE   AltName: Full=Other name;
GN   Name=TST {ECO:0000312|HGNC:HGNC:1};
OS   Homo sapiens (Human).
OC   Eukaryota; Metazoa; Chordata.
OX   NCBI_TaxID=9606 {ECO:0000313|Proteomes:UP000005640};
CC   -!- FUNCTION: Phosphorylates things (PubMed:12345678, PubMed:23456789).
CC       Also binds zinc {ECO:0000269|PubMed:12345678}.
CC   -!- SUBCELLULAR LOCATION: [Isoform 1]: Cytoplasm
CC       {ECO:0000269|PubMed:12345678}. Nucleus {ECO:0000250}. Note=Moves to
CC       the nucleus on stress. {ECO:0000250}.
CC   -!- SUBCELLULAR LOCATION: [Isoform 2]: Cell membrane {ECO:0000305};
CC       Single-pass type I membrane protein {ECO:0000305}. Nucleus.
CC   ---------------------------------------------------------------------------
CC   Copyrighted by the UniProt Consortium, see https://www.uniprot.org/terms
CC   ---------------------------------------------------------------------------
DR   EMBL; X00001; CAA00001.1; -; mRNA.
DR   GO; GO:0005737; C:cytoplasm; IDA:UniProtKB.
DR   GO; GO:0004672; F:protein kinase activity; IEA:InterPro.
DR   InterPro; IPR000719; Prot_kinase_dom.
DR   Pfam; PF00069; Pkinase; 1.
DR   PROSITE; PS50011; PROTEIN_KINASE_DOM; 1.
PE   1: Evidence at protein level;
KW   Kinase {ECO:0000256|ARBA:ARBA00022777}; Nucleus;
KW   Reference proteome {ECO:0000313|Proteomes:UP000005640}.
FT   CHAIN           1..12
FT                   /note="Test protein kinase"
SQ   SEQUENCE   12 AA;  1234 MW;  0000000000000000 CRC64;
     MKVLAAGIVW le
//
"""

OLD = """\
ID   OLD_YEAST      STANDARD;      PRT;    10 AA.
AC   P99999;
DE   Cruciferin 4 precursor (12S storage protein) (EC 1.1.1.1) (Fragment).
OS   Saccharomyces cerevisiae (Baker's yeast).
OC   Eukaryota; Fungi.
OX   NCBI_TaxID=4932;
CC   -!- FUNCTION: Storage protein (By similarity).
CC   -!- SUBCELLULAR LOCATION: Vacuole (Probable).
DR   GO; GO:0000326; C:protein storage vacuole; IEA.
KW   Seed storage protein; Signal.
SQ   SEQUENCE   10 AA;  1111 MW;  0000000000000000 CRC64;
     MKVLAAGIVW
//
"""


def entry_text(name: str = "E1_HUMAN", ac: str = "P00001", seq: str = "MKVL", sq_len: int | None = None) -> str:
    n = len(seq) if sq_len is None else sq_len
    return (
        f"ID   {name}    Reviewed;   {n} AA.\nAC   {ac};\nDE   RecName: Full=Protein {name};\n"
        f"OS   Homo sapiens (Human).\nOC   Eukaryota.\nOX   NCBI_TaxID=9606;\n"
        f"SQ   SEQUENCE   {n} AA;  1 MW;  0 CRC64;\n     {seq}\n//\n"
    )


def dat(tmp_path: Path, text: str, name: str = "t.dat") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_current_dialect_with_evidence_tags(tmp_path):
    (e,) = read_uniprot(dat(tmp_path, CURRENT))
    assert (e.accession, e.secondary_accessions) == ("Q00001", ["Q00002", "Q00003"])
    assert e.protein_name == "Test protein kinase"
    assert e.taxon_id == 9606 and e.organism == "Homo sapiens (Human)"
    assert e.taxonomy == ["Eukaryota", "Metazoa", "Chordata"]
    assert e.function == "Phosphorylates things. Also binds zinc."
    assert e.locations == ["Cytoplasm", "Nucleus", "Cell membrane"]
    assert "ECO" not in e.subcellular_location and "[Isoform 2]: Cell membrane;" in e.subcellular_location
    assert e.keywords == ["Kinase", "Nucleus", "Reference proteome"]
    assert e.go == [GoAnnotation("GO:0005737", "C", "IDA"), GoAnnotation("GO:0004672", "F", "IEA")]
    assert e.interpro == [CrossRef("InterPro", "IPR000719", "Prot_kinase_dom")]
    assert e.pfam == [CrossRef("Pfam", "PF00069", "Pkinase")]
    assert e.prosite == [CrossRef("PROSITE", "PS50011", "PROTEIN_KINASE_DOM")]
    assert e.sequence == "MKVLAAGIVWLE"  # lower case upper-cased


def test_old_dialect(tmp_path):
    (e,) = read_uniprot(dat(tmp_path, OLD))
    assert e.protein_name == "Cruciferin 4 precursor"
    assert e.go == [GoAnnotation("GO:0000326", "C", "IEA")]
    assert e.function == "Storage protein (By similarity)."
    assert e.locations == ["Vacuole"]
    assert e.keywords == ["Seed storage protein", "Signal"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cytoplasm. Nucleus. Note=Shuttles. Into the nucleus.", ["Cytoplasm", "Nucleus"]),
        ("Membrane; Single-pass membrane protein.", ["Membrane"]),
        ("[Isoform 2]: Cytoplasm (By similarity).", ["Cytoplasm"]),
        ("Cell membrane; Lipid-anchor {ECO:0000250}; Cytoplasmic side.", ["Cell membrane"]),
        ("Cytoplasm. Cytoplasm (Probable).", ["Cytoplasm"]),
        ("Note=Unknown.", []),
    ],
)
def test_parse_locations(text, expected):
    assert parse_locations(text) == expected


# --- bad inputs ----------------------------------------------------------------------------


def one_error(path: Path) -> InputError:
    with pytest.raises(InputError) as err:
        list(read_uniprot(path))
    assert err.value.path == str(path)
    return err.value


def test_truncated_entry(tmp_path):
    text = entry_text() + entry_text("E2_HUMAN", "P00002")
    err = one_error(dat(tmp_path, text[: text.rindex("//")]))
    assert err.line == 10 and "E2_HUMAN" in err.message and "truncated" in err.message


def test_non_residue_characters(tmp_path):
    err = one_error(dat(tmp_path, entry_text(seq="MK1VL", sq_len=5)))
    assert err.line == 8 and "'1' at column 8" in err.message
    err = one_error(dat(tmp_path, entry_text(seq="MK*", sq_len=3)))
    assert err.line == 8 and "'*'" in err.message


def test_sequence_length_must_match_sq_line(tmp_path):
    err = one_error(dat(tmp_path, entry_text(seq="MKVL", sq_len=5)))
    assert err.line == 7 and "declares 5 residues but the sequence has 4" in err.message


def test_missing_id_line(tmp_path):
    text = entry_text().split("\n", 1)[1]  # drop the ID line
    err = one_error(dat(tmp_path, text))
    assert err.line == 1 and "ID line" in err.message
    err = one_error(dat(tmp_path, "ID   \n" + text))
    assert err.line == 1 and "no entry name" in err.message


def test_missing_ac(tmp_path):
    text = entry_text().replace("AC   P00001;\n", "")
    err = one_error(dat(tmp_path, entry_text("E0_HUMAN", "P00009") + text))
    assert err.line == 10 and "no AC line" in err.message


def test_missing_sq(tmp_path):
    text = "ID   E1_HUMAN  Reviewed;  4 AA.\nAC   P00001;\n//\n"
    assert "no SQ line" in one_error(dat(tmp_path, text)).message
    text = "ID   E1_HUMAN  Reviewed;  4 AA.\nAC   P00001;\n     MKVL\n//\n"
    assert "before the SQ line" in one_error(dat(tmp_path, text)).message


def test_duplicate_accession(tmp_path):
    text = entry_text("A_HUMAN", "P00001") + entry_text("B_HUMAN", "P00002") + entry_text("C_HUMAN", "P00001")
    err = one_error(dat(tmp_path, text))
    assert err.line == 19
    assert "duplicate accession P00001" in err.message and "line 19" in err.message and "line 1" in err.message
    names = [e.entry_name for e in read_uniprot(dat(tmp_path, text), check_unique=False)]
    assert names == ["A_HUMAN", "B_HUMAN", "C_HUMAN"]


def test_empty_file(tmp_path):
    for text in ("", "\n \n"):
        err = one_error(dat(tmp_path, text))
        assert "empty" in err.message and err.line is None
    with pytest.raises(InputError, match="empty"):
        list(read_uniprot(dat(tmp_path, ""), skip=SkipLog()))


def test_missing_terminator_before_next_entry(tmp_path):
    text = entry_text("A_HUMAN", "P00001").removesuffix("//\n") + entry_text("B_HUMAN", "P00002")
    err = one_error(dat(tmp_path, text))
    assert err.line == 9 and "A_HUMAN" in err.message and "'//'" in err.message
    skip = SkipLog()
    assert [e.entry_name for e in read_uniprot(dat(tmp_path, text), skip=skip)] == ["B_HUMAN"]
    assert skip.count == 1


def test_malformed_lines(tmp_path):
    ox = "OX   NCBI_TaxID=9606;\n"
    bad_go = entry_text().replace(ox, ox + "DR   GO; 0005737; C:cytosol; IDA.\n")
    err = one_error(dat(tmp_path, bad_go))
    assert err.line == 7 and "GO cross-reference" in err.message
    bad_ox = entry_text().replace("NCBI_TaxID=9606", "NCBI_TaxID=human")
    assert one_error(dat(tmp_path, bad_ox)).line == 6
    garbage = entry_text().replace("OC   Eukaryota.\n", "<html>oops</html>\n")
    err = one_error(dat(tmp_path, garbage))
    assert err.line == 5 and "not a UniProt flat-file line" in err.message


def test_fasta_given_as_uniprot(tmp_path):
    err = one_error(dat(tmp_path, ">sp|P00001|X\nMKVL\n"))
    assert err.line == 1


def test_skip_mode_counts_and_continues(tmp_path):
    text = (
        entry_text("G1_HUMAN", "P00001")
        + entry_text("B1_HUMAN", "P00002", seq="MK1L")  # lines 10-18
        + entry_text("G2_HUMAN", "P00003")
        + entry_text("B2_HUMAN", "P00004").replace("AC   P00004;\n", "")  # ID at line 28
        + entry_text("G3_HUMAN", "P00003")  # duplicate of G2, ID at line 36
        + entry_text("G4_HUMAN", "P00005")
        + entry_text("T_HUMAN", "P00006").removesuffix("//\n")  # truncated, ID at line 54
    )
    skip = SkipLog()
    good = list(read_uniprot(dat(tmp_path, text), skip=skip))
    assert [e.entry_name for e in good] == ["G1_HUMAN", "G2_HUMAN", "G4_HUMAN"]
    assert [e.line for e in good] == [1, 19, 45]
    assert skip.count == 4
    assert [e.line for e in skip.errors] == [17, 28, 36, 54]
    assert "truncated" in skip.errors[-1].message
