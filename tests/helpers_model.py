"""A knowledge graph and a randomly initialised tiny model for the inference tests.

Built once per test session (memoised here; a module is imported once) in a temporary
folder removed at exit:

- a graph whose GO part has real ids, names and a real is_a / part_of structure (zinc,
  copper, iron under transition metal ion binding, ...), EXACT synonyms for a few terms,
  and proteins with random sequences of ~200 residues (no two related by chance) plus one
  designed homolog: P20007 is P20001 with 20 % of its residues substituted;
- a byte-level BPE trained on the graph's GO documents plus rendered prompts of every task,
  and an OPT of 2 layers, hidden size 48, 512 positions, saved as a model folder.

No training: the tests check that inference computes the right things from whatever
weights it is given, not that a model is good.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from functools import cache
from pathlib import Path

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

TERMS = [  # id, name, namespace, [(relation, parent)], [exact synonyms]
    ("GO:0003674", "molecular_function", "molecular_function", [], []),
    ("GO:0005488", "binding", "molecular_function", [("is_a", "GO:0003674")], []),
    ("GO:0043167", "ion binding", "molecular_function", [("is_a", "GO:0005488")], []),
    ("GO:0043169", "cation binding", "molecular_function", [("is_a", "GO:0043167")], []),
    ("GO:0046872", "metal ion binding", "molecular_function", [("is_a", "GO:0043169")], ["metal binding"]),
    ("GO:0046914", "transition metal ion binding", "molecular_function", [("is_a", "GO:0046872")], []),
    ("GO:0008270", "zinc ion binding", "molecular_function", [("is_a", "GO:0046914")], ["zinc binding"]),
    ("GO:0005507", "copper ion binding", "molecular_function", [("is_a", "GO:0046914")], []),
    ("GO:0005506", "iron ion binding", "molecular_function", [("is_a", "GO:0046914")], []),
    ("GO:0031420", "alkali metal ion binding", "molecular_function", [("is_a", "GO:0046872")], []),
    ("GO:0030955", "potassium ion binding", "molecular_function", [("is_a", "GO:0031420")], []),
    ("GO:0005509", "calcium ion binding", "molecular_function", [("is_a", "GO:0046872")], []),
    ("GO:0003676", "nucleic acid binding", "molecular_function", [("is_a", "GO:0005488")], []),
    ("GO:0003677", "DNA binding", "molecular_function", [("is_a", "GO:0003676")], []),
    ("GO:0003824", "catalytic activity", "molecular_function", [("is_a", "GO:0003674")], []),
    ("GO:0016301", "kinase activity", "molecular_function", [("is_a", "GO:0003824")], []),
    ("GO:0004672", "protein kinase activity", "molecular_function", [("is_a", "GO:0016301")], []),
    ("GO:0005575", "cellular_component", "cellular_component", [], []),
    ("GO:0043226", "organelle", "cellular_component", [("is_a", "GO:0005575")], []),
    ("GO:0005634", "nucleus", "cellular_component", [("is_a", "GO:0043226")], ["cell nucleus"]),
    ("GO:0031981", "nuclear lumen", "cellular_component", [("part_of", "GO:0005634")], []),
    ("GO:0005739", "mitochondrion", "cellular_component", [("is_a", "GO:0043226")], []),
    ("GO:0005737", "cytoplasm", "cellular_component", [("is_a", "GO:0005575")], []),
    ("GO:0005829", "cytosol", "cellular_component", [("part_of", "GO:0005737")], []),
    ("GO:0008150", "biological_process", "biological_process", [], []),
    ("GO:0008152", "metabolic process", "biological_process", [("is_a", "GO:0008150")], []),
    ("GO:0006259", "DNA metabolic process", "biological_process", [("is_a", "GO:0008152")], []),
    ("GO:0006281", "DNA repair", "biological_process", [("is_a", "GO:0006259")], []),
]
NAMES = {t[0]: t[1] for t in TERMS}
ASPECT = {t[0]: {"molecular_function": "F", "biological_process": "P", "cellular_component": "C"}[t[2]] for t in TERMS}


def random_protein(length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(AMINO_ACIDS) for _ in range(length))


def mutant(sequence: str, identity: float, seed: int = 1) -> str:
    """``sequence`` with exactly round((1 - identity) * length) residues substituted (no indels)."""
    rng = random.Random(seed)
    residues = list(sequence)
    for i in rng.sample(range(len(residues)), round(len(residues) * (1 - identity))):
        residues[i] = rng.choice([a for a in AMINO_ACIDS if a != residues[i]])
    return "".join(residues)


BASE = {i: random_protein(180 + 10 * i, seed=100 + i) for i in range(1, 9)}
PROTEINS = [  # accession, sequence, GO ids
    ("P20001", BASE[1], ["GO:0008270", "GO:0005634", "GO:0006281"]),
    ("P20002", BASE[2], ["GO:0005507", "GO:0005739"]),
    ("P20003", BASE[3], ["GO:0005506", "GO:0005737"]),
    ("P20004", BASE[4], ["GO:0030955"]),
    ("P20005", BASE[5], ["GO:0005509", "GO:0005829"]),
    ("P20006", BASE[6], ["GO:0004672", "GO:0005634"]),
    ("P20007", mutant(BASE[1], 0.8, seed=7), ["GO:0008270", "GO:0003677", "GO:0031981"]),
    ("P20008", BASE[8], ["GO:0003677", "GO:0031981"]),
]
SEQUENCES = {acc: seq for acc, seq, _ in PROTEINS}


def obo_text() -> str:
    out = ["format-version: 1.2", ""]
    for tid, name, ns, parents, synonyms in TERMS:
        out += ["[Term]", f"id: {tid}", f"name: {name}", f"namespace: {ns}", f'def: "{name}." [GOC:test]']
        out += [f'synonym: "{s}" EXACT []' for s in synonyms]
        for rel, parent in parents:
            out.append(f"is_a: {parent}" if rel == "is_a" else f"relationship: {rel} {parent}")
        out.append("")
    out += ["[Typedef]", "id: part_of", "name: part of", ""]
    return "\n".join(out)


def dat_text() -> str:
    out = []
    for acc, seq, go in PROTEINS:
        out += [
            f"ID   {acc}_TEST              Reviewed;          {len(seq)} AA.",
            f"AC   {acc};",
            f"DE   RecName: Full=Test protein {acc};",
            "OS   Homo sapiens (Human).",
            "OX   NCBI_TaxID=9606;",
        ]
        for g in go:
            out.append(f"DR   GO; {g}; {ASPECT[g]}:{NAMES[g]}; IDA:UniProtKB.")
        seq_lines = [seq[i : i + 60] for i in range(0, len(seq), 60)]
        out += [f"SQ   SEQUENCE   {len(seq)} AA;  1000 MW;  0000000000000000 CRC64;"]
        out += [f"     {line}" for line in seq_lines]
        out.append("//")
    return "\n".join(out) + "\n"


@cache
def workdir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ip-infer-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@cache
def kg_path() -> Path:
    """The test graph, built once; its MMseqs2 caches appear beside it on first search."""
    from instructprotein.formats.obo import read_obo
    from instructprotein.kg.inputs import build_from_uniprot

    folder = workdir() / "kg"
    folder.mkdir()
    (folder / "go.obo").write_text(obo_text())
    (folder / "test.dat").write_text(dat_text())
    return build_from_uniprot([folder / "test.dat"], read_obo(folder / "go.obo"), folder / "kg.sqlite")


def tokenizer_texts() -> list[str]:
    """GO documents of the test graph plus every task's phrasings with realistic slot values."""
    from instructprotein.instruct.corpus import go_documents
    from instructprotein.instruct.templates import TASKS
    from instructprotein.kg.store import KnowledgeGraph

    with KnowledgeGraph(kg_path()) as kg:
        texts = list(go_documents(kg))
    slots = {
        "functions": "binds zinc ion and has protein kinase activity",
        "terms": "zinc ion binding, DNA binding",
        "locations": "nucleus",
        "aspect_name": "molecular function",
        "term_lines": "GO:0008270 zinc ion binding",
        "n": "2",
        "kind": "a zinc ion-binding protein",
        "term": "metal ion binding",
        "answer": "yes",
        "options": "A. nucleus\nB. cytoplasm",
        "letter": "A",
        "option": "nucleus",
        "description": "binds zinc ion",
        "properties": "zinc ion binding; nucleus",
        "length": "200",
        "protein": "",
    }
    for task in TASKS.values():
        for p in task.phrasings:
            q = p.question.format_map(_Slots(slots))
            a = p.answer.format_map(_Slots(slots))
            texts.append(f"Instruction: {q}\n\nOutput: {a}")
    from instructprotein.infer.prompts import LOCATION_LABELS

    texts += [f"The protein is located in {w}." for w in LOCATION_LABELS] * 3
    return texts * 2


class _Slots(dict):
    def __missing__(self, key: str) -> str:
        return self[key[0].lower() + key[1:]]


MODEL_OVERRIDES = {
    "model.hidden_size": 48,
    "model.num_layers": 2,
    "model.num_heads": 2,
    "model.ffn_dim": 96,
    "model.context_length": 512,
    "model.prompt_residues": None,  # reads whole proteins: the tests of long-protein fitting need it
}


@cache
def model_path() -> Path:
    """A saved random tiny model with a trained tokenizer."""
    from instructprotein.model.factory import create_model, save_model
    from instructprotein.model.presets import load_preset
    from instructprotein.model.tokenizer import train_tokenizer

    tok = train_tokenizer(tokenizer_texts(), 600, min_frequency=2)
    model = create_model(load_preset("tiny", MODEL_OVERRIDES), tok, seed=0)
    return save_model(model, tok, workdir() / "model")


@cache
def model_and_tokenizer():
    from instructprotein.model.factory import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(model_path())
    model.eval()
    return model, tok


def one_thread():
    """Generator for an autouse fixture: torch on one thread while a test module runs.

    On a shared 2-core machine two OpenMP threads that spin-wait for each other made one
    forward pass of the test model 50x slower (250 ms against 5 ms) whenever another process
    was busy; one thread is as fast for a model this small and is not disturbed.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def instructions_folder(d: Path, split: dict[str, str]) -> Path:
    """A hand-made instruction folder over the helpers' graph: ``split`` names each protein's
    split (the rest are train); enough for the held-out tasks and the evaluation's exclusions."""
    import json

    from instructprotein.kg.store import KnowledgeGraph

    (d / "splits").mkdir(parents=True)
    rows = ["accession\trepresentative\tsplit"] + [f"{a}\t{a}\t{split.get(a, 'train')}" for a in SEQUENCES]
    (d / "splits" / "splits.tsv").write_text("\n".join(rows) + "\n")
    with KnowledgeGraph(kg_path()) as kg:
        hash_ = kg.meta["content_hash"]
    (d / "splits" / "splits.json").write_text(json.dumps({"inputs": {"kg_content_hash": hash_}, "counts": {}}))
    (d / "instructions.json").write_text(json.dumps({"kg": str(kg_path()), "config": {}}))
    return d
