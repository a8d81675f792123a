"""What a careful user and an adversarial tester broke (issue 17), each pinned by a test.

Every CLI case runs the real command in a subprocess and checks the exit status, a one-line
message and that no traceback reached the user; the checks that must come before the model
loads are given an empty folder as ``--model``, so a check that ran after loading would
report the folder instead of the parameter.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import helpers_model as h
from instructprotein.atomic import atomic_dir, atomic_path, remove_stale_temps
from instructprotein.errors import InputError
from instructprotein.infer.inputs import clean_sequence, read_queries

DATA = Path(__file__).parent / "data"
SEQ = h.SEQUENCES["P20001"][:60]


def cli(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "instructprotein.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        input=stdin,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def refused(r: subprocess.CompletedProcess[str], words: str, code: int = 1) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


# -- 2. a config that does not match the weights ------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 3])
def test_config_not_matching_weights_is_an_error_naming_the_folder(tmp_path, layers):
    from instructprotein.model.factory import load_model_and_tokenizer

    folder = tmp_path / "edited-model"
    shutil.copytree(h.model_path(), folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 2
    config["num_hidden_layers"] = layers
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="config.json does not match the weights") as info:
        load_model_and_tokenizer(folder)
    assert str(folder) in str(info.value)
    assert ("not in config.json" if layers == 1 else "missing from the weights") in str(info.value)


def test_edited_config_refused_by_describe(tmp_path):
    folder = tmp_path / "edited-model"
    shutil.copytree(h.model_path(), folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    r = cli("describe", SEQ, "--model", str(folder), "--workdir", str(tmp_path / "w"))
    refused(r, "config.json does not match the weights")
    assert str(folder) in r.stderr and r.stdout == ""


# -- 3. an empty graph --------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["0", "-1", "1.5", "nan"])
def test_kg_build_refuses_a_sample_outside_0_1(tmp_path, sample):
    out = tmp_path / "kg.sqlite"
    r = cli(
        "kg",
        "build",
        "--source",
        "uniprot",
        "--uniprot",
        str(DATA / "tiny.dat"),
        "--obo",
        str(DATA / "tiny.obo"),
        "--out",
        str(out),
        "--sample",
        sample,
    )
    refused(r, "--sample must be a fraction of the proteins in (0, 1]")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_empty_graph_is_never_written(tmp_path):
    from instructprotein.formats.obo import read_obo
    from instructprotein.kg.builder import GraphBuilder

    builder = GraphBuilder(read_obo(DATA / "tiny.obo"), source="test")
    with pytest.raises(InputError, match="no proteins to write"):
        builder.write(tmp_path / "kg.sqlite")
    assert list(tmp_path.iterdir()) == []


# -- 4. tracebacks that became messages, checked before the model loads ------------------------------------


@pytest.fixture
def no_model(tmp_path: Path) -> Path:
    """A folder that is not a model: a check that runs after loading would complain about it."""
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["describe", SEQ, "--top-k", "0"], "--top-k must be an integer from 1"),
        (["describe", SEQ, "--max-new-tokens", "0"], "--max-new-tokens must be an integer from 1"),
        (["describe", SEQ, "--max-identity", "nan"], "--max-identity must be in (0, 1]"),
        (["design", "binds zinc", "--temperature", "inf"], "--temperature must be in (0, 100], got inf"),
        (["design", "binds zinc", "--temperature", "nan"], "--temperature must be in (0, 100]"),
        (
            ["design", "binds zinc", "--seed", "99999999999999999999"],
            "--seed must be an integer from 0 to 9223372036854775807",
        ),
        (["design", "binds zinc", "--seed", "-1"], "--seed must be an integer from 0"),
        (["design", "binds zinc", "--length", "-5"], "--length must be an integer from 1"),
        (["design", "binds zinc", "--n", "0"], "--n must be an integer from 1 to 1000"),
        (["design", "binds zinc", "--min-len", "50", "--max-len", "20"], "--min-len 50 is above --max-len 20"),
        (["classify", SEQ, "--question", "q?", "--option", "a", "--option", "b", "--top-k", "-1"], "--top-k must be"),
        (
            ["classify", SEQ, "--question", "q?", "--option", "a", "--option", "x" * 5000],
            "option 2: 5,000 characters, at most 1,000",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(a[:20] for a in v[:4]),
)
def test_bad_parameters_are_one_line_errors_before_the_model_loads(tmp_path, no_model, args, words):
    r = cli(*args, "--model", str(no_model), "--workdir", str(tmp_path / "w"))
    refused(r, words)
    assert "config.json" not in r.stderr  # the model folder was never looked at


def test_evaluate_task_file_whose_data_is_missing(tmp_path, no_model):
    task = tmp_path / "T.yaml"
    task.write_text(
        "name: mine\ndata:\n  test: {path: missing.tsv}\nprompt:\n  question: Q?\n"
        "candidates: [' yes', ' no']\nmetrics: [accuracy]\n"
    )
    r = cli(
        "evaluate",
        "--task",
        str(task),
        "--model",
        str(no_model),
        "--workdir",
        str(tmp_path / "w"),
        "--no-homology",
        "--no-plots",
        "--no-retrieval",
    )
    refused(r, "data file not found")
    assert "missing.tsv" in r.stderr
    (tmp_path / "missing.tsv").mkdir()
    refused(
        cli(
            "evaluate",
            "--task",
            str(task),
            "--model",
            str(no_model),
            "--workdir",
            str(tmp_path / "w"),
            "--no-homology",
            "--no-plots",
            "--no-retrieval",
        ),
        "is a directory",
    )


# -- 5. one set of rules -------------------------------------------------------------------------------------


def test_api_schema_has_the_cli_bounds():
    """Each bounded field of the API's request bodies carries exactly the bounds of infer/params.RULES."""
    from instructprotein.infer.params import RULES
    from instructprotein.serve.app import DescribeRequest, DesignRequest

    fields = {**DesignRequest.model_fields, **DescribeRequest.model_fields}
    checked = 0
    for name, rule in RULES.items():
        if name not in fields:
            continue
        meta = {type(m).__name__: m for m in fields[name].metadata}
        low = meta["Gt"].gt if rule.low_open else meta["Ge"].ge
        assert (low, meta["Le"].le) == (rule.low, rule.high), name
        checked += 1
    assert checked >= 7


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("n", True, False),
        ("n", 1.0, False),
        ("n", 1, True),
        ("seed", -1, False),
        ("seed", 2**63, False),
        ("seed", 2**63 - 1, True),
        ("length", -5, False),
        ("temperature", float("inf"), False),
        ("temperature", 1, True),
        ("top_p", 0, False),
        ("top_p", 1, True),
        ("max_identity", 70.0, False),
    ],
)
def test_the_rules_themselves(name, value, ok):
    from instructprotein.infer.params import check

    if ok:
        assert check(name, value) == value
    else:
        with pytest.raises(InputError, match=name):
            check(name, value)


# -- 7. leftovers and permissions ----------------------------------------------------------------------------


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "kg.sqlite"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    pid = int(dead.stdout)  # a process that has exited
    stale = [
        tmp_path / f".kg.sqlite.{pid}.k2j3h4.sqlite.tmp",
        tmp_path / f".kg.sqlite.{pid}.k2j3h4.sqlite.tmp-journal",
        tmp_path / ".kg.sqlite.abc123.sqlite.tmp",
    ]  # the last: named before process ids
    for p in stale:
        p.write_text("half a graph")
    alive = tmp_path / f".kg.sqlite.{os.getppid()}.zz.sqlite.tmp"  # a writer still running
    alive.write_text("in progress")
    other = [tmp_path / f".kg.sqlite.mmseqs.{pid}.qq.tmp", tmp_path / f".other.sqlite.{pid}.aa.sqlite.tmp"]
    for p in other:
        p.write_text("not ours")
    with atomic_path(target, suffix=".sqlite") as tmp:
        tmp.write_text("graph")
    assert target.read_text() == "graph"
    assert not any(p.exists() for p in stale)
    assert alive.exists() and all(p.exists() for p in other)


def test_kg_build_after_a_kill_leaves_no_temporaries(tmp_path):
    out = tmp_path / "kg.sqlite"
    (tmp_path / ".kg.sqlite.1a2b3c.sqlite.tmp").write_bytes(b"SQLite format 3\0")
    r = cli(
        "kg",
        "build",
        "--source",
        "uniprot",
        "--uniprot",
        str(DATA / "tiny.dat"),
        "--obo",
        str(DATA / "tiny.obo"),
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kg.sqlite"]


def test_stale_directory_temporaries_are_removed(tmp_path):
    (tmp_path / ".model.x7y8.tmp").mkdir()
    (tmp_path / ".model.x7y8.tmp" / "model.safetensors").write_text("half")
    assert remove_stale_temps(tmp_path / "model") == [tmp_path / ".model.x7y8.tmp"]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_model_folders_honour_the_umask(tmp_path, mask):
    from instructprotein.model.factory import load_model_and_tokenizer, save_model

    model, tok = load_model_and_tokenizer(h.model_path())
    old = os.umask(mask)
    try:
        folder = save_model(model, tok, tmp_path / "model")
        with atomic_dir(tmp_path / "index") as tmp:
            (tmp / "sub").mkdir(mode=0o700)
            fd = os.open(tmp / "sub" / "db", os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    finally:
        os.umask(old)
    assert _mode(folder) == 0o777 & ~mask
    assert _mode(folder / "model.safetensors") == 0o666 & ~mask
    assert all(_mode(p) == 0o666 & ~mask for p in folder.iterdir() if p.is_file())
    assert _mode(tmp_path / "index" / "sub") == 0o777 & ~mask
    assert _mode(tmp_path / "index" / "sub" / "db") == 0o666 & ~mask


# -- 8. small things a new user trips over ---------------------------------------------------------------------


def test_dash_reads_standard_input(tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(">a first\nMKTAYI\nAKQR\n>b\nmktw\n"))
    assert [(q.id, q.sequence) for q in read_queries(["-"])] == [("a", "MKTAYIAKQR"), ("b", "MKTW")]
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": "x", "sequence": "MKT"}\n'))
    assert [(q.id, q.sequence) for q in read_queries("-")] == [("x", "MKT")]
    monkeypatch.setattr(sys, "stdin", io.StringIO("MKT AYI\n"))
    assert [(q.id, q.sequence) for q in read_queries("-")] == [("stdin", "MKTAYI")]
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    with pytest.raises(InputError, match="<stdin>: no sequences"):
        read_queries("-")


def test_describe_dash_through_the_cli(tmp_path):
    r = cli(
        "describe",
        "-",
        "--model",
        str(h.model_path()),
        "--workdir",
        str(tmp_path),
        "--format",
        "jsonl",
        "--max-new-tokens",
        "4",
        stdin=f">from_pipe\n{SEQ}\n",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "from_pipe"


def test_a_directory_says_it_is_one(tmp_path):
    folder = tmp_path / "seqs"
    folder.mkdir()
    for given in (str(folder), str(folder) + "/", folder):
        with pytest.raises(InputError, match="is a directory"):
            read_queries([given])
    os.chdir(tmp_path)  # a bare name too: "seqs" must not be read as the residues S E Q S
    with pytest.raises(InputError, match="seqs: is a directory"):
        read_queries(["seqs"])


def test_a_lookalike_residue_is_named_by_its_code_point():
    with pytest.raises(InputError, match=r"U\+212A KELVIN SIGN\) at position 3"):
        clean_sequence("MK\u212aT")
    with pytest.raises(InputError, match=r"U\+212A KELVIN SIGN\) is not a protein residue"):
        read_queries([">a\nMK\u212aT\n"])
    with pytest.raises(InputError, match=r"U\+017F"):  # long s: str.upper() would make it an 'S'
        read_queries([">a\nMK\u017fT\n"])


def test_design_n2_is_the_first_two_of_n4():
    from instructprotein.infer.generate import design

    model, tok = h.model_and_tokenizer()
    two = design(model, tok, "binds zinc ion", n=2, seed=1, check=False, max_len=40)
    four = design(model, tok, "binds zinc ion", n=4, seed=1, check=False, max_len=40)
    other = design(model, tok, "binds zinc ion", n=2, seed=2, check=False, max_len=40)
    assert [d.sequence for d in two.designs] == [d.sequence for d in four.designs[:2]]
    assert len({d.sequence for d in four.designs}) == 4
    assert [d.sequence for d in other.designs] != [d.sequence for d in two.designs]


def test_a_long_option_is_refused_as_an_option():
    from instructprotein.infer.classify import classify

    model, tok = h.model_and_tokenizer()
    with pytest.raises(InputError, match="option 2 .* tokens.*give a shorter option"):
        classify(model, tok, [SEQ], "Where?", ["nucleus", "cyto " * 400])


def test_serve_on_a_taken_port_fails_before_printing_addresses(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = cli("serve", "--model", str(h.model_path()), "--port", str(port), "--workdir", str(tmp_path))
        refused(r, "the port is in use")
        assert "http://" not in r.stderr + r.stdout
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "instructprotein.serve",
                "--model",
                str(h.model_path()),
                "--port",
                str(port),
                "--device",
                "cpu",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    refused(r, "the port is in use", code=2)
    assert "http://" not in r.stderr + r.stdout
