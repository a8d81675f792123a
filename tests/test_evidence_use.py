"""benchmarks/evidence_use.py: the homologs' class read from a location block, and both probes run end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from helpers_model import model_path, random_protein

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "evidence_use.py"
CLASSES = [
    "plasma membrane",
    "cytoplasm",
    "endoplasmic reticulum",
    "golgi",
    "vacuole",
    "mitochondrion",
    "nucleus",
    "peroxisome",
    "chloroplast",
    "extracellular",
]


def _script():
    spec = importlib.util.spec_from_file_location("evidence_use", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_majority_class_reads_each_homologs_leading_class() -> None:
    majority_class = _script().majority_class
    block = (
        "Homologs: 62% identical: nucleus (nucleolus, cytoplasmic stress granule). "
        "41% identical: cytoplasm. 40% identical: cytoplasm and nucleus (cytosol)."
    )
    # cytoplasm leads two homologs; the bracketed names never count
    assert majority_class(block, CLASSES) == "cytoplasm"
    # a tie goes to the class the best homolog names
    assert majority_class("Homologs: 50% identical: golgi. 45% identical: vacuole.", CLASSES) == "golgi"
    assert majority_class("Homologs: 50% identical: location unknown.", CLASSES) is None
    assert majority_class("Homologs: none found.", CLASSES) is None


def _record(task: str, block: str, question: str, seed: int) -> dict[str, str]:
    prompt = f"<protein>{random_protein(60, seed)}</protein>Instruction: {block}\n{question}\n\nOutput: "
    return {"task": task, "prompt": prompt}


def test_both_probes_run_on_an_instruction_set(tmp_path: Path) -> None:
    rows = [
        _record("location", "Homologs: 62% identical: nucleus (nucleolus).", "Where is the protein?", 1),
        _record("location", "Homologs: 55% identical: mitochondrion. 41% identical: mitochondrion.", "Where is it?", 2),
        _record("location", "Homologs: none found.", "Where is the protein?", 3),  # no class: left out
        _record("yes_no", "Homologs with zinc ion binding? 62% identical: yes.", "Does it bind zinc?", 4),
        _record("yes_no", "Homologs with zinc ion binding? 62% identical: no. 50% identical: no.", "Zinc?", 5),
        _record("function", "Homologs: 62% identical: zinc ion binding.", "What does it do?", 6),
    ]
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "jsonl" / "valid-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = [
        sys.executable,
        str(SCRIPT),
        "--model",
        str(model_path()),
        "--instructions",
        str(tmp_path),
        "--threads",
        "1",
    ]

    loc = subprocess.run([*base, "--kind", "location"], capture_output=True, text=True, check=True).stdout
    assert "2 location questions with location evidence" in loc
    assert "nucleus 1" in loc and "mitochondrion 1" in loc
    assert "lift: agreement with the block / without it:" in loc

    yes_no = subprocess.run(base, capture_output=True, text=True, check=True).stdout
    assert "2 yes/no questions with term evidence" in yes_no
    assert "ratio p(yes | homologs yes) / p(yes | homologs no):" in yes_no


def test_no_questions_of_the_kind_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "jsonl" / "valid-00000.jsonl").write_text(
        json.dumps(_record("yes_no", "Homologs with zinc ion binding? 62% identical: yes.", "Zinc?", 1)) + "\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--model",
            str(model_path()),
            "--instructions",
            str(tmp_path),
            "--kind",
            "location",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "no location questions with location evidence in valid" in run.stderr
