"""The console command as a user runs it: exit codes, messages naming file and line, outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "instructprotein.cli", *args], capture_output=True, text=True, cwd=cwd)


def build_tiny(out: Path, dat: Path = DATA / "tiny.dat", *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "kg",
        "build",
        "--source",
        "uniprot",
        "--uniprot",
        str(dat),
        "--obo",
        str(DATA / "tiny.obo"),
        "--out",
        str(out),
        *extra,
    )


def test_build_stats_show_term(tmp_path):
    kg = tmp_path / "kg.sqlite"
    result = build_tiny(kg)
    assert result.returncode == 0, result.stderr
    assert kg.exists()

    stats = cli("kg", "stats", "--kg", str(kg), "--json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["proteins"] == 3
    assert data["relations"]["protein enables go"] == 3
    assert data["relations"]["term part_of term"] == 1
    assert Path(data["plot"]).stat().st_size > 10_000  # a real PNG was drawn
    assert Path(data["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    show = cli("kg", "show", "Q00001", "--kg", str(kg), "--propagated")
    assert show.returncode == 0, show.stderr
    assert "zinc ion binding" in show.stdout and "transition metal ion binding" in show.stdout
    fasta = cli("kg", "show", "Q00001", "--kg", str(kg), "--fasta")  # a sequence to pass to describe
    assert fasta.returncode == 0, fasta.stderr
    head, *body = fasta.stdout.splitlines()
    assert head.startswith(">Q00001") and body and all(set(line) <= set("ACDEFGHIKLMNPQRSTVWYXBZUO") for line in body)
    assert max(map(len, body)) <= 60

    term = cli("kg", "term", "GO:0099901", "--kg", str(kg))  # an alt id
    assert term.returncode == 0, term.stderr
    assert "metal ion binding" in term.stdout and "1 direct, 2 with descendants" in term.stdout


def test_bad_residue_names_file_and_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.dat"
    lines = (DATA / "tiny.dat").read_text().splitlines(keepends=True)
    line_no = next(i for i, line in enumerate(lines, 1) if "MACDEFGHIK" in line)
    lines[line_no - 1] = lines[line_no - 1].replace("MACDEFGHIK", "MACDE1GHIK")
    bad.write_text("".join(lines))
    result = build_tiny(tmp_path / "kg.sqlite", bad)
    assert result.returncode == 1
    assert f"bad.dat:{line_no}" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.dat"]

    skipped = build_tiny(tmp_path / "kg.sqlite", bad, "--skip-bad")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 1 bad record" in skipped.stderr


def test_gzip_that_is_not_gzip(tmp_path):
    fake = tmp_path / "fake.dat.gz"
    fake.write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate")
    result = build_tiny(tmp_path / "kg.sqlite", fake)
    assert result.returncode == 1
    assert "fake.dat.gz" in result.stderr and "Traceback" not in result.stderr


def test_missing_graph_and_unknown_protein(tmp_path):
    result = cli("kg", "stats", "--kg", str(tmp_path / "none.sqlite"))
    assert result.returncode == 1 and "kg build" in result.stderr
    kg = tmp_path / "kg.sqlite"
    build_tiny(kg)
    result = cli("kg", "show", "P99999", "--kg", str(kg))
    assert result.returncode == 1 and "P99999" in result.stderr and "Traceback" not in result.stderr


def test_not_a_graph_file(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("hello")
    result = cli("kg", "stats", "--kg", str(junk))
    assert result.returncode == 1 and "junk.sqlite" in result.stderr and "Traceback" not in result.stderr


def test_bad_task_options_name_the_option_and_write_nothing(tmp_path):
    kg, out = tmp_path / "kg.sqlite", tmp_path / "instructions"
    build_tiny(kg)
    for flag, pair in (
        ("--paper-phrasing", "yes_no=2"),
        ("--paper-phrasing", "yesno=1"),
        ("--task-weight", "location=-1"),
    ):
        result = cli("instructions", "build", "--kg", str(kg), "--out", str(out), "--no-decontamination", flag, pair)
        assert result.returncode != 0 and flag in result.stderr and pair in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not out.exists()


def test_paper_phrasing_option_is_recorded_only_when_given():
    from instructprotein.cli.instructions import _generate_overrides

    assert _generate_overrides([]) == {}
    assert _generate_overrides(["yes_no=1", "location=0.5"]) == {
        "task_paper_phrasing": {"yes_no": 1.0, "location": 0.5}
    }


def test_model_commands_find_the_main_jobs_model_and_graph_in_the_workdir(tmp_path):
    """After `instructprotein run`, describe / classify need no --model or --kg; without a graph they say what is lost."""
    import helpers_model as h

    work = tmp_path / "work"
    (work / "runs" / "finetune").mkdir(parents=True)
    (work / "runs" / "finetune" / "model").symlink_to(h.model_path())
    (work / "kg.sqlite").symlink_to(h.kg_path())
    sequence = h.BASE[1]  # P20001, in the graph: its homolog P20007 is found
    described = cli("describe", sequence, "--workdir", str(work), "--format", "jsonl", "--max-new-tokens", "4")
    assert described.returncode == 0, described.stderr
    homologs = [x["accession"] for x in json.loads(described.stdout)["homologs"]]
    assert "P20007" in homologs
    chose = cli(
        "classify",
        sequence,
        "--workdir",
        str(work),
        "--question",
        "Zinc?",
        "--option",
        "no",
        "--option",
        "yes",
        "--max-identity",
        "0.99",
    )
    assert chose.returncode == 0, chose.stderr
    assert chose.stdout.startswith("seq1\t")

    (work / "kg.sqlite").unlink()
    alone = cli("describe", sequence, "--workdir", str(work), "--format", "jsonl", "--max-new-tokens", "4")
    assert alone.returncode == 0, alone.stderr
    assert "no knowledge graph" in alone.stderr and json.loads(alone.stdout)["homologs"] == []

    empty = cli("describe", sequence, "--workdir", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "no tuned model at" in empty.stderr and "Traceback" not in empty.stderr
    bad_identity = cli(
        "classify", sequence, "--workdir", str(work), "--question", "Zinc?", "--option", "no", "--max-identity", "70"
    )
    assert bad_identity.returncode == 1 and "--max-identity must be in (0, 1]" in bad_identity.stderr
