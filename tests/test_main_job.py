"""The main job end to end on a small real subset: every stage runs, every artefact loads and
is what the next stage used; a rerun skips what is done.

Real data: the Debian-packaged Swiss-Prot 2014 (a 0.5 % sample, about 2,600 proteins), MMseqs2,
the tiny preset cut to a few steps. Needs `instructprotein data fetch` (make test runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instructprotein.errors import SourceError
from instructprotein.sources.registry import resource_path

try:
    resource_path("swissprot-2014")
    resource_path("mmseqs-bin")
    HAVE_DATA = True
except SourceError:
    HAVE_DATA = False

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_DATA, reason="needs `instructprotein data fetch --group data --group tools`"),
]

QUICK = [
    "--sample",
    "0.005",
    "--n",
    "600",
    "--eval-limit",
    "12",
    "--set",
    "pretrain.max_steps=6",
    "--set",
    "pretrain.warmup_steps=2",
    "--set",
    "finetune.warmup_steps=2",
    "--set",
    "pretrain.eval_interval=3",
    "--set",
    "pretrain.checkpoint_interval=3",
    "--set",
    "finetune.max_steps=6",
    "--set",
    "finetune.eval_interval=3",
    "--set",
    "finetune.checkpoint_interval=3",
    "--set",
    "pretrain.eval_tokens=4096",
    "--set",
    "finetune.eval_tokens=4096",
]


def run_job(work: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "INSTRUCTPROTEIN_WORKDIR": str(work)}
    return subprocess.run(
        [sys.executable, "-m", "instructprotein.cli", "run", *QUICK],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    work = tmp_path_factory.mktemp("main-job")
    first = run_job(work)
    assert first.returncode == 0, first.stderr[-4000:]
    return work, first


def test_every_stage_ran_and_its_artefact_loads(job):
    import datasets

    from instructprotein.kg.store import KnowledgeGraph
    from instructprotein.model.factory import load_model_and_tokenizer

    work, first = job
    for stage in (
        "knowledge graph",
        "knowledge instructions",
        "pre-training corpus",
        "pre-training",
        "instruction tuning",
        "evaluation",
    ):
        assert stage in first.stderr
    with KnowledgeGraph(work / "kg.sqlite") as kg:
        proteins = kg.count("protein")
        assert 1500 < proteins < 4000  # 0.5 % of 516,371
        content_hash = kg.meta["content_hash"]

    instr = work / "instructions"
    summary = json.loads((instr / "instructions.json").read_text())
    assert summary["kg_content_hash"] == content_hash and summary["config"]["n_train"] == 600
    assert (instr / "decontamination" / "removed.tsv").is_file() and (instr / "splits" / "splits.tsv").is_file()
    assert summary["evidence"]["proteins_searched"] > 0 and (instr / "homologs" / "homologs.tsv").is_file()
    ds = datasets.load_from_disk(str(instr / "hf"))
    assert len(ds["train"]) > 300 and len(ds["valid"]) > 0
    assert any("Homologs" in p for p in ds["train"]["prompt"])  # retrieval evidence made it into training

    corpus = json.loads((work / "corpus" / "corpus.json").read_text())
    assert corpus["kg_content_hash"] == content_hash and corpus["proteins"] > 0 and corpus["go_documents"] > 0

    pre = json.loads((work / "runs" / "pretrain" / "training.json").read_text())
    fine = json.loads((work / "runs" / "finetune" / "training.json").read_text())
    assert pre["stage"] == "pretrain" and pre["steps"] == 6 and fine["stage"] == "finetune" and fine["steps"] == 6
    model, tok = load_model_and_tokenizer(work / "runs" / "finetune" / "model")
    assert tok.protein_open_id is not None and model.config.max_position_embeddings == 256
    # the tuned model was started from the pre-trained one (same tokenizer files)
    assert (work / "runs" / "pretrain" / "model" / "tokenizer.json").read_bytes() == (
        work / "runs" / "finetune" / "model" / "tokenizer.json"
    ).read_bytes()

    results = json.loads((work / "evaluation" / "results.json").read_text())
    assert Path(results["model"]["path"]) == (work / "runs" / "finetune" / "model").resolve()
    assert results["retrieval"] is True and results["decontamination"]["applies_to_homology_graph"]
    assert results["homology"]["reused_decontamination_hits"] > 0  # the benchmark sequences were not searched twice
    assert results["task_limits"] == {"go_mf": 5000} and results["limit"] == 12
    for task in ("deeploc10", "deeploc_binary", "metal_ion_binding", "go_mf", "heldout_location", "heldout_metal"):
        t = results["tasks"][task]
        assert t["n"] > 0 and "majority" in t["baselines"] and 0 <= t["model"]["sum"]["accuracy"] <= 1
    assert (work / "evaluation" / "report.md").is_file()
    assert (
        "main job done" in first.stdout
        and "headline results" in first.stdout
        and "instructprotein describe" in first.stdout
    )


def test_the_summarys_next_commands_work(job, tmp_path):
    """The summary names a held-out test protein; the commands it prints find the run's model and graph."""
    import re

    work, first = job
    env = {**os.environ, "COLUMNS": "200", "INSTRUCTPROTEIN_WORKDIR": str(work)}
    accession = re.search(r"kg show (\S+) --fasta", first.stdout).group(1)
    splits = (work / "instructions" / "splits" / "splits.tsv").read_text().splitlines()
    assert f"{accession}\t" in "\n".join(line for line in splits if line.endswith("\ttest"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "instructprotein.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )

    fasta = cli("kg", "show", accession, "--fasta")
    assert fasta.returncode == 0 and fasta.stdout.split()[0] == f">{accession}", fasta.stderr
    (tmp_path / f"{accession}.fasta").write_text(fasta.stdout)
    described = cli(
        "describe", f"{accession}.fasta", "--max-identity", "0.7", "--format", "jsonl", "--max-new-tokens", "8"
    )
    assert described.returncode == 0, described.stderr[-2000:]
    answer = json.loads(described.stdout)
    assert answer["id"] == accession and "no knowledge graph" not in described.stderr
    assert all(h["identity"] < 0.7 for h in answer["homologs"])


def test_rerun_skips_what_is_done(job):
    work, _ = job
    again = run_job(work)
    assert again.returncode == 0, again.stderr[-4000:]
    for stage in (
        "knowledge graph",
        "knowledge instructions",
        "pre-training corpus",
        "pre-training",
        "instruction tuning",
        "evaluation",
    ):
        assert f"{stage}" in again.stderr
    assert again.stderr.count("skipped:") >= 6
    assert "training the tokenizer" not in again.stderr
