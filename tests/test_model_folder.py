"""A saved model folder read by plain ``transformers`` exactly as the model was trained: the
tokenizer adds bos in every layout, ``generation_config.json`` carries describe's decoding, the
folder has a model card, the paper's own scoring recipe agrees with our evaluation, and a folder
saved before all this still loads (said once)."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import yaml

import helpers_model as h
from instructprotein.instruct.render import protein_text
from instructprotein.model.tokenizer import (
    ProteinTokenizer,
    load_tokenizer,
    train_tokenizer,
)
from test_tokenizer import MIXED, go_texts, gpt2_style_folder


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def texts(resource) -> list[str]:
    return go_texts(resource("go-sqlite"), limit=600)


@pytest.fixture(scope="module")
def layouts(texts, tmp_path_factory) -> dict[str, ProteinTokenizer]:
    """One tokenizer per layout: trained here, the paper's (OPT BPE + 22 tokens), a GPT-2 style one adapted."""
    root = tmp_path_factory.mktemp("layouts")
    ours = train_tokenizer(texts + [protein_text("MKTAYIAKQR" * 20)], 700, root / "ours")
    paper = load_tokenizer(gpt2_style_folder(texts[:300], root / "paper"))
    foreign = gpt2_style_folder(texts[:300], root / "gpt2", added=())
    config = json.loads((foreign / "tokenizer_config.json").read_text())
    config["add_bos_token"] = False  # as GPT-2's own folder: no bos from plain transformers
    (foreign / "tokenizer_config.json").write_text(json.dumps(config))
    adapted = load_tokenizer(foreign, add_missing=True)
    return {"instructprotein": ours, "paper": paper, "adapted": adapted}


@pytest.mark.parametrize("layout", ["instructprotein", "paper", "adapted"])
def test_auto_tokenizer_gives_our_ids_bos_included(layouts, tmp_path, layout):
    from transformers import AutoTokenizer

    tok = layouts[layout]
    assert tok.layout == layout
    saved = tok.save_pretrained(tmp_path / "saved")
    config = json.loads((saved / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is True and config["add_eos_token"] is False
    plain = AutoTokenizer.from_pretrained(str(saved), local_files_only=True)
    for text in MIXED:
        ours = tok.encode(text)
        assert ours[0] == tok.bos_token_id
        assert plain(tok.backend_text(text))["input_ids"] == ours, (layout, text)
        assert load_tokenizer(saved).encode(text) == ours
    # the paper's users' own notation, no helper involved
    seq = "MKTAYIAKQRQISFVKSHFSRQ"
    prompt = "<protein>Ƥ" + "Ƥ".join(seq) + "</protein>Instruction: What is the function of this protein?\n\nOutput:"
    assert plain(prompt)["input_ids"] == tok.encode(
        f"{protein_text(seq)}Instruction: What is the function of this protein?\n\nOutput:"
    )
    assert plain("")["input_ids"] == [tok.bos_token_id]


def test_generation_config_is_describes_decoding():
    from transformers import AutoModelForCausalLM, GenerationConfig

    from instructprotein.infer.describe import describe
    from instructprotein.infer.generate import generate_answers
    from instructprotein.model.factory import DESCRIBE_DECODING

    folder = h.model_path()
    _, tok = h.model_and_tokenizer()
    saved = json.loads((folder / "generation_config.json").read_text())
    assert (saved["bos_token_id"], saved["eos_token_id"], saved["pad_token_id"]) == (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    assert saved["do_sample"] is False and saved.get("num_beams", 1) == 1
    for fn in (describe, generate_answers):
        assert inspect.signature(fn).parameters["max_new_tokens"].default == DESCRIBE_DECODING["max_new_tokens"]
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    assert model.generation_config.max_new_tokens == DESCRIBE_DECODING["max_new_tokens"]
    assert GenerationConfig.from_pretrained(str(folder)).eos_token_id == tok.eos_token_id


def test_pipeline_decodes_as_our_greedy_generation():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    folder = h.model_path()
    _, tok = h.model_and_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    plain = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    prompt = f"{protein_text(h.SEQUENCES['P20001'][:60])}Instruction: What is the function of this protein?\n\nOutput:"
    out = pipeline("text-generation", model=model, tokenizer=plain)(tok.backend_text(prompt), return_tensors=True)
    got = list(out[0]["generated_token_ids"])
    ids = torch.tensor([tok.encode(prompt)])
    with torch.no_grad():
        want = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            num_beams=1,
            max_new_tokens=128,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )[0]
    assert got == want.tolist()  # the prompt with bos, then the same greedy answer, same length
    assert len(want) - ids.shape[1] > 20  # longer than transformers' default max_length: the config's budget applies


# -- the paper's scoring, independently -----------------------------------------------------------------------

LOCATIONS = [
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


def _deeploc_items(n: int) -> list[dict]:
    import gzip

    import instructprotein

    path = Path(instructprotein.__file__).parent / "data" / "benchmarks" / "deeploc_subcellular_test.jsonl.gz"
    items = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if len(r["sequence"]) <= 300 and set(r["sequence"]) <= set("ACDEFGHIKLMNPQRSTVWY"):
                items.append(r)
            if len(items) == n:
                break
    return items


def test_paper_first_token_scoring_through_plain_transformers_matches_evaluate(tmp_path):
    """The paper's recipe, written here from its description: ``"<protein>Ƥ" + "Ƥ".join(seq) +
    "</protein>"``, the question, ``Output: The protein is located in``, each location's first
    token after it; the highest wins (the first in label order on a tie)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instructprotein.evaluate.runner import evaluate

    items = _deeploc_items(6)
    (tmp_path / "subset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    task = yaml.safe_load((Path(evaluate.__code__.co_filename).parent / "tasks" / "deeploc10.yaml").read_text())
    task.update(name="deeploc_subset", data={"test": "subset.jsonl"}, baselines={"majority": True})
    task.pop("evidence", None)
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task))
    evaluate(h.model_path(), [tmp_path / "task.yaml"], out_dir=tmp_path / "eval", homology=False, plots=False)
    rows = [
        json.loads(x) for x in (tmp_path / "eval" / "predictions" / "deeploc_subset.jsonl").read_text().splitlines()
    ]
    assert [r["residues_read"] for r in rows] == [len(i["sequence"]) for i in items]  # nothing cut

    folder = str(h.model_path())
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    firsts = [tok(" " + c, add_special_tokens=False)["input_ids"][0] for c in LOCATIONS]
    for item, row in zip(items, rows):
        seq = item["sequence"]
        prompt = (
            "<protein>Ƥ" + "Ƥ".join(seq) + "</protein>" + "Instruction: What cellular components is the "
            "protein located in?\n\nOutput: The protein is located in"
        )
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, -1].double(), dim=-1)
        scores = [float(logp[t]) for t in firsts]
        best = max(range(len(scores)), key=lambda k: (scores[k], -k))
        assert row["first_token"]["prediction"] == LOCATIONS[best]
        top = max(scores)
        z = sum(math.exp(s - top) for s in scores)
        for c, s in zip(LOCATIONS, scores):  # and the same numbers, not only the same winner
            assert row["first_token"]["probabilities"][c] == pytest.approx(math.exp(s - top) / z, abs=2e-4)


# -- the card -------------------------------------------------------------------------------------------------


def _card_header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_saved_folder_has_a_card_with_its_training_facts(tmp_path):
    from instructprotein.model.factory import load_model_and_tokenizer, save_model
    from instructprotein.model.presets import load_preset

    model, tok = h.model_and_tokenizer()
    preset = load_preset("tiny", h.MODEL_OVERRIDES)
    metrics = {
        "stage": "finetune",
        "step": 1234,
        "tokens": 99,
        "val_loss": 1.5,
        "data": {
            "instructions": {"path": "/w/instructions", "sha256": "ab" * 32, "train": 20000, "evidence_fraction": 1.0},
            "graph": {"source": "metastudent-data:x", "ontology_version": "2014-01", "content_hash": "cd" * 32},
            "init": "/w/runs/pretrain/model",
            "init_name_or_path": "/w/runs/pretrain/model",
        },
    }
    folder = save_model(
        model, tok, tmp_path / "m", extra_files={"preset.yaml": preset.to_yaml(), "metrics.json": json.dumps(metrics)}
    )
    card = (folder / "README.md").read_text()
    header = _card_header(card)
    assert header["license"] and "protein" in header["tags"] and header["datasets"]
    assert "base_model" not in header  # a local folder is no hub id
    for fact in (
        "tiny",
        "1234",
        "ab" * 32,
        "cd" * 32,
        "2014-01",
        f"| seed | {preset.seed} |",
        "Not evaluated yet",
        "AutoTokenizer",
        "Model.load",
        "## Limits",
        "Ƥ",
    ):
        assert fact in card, fact
    load_model_and_tokenizer(folder)  # the card does not disturb loading


def test_run_rewrites_the_card_with_the_evaluations_numbers(tmp_path):
    import shutil

    from instructprotein.cli.run import _write_card
    from instructprotein.evaluate.runner import evaluate
    from instructprotein.model.card import results_for

    folder = tmp_path / "model"
    shutil.copytree(h.model_path(), folder)
    items = _deeploc_items(4)
    (tmp_path / "subset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    task = yaml.safe_load((Path(evaluate.__code__.co_filename).parent / "tasks" / "deeploc10.yaml").read_text())
    task.update(name="deeploc10", data={"test": "subset.jsonl"}, baselines={"majority": True})
    task.pop("evidence", None)
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task))
    r = evaluate(folder, [tmp_path / "task.yaml"], out_dir=tmp_path / "evaluation", homology=False, plots=False)
    _write_card(folder, tmp_path / "evaluation")
    card = (folder / "README.md").read_text()
    acc = r["tasks"]["deeploc10"]["model"]["first_token"]["accuracy"] * 100
    row = next(line for line in card.splitlines() if line.startswith("| deeploc10 |"))
    assert f"| {acc:.1f} |" in row and "accuracy 70.79" in row
    assert "Not evaluated yet" not in card
    # another model's results never reach a card
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    (other / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    assert results_for(other, tmp_path / "evaluation" / "results.json") is None
    assert results_for(folder, tmp_path / "evaluation" / "results.json") is not None


# -- a folder saved before this change -----------------------------------------------------------------------


def _as_saved_before(folder: Path) -> None:
    """The tokenizer files exactly as the previous version wrote them: a bos-less template, no add_bos_token."""
    tj = json.loads((folder / "tokenizer.json").read_text())
    tj["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {},
    }
    (folder / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("add_bos_token"), config.pop("add_eos_token")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "README.md").unlink()


def test_folder_saved_before_loads_as_before_said_once_and_upgrades(tmp_path, capsys):
    import shutil

    from transformers import AutoTokenizer

    from instructprotein.model.card import upgrade_folder
    from instructprotein.model.factory import load_model_and_tokenizer
    from instructprotein.train.data import tokenizer_fingerprint

    folder = tmp_path / "old"
    shutil.copytree(h.model_path(), folder)
    _, current = h.model_and_tokenizer()
    _as_saved_before(folder)
    assert AutoTokenizer.from_pretrained(str(folder))("hello")["input_ids"][0] != current.bos_token_id  # the old bug
    capsys.readouterr()
    _, old = load_model_and_tokenizer(folder)
    load_tokenizer(folder)
    notes = [line for line in capsys.readouterr().err.splitlines() if "saved before" in line]
    assert len(notes) == 1 and str(folder) in notes[0]
    for text in MIXED:
        assert old.encode(text) == current.encode(text)
    assert tokenizer_fingerprint(old) == tokenizer_fingerprint(current)  # the training data caches stay valid

    upgrade_folder(folder)
    plain = AutoTokenizer.from_pretrained(str(folder))
    for text in MIXED:
        assert plain(current.backend_text(text))["input_ids"] == current.encode(text)
    assert (folder / "README.md").exists() and json.loads((folder / "generation_config.json").read_text())[
        "max_new_tokens"
    ]
    assert not list(folder.glob(".upgrade-*"))
    capsys.readouterr()
    load_tokenizer(folder)
    assert "saved before" not in capsys.readouterr().err
