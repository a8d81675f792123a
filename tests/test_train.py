"""The training loop on a micro model (hidden 32, 2 layers, context 64): loss falls, labels sit
exactly on the answer, packed examples do not see each other, two processes give the loss of
one, a SIGKILLed run resumes to the same loss, and bad input stops before any step with
nothing in the run folder overwritten.

The data are small but in the real formats: a corpus folder of ``shard-*.jsonl`` records
``{"text", "source"}`` and an instruction dataset saved with ``DatasetDict.save_to_disk``
under ``hf/``, with the columns and answer spans ``instructions build`` writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from instructprotein.errors import InputError
from instructprotein.model.presets import load_preset
from instructprotein.model.tokenizer import (
    corpus_texts,
    load_tokenizer,
    train_tokenizer,
)
from instructprotein.train.data import prepare_pretrain_data
from instructprotein.train.instruction_data import encode_examples, prepare_instruction_data
from instructprotein.train.loop import read_log, token_loss_sum
from instructprotein.train.stages import finetune, pretrain

AA = "ACDEFGHIKLMNPQRSTVWY"
WORDS = [
    "binding",
    "activity",
    "transport",
    "membrane",
    "nucleus",
    "kinase",
    "zinc",
    "ion",
    "protein",
    "complex",
    "regulation",
    "cell",
    "catalysis",
    "transfer",
    "receptor",
]


def micro(**stage: object) -> dict[str, object]:
    """Overrides that shrink the tiny preset to a 30k-parameter model; ``stage`` keys apply to both stages."""
    out: dict[str, object] = {
        "model.hidden_size": 32,
        "model.num_layers": 2,
        "model.num_heads": 2,
        "model.ffn_dim": 64,
        "model.context_length": 64,
        "tokenizer.bpe_vocab_size": 320,
        "tokenizer.max_documents": None,
        "model.prompt_residues": None,  # proteins as long as the context holds; the cut has its own test
    }
    base = {
        "batch_tokens": 256,
        "micro_batch_tokens": 128,
        "max_steps": 30,
        "warmup_steps": 3,
        "lr": 3e-3,
        "eval_interval": 10,
        "eval_tokens": 256,
        "checkpoint_interval": 10,
        "max_minutes": None,
        "precision": "fp32",
        "patience": 5,
    }
    base.update(stage)
    for name in ("pretrain", "finetune"):
        out.update({f"{name}.{k}": v for k, v in base.items()})
    return out


def write_corpus(folder: Path, docs: int = 400, seed: int = 0) -> Path:
    """Protein documents from four motifs and GO-style sentences: learnable in a few steps."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    motifs = ["".join(rng.choice(AA) for _ in range(12)) for _ in range(4)]
    records = []
    for i in range(docs):
        if i % 3 == 0:
            seq = "M" + "".join(rng.choice(motifs) for _ in range(rng.randint(2, 8)))
            records.append({"text": f"<protein>{seq}</protein>", "source": "protein"})
        else:
            a, b = rng.sample(WORDS, 2)
            sentence = f"{a.capitalize()} {b} is a molecular function in the Gene Ontology. It is a kind of {b} {a}. "
            records.append({"text": (sentence * rng.randint(1, 3)).strip(), "source": "go"})
    for k in range(2):
        with open(folder / f"shard-{k:05d}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records[k::2])
    return folder


def example(rng: random.Random, i: int, residues: tuple[int, int] = (3, 10)) -> dict[str, object]:
    seq = "M" + "".join(rng.choice(AA) for _ in range(rng.randint(*residues)))
    prompt = f"<protein>{seq}</protein>What does it do? "
    answer = f"It has {rng.choice(WORDS)} activity."
    return {
        "text": prompt + answer,
        "answer_start": len(prompt),
        "answer_end": len(prompt) + len(answer),
        "task": "function",
        "accession": f"P{i:05d}",
        "residues": len(seq),
    }


def write_instructions(folder: Path, train: list[dict], valid: list[dict]) -> Path:
    import datasets

    def ds(rows: list[dict]) -> datasets.Dataset:
        return (
            datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({"text": [], "answer_start": []})
        )

    datasets.DatasetDict({"train": ds(train), "valid": ds(valid), "test": ds(valid)}).save_to_disk(str(folder / "hf"))
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus")


@pytest.fixture(scope="module")
def tokenizer_dir(corpus, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(corpus_texts(corpus), 320, folder)
    return folder


@pytest.fixture(scope="module")
def instructions(tmp_path_factory) -> Path:
    rng = random.Random(1)
    return write_instructions(
        tmp_path_factory.mktemp("instr") / "instructions",
        [example(rng, i) for i in range(200)],
        [example(rng, 1000 + i) for i in range(20)],
    )


@pytest.fixture(scope="module")
def pretrained(corpus, tokenizer_dir, tmp_path_factory):
    """One finished 30-step pre-training run, shared by the tests that read it."""
    run = tmp_path_factory.mktemp("runs") / "pretrain"
    result = pretrain(load_preset("tiny", micro()), corpus, run, tokenizer=tokenizer_dir)
    return run, result


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Micro models gain nothing from a second thread, and on a shared CPU a spinning one costs (OMP)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ training


def test_pretraining_loss_falls_and_run_folder_is_complete(pretrained):
    run, result = pretrained
    assert result.steps == 30 and result.stop_reason.startswith("max_steps")
    # a real decrease: from ~ln(343) = 5.8 (uniform over the vocabulary) by more than a nat
    assert result.first_train_loss > 5.0
    assert result.last_train_loss < result.first_train_loss - 1.0
    assert result.best_val_loss < result.initial_val_loss - 1.0
    rows = read_log(run)
    assert [r["step"] for r in rows] == list(range(31))
    assert [r["step"] for r in rows if r["val_loss"] is not None] == [0, 10, 20, 30]
    assert rows[0]["train_loss"] is None and rows[0]["val_loss"] == pytest.approx(result.initial_val_loss)
    assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in rows[1:])
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00020", "step-00030"]  # the last two
    summary = json.loads((run / "training.json").read_text())
    assert summary["best_step"] == 30 and summary["preset"]["model"]["hidden_size"] == 32
    from instructprotein.model.factory import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(run / "model")
    assert json.loads((run / "model" / "metrics.json").read_text())["step"] == 30
    assert (run / "model" / "preset.yaml").exists()
    assert model.config.max_position_embeddings == 64


@pytest.mark.parametrize("weighting", ["token", "example"])
def test_finetune_from_pretrained_model(pretrained, instructions, tmp_path, weighting):
    run, _ = pretrained
    preset = load_preset("tiny", {**micro(max_steps=20), "finetune.loss_weighting": weighting})
    result = finetune(preset, instructions, tmp_path / "ft", init=run / "model")
    assert result.best_val_loss < result.initial_val_loss - 0.5
    assert result.data["loss_on"] == "answer"
    summary = json.loads((tmp_path / "ft" / "training.json").read_text())
    assert summary["preset"]["finetune"]["loss_weighting"] == weighting
    assert (tmp_path / "ft" / "model" / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------ labels


def test_answer_only_labels_sit_exactly_on_the_answer(tokenizer_dir, tmp_path):
    tok = load_tokenizer(tokenizer_dir)
    prompt = "<protein>MKTAYIAK</protein>What does it do? "
    answer = "It has zinc binding activity."
    text = prompt + answer
    (ex,) = encode_examples(tok, [text], [(len(prompt), len(text))], "answer")
    enc = tok.encode_with_offsets(text, add_bos=True, add_eos=True)
    assert ex.ids.tolist() == enc.input_ids
    # the answer's tokens are those whose characters reach into the answer, then eos; nothing before
    first = next(i for i, (s, e) in enumerate(enc.offsets) if e > len(prompt))
    expected = np.zeros(len(enc.input_ids), dtype=bool)
    expected[first:] = True
    assert ex.mask.tolist() == expected.tolist()
    assert enc.input_ids[first - 1] != tok.eos_token_id and enc.offsets[first - 1][1] <= len(prompt)
    assert ex.ids[-1] == tok.eos_token_id and ex.mask[-1]  # the model learns to stop
    assert not ex.mask[0] and ex.ids[0] == tok.bos_token_id
    assert tok.decode(ex.ids[ex.mask]).strip() == answer
    # 8 residues + <protein> + </protein> + bos are never labels
    assert first >= 11

    # and the same positions after packing: labels == ids on the answer, -100 elsewhere
    write_instructions(
        tmp_path / "ds",
        [
            {
                "text": text,
                "answer_start": len(prompt),
                "answer_end": len(text),
                "task": "function",
                "accession": "P1",
                "residues": 8,
            }
        ]
        * 3,
        [
            {
                "text": text,
                "answer_start": len(prompt),
                "answer_end": len(text),
                "task": "function",
                "accession": "P1",
                "residues": 8,
            }
        ],
    )
    data = prepare_instruction_data(tmp_path / "ds", tok, 64, tmp_path / "cache", loss_on="answer", pack=False)
    batch = data.train.batch(np.array([0]))
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    n = len(enc.input_ids)
    assert ids[:n].tolist() == enc.input_ids
    assert labels[:first].eq(-100).all() and labels[n:].eq(-100).all()  # prompt and padding
    assert labels[first:n].tolist() == enc.input_ids[first:]


def test_whole_sequence_labels_everything_but_bos_and_padding(tokenizer_dir, instructions, tmp_path):
    tok = load_tokenizer(tokenizer_dir)
    data = prepare_instruction_data(instructions, tok, 64, tmp_path / "cache", loss_on="all", pack=False)
    batch = data.train.batch(np.arange(10))
    ids, labels = batch["input_ids"], batch["labels"]
    padding = ids == tok.pad_token_id
    assert padding.any()
    real = ~padding
    assert (labels[real & (ids != tok.bos_token_id)] == ids[real & (ids != tok.bos_token_id)]).all()
    assert labels[padding].eq(-100).all() and labels[ids == tok.bos_token_id].eq(-100).all()
    assert data.stats["label_tokens"]["train"] == data.stats["tokens"]["train"] - data.stats["examples"]["train"]


def test_packed_examples_do_not_attend_to_each_other(tokenizer_dir, tmp_path):
    """The loss of every token is the same whether its example shares a row or has one of its own."""
    from instructprotein.model.factory import create_model

    rng = random.Random(3)
    short = [
        {
            "text": f"<protein>M{''.join(rng.choice(AA) for _ in range(rng.randint(1, 6)))}</protein>yes",
            "answer_start": 0,
            "answer_end": 0,
            "task": "t",
            "accession": f"P{i}",
            "residues": 1,
        }
        for i in range(40)
    ]
    for r in short:
        r["answer_start"], r["answer_end"] = len(r["text"]) - 3, len(r["text"])
    write_instructions(tmp_path / "ds", short, short[:4])
    tok = load_tokenizer(tokenizer_dir)
    packed = prepare_instruction_data(tmp_path / "ds", tok, 64, tmp_path / "packed", loss_on="all", pack=True)
    single = prepare_instruction_data(tmp_path / "ds", tok, 64, tmp_path / "single", loss_on="all", pack=False)
    assert packed.train.rows < single.train.rows / 3  # several examples per row
    assert packed.stats["tokens"]["train"] == single.stats["tokens"]["train"]
    model = create_model(load_preset("tiny", micro()), tok, seed=0).eval()
    with torch.no_grad():
        a = token_loss_sum(model, packed.train.batch(np.arange(packed.train.rows)), "cpu")
        b = token_loss_sum(model, single.train.batch(np.arange(single.train.rows)), "cpu")
        # without the block-diagonal mask the packed rows would see their neighbours
        crossed = dict(packed.train.batch(np.arange(packed.train.rows)), position_ids=None)
        c = token_loss_sum(model, crossed, "cpu")
    assert float(a) == pytest.approx(float(b), rel=1e-5)
    assert abs(float(c) - float(b)) > 1e-3 * float(b)


def test_example_weighting_gives_every_example_the_same_weight(tokenizer_dir, tmp_path):
    """Packed, ``example`` weighting = the mean over examples of each example's mean token loss,
    computed here one example at a time; ``token`` weighting = the mean over all label tokens."""
    from instructprotein.model.factory import create_model

    rng = random.Random(5)
    records = []
    for i in range(24):  # answers of 1 to 10 residues: token weighting favours the long ones
        answer = "M" + "".join(rng.choice(AA) for _ in range(rng.randint(0, 9)))
        prompt = f"{rng.choice(WORDS)}: "
        text = f"{prompt}<protein>{answer}</protein>"
        records.append(
            {
                "text": text,
                "answer_start": len(prompt),
                "answer_end": len(text),
                "task": "design",
                "accession": f"P{i}",
                "residues": len(answer),
            }
        )
    write_instructions(tmp_path / "ds", records, records[:4])
    tok = load_tokenizer(tokenizer_dir)
    packed = prepare_instruction_data(tmp_path / "ds", tok, 64, tmp_path / "packed", loss_on="answer", pack=True)
    single = prepare_instruction_data(tmp_path / "ds", tok, 64, tmp_path / "single", loss_on="answer", pack=False)
    assert packed.train.rows < single.train.rows / 2
    rows = np.arange(packed.train.rows)
    weights = packed.train.label_weights(rows, "example")
    assert packed.train.label_total(rows, "example") == pytest.approx(24.0)  # one per example
    assert (weights[~np.asarray(packed.train.loss_mask[rows], dtype=bool)] == 0).all()
    model = create_model(load_preset("tiny", micro()), tok, seed=0).eval()
    with torch.no_grad():
        per_example = []
        for r in range(single.train.rows):
            one = single.train.batch(np.array([r]))
            per_example.append(float(token_loss_sum(model, one, "cpu")) / single.train.label_count(np.array([r])))
        by_example = float(token_loss_sum(model, packed.train.batch(rows, "example"), "cpu")) / 24
        by_token = float(token_loss_sum(model, packed.train.batch(rows, "token"), "cpu")) / packed.train.label_count(
            rows
        )
    assert by_example == pytest.approx(float(np.mean(per_example)), rel=1e-5)
    lengths = [single.train.label_count(np.array([r])) for r in range(single.train.rows)]
    assert by_token == pytest.approx(float(np.average(per_example, weights=lengths)), rel=1e-5)
    assert abs(by_token - by_example) > 1e-4  # the two weightings are not the same objective here


def test_example_weighting_is_refused_for_pretraining(corpus, tmp_path):
    """A text stream has no examples: asking for example weights there is a mistake, said before any work."""
    with pytest.raises(InputError, match="loss_weighting"):
        pretrain(load_preset("tiny", micro(loss_weighting="example")), corpus, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match="loss_weighting"):
        load_preset("tiny", {"finetune.loss_weighting": "sentence"})


def test_pretraining_rows_are_packed_without_padding(corpus, tokenizer_dir, tmp_path):
    tok = load_tokenizer(tokenizer_dir)
    data = prepare_pretrain_data(corpus, tok, 64, tmp_path / "cache", seed=0, val_fraction=0.02)
    s = data.stats
    assert s["documents"]["train"] + s["documents"]["valid"] == 400 and s["documents"]["valid"] == 8
    assert s["rows"]["train"] == -(-s["tokens"]["train"] // 64)  # only the last row is padded
    ids = np.asarray(data.train.input_ids)
    assert (ids[:-1] != tok.pad_token_id).all()
    # documents are bos ... eos, bos is never a label
    assert not np.asarray(data.train.loss_mask)[ids == tok.bos_token_id].any()
    again = prepare_pretrain_data(corpus, tok, 64, tmp_path / "cache", seed=0, val_fraction=0.02)  # the cache
    assert np.array_equal(np.asarray(again.train.input_ids), ids)


# ------------------------------------------------------------------------------------------ processes


SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
from instructprotein.model.presets import load_preset
from instructprotein.train.stages import pretrain
overrides, corpus, run, tok, extra = json.loads(sys.argv[1])
losses = []
def on_step(m):
    losses.append(m["loss"])
    if extra.get("sleep"):
        import time; time.sleep(extra["sleep"])
r = pretrain(load_preset("tiny", overrides), corpus, run, tokenizer=tok, resume=extra.get("resume", False),
             deterministic=True, on_step=on_step)
if r is not None and losses:
    print("RESULT", json.dumps({"losses": losses, "processes": r.processes, "accumulation": r.accumulation_steps,
                                "val": r.final_val_loss}))
"""


def run_script(tmp_path: Path, args: list, launcher: list[str] | None = None, **popen) -> subprocess.Popen:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    return subprocess.Popen(
        [*(launcher or [sys.executable]), str(script), json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.integration
def test_two_processes_give_the_loss_of_one(corpus, tokenizer_dir, tmp_path):
    overrides = micro(batch_tokens=256, micro_batch_tokens=64, max_steps=4, eval_interval=4, checkpoint_interval=4)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = run_script(tmp_path, [overrides, str(corpus), str(tmp_path / "two"), str(tokenizer_dir), {}], launcher)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    (line,) = [x for x in out.splitlines() if x.startswith("RESULT")]  # printed by the main process only
    two = json.loads(line.split(" ", 1)[1])
    assert two["processes"] == 2 and two["accumulation"] == 2
    one = []
    result = pretrain(
        load_preset("tiny", overrides),
        corpus,
        tmp_path / "one",
        tokenizer=tokenizer_dir,
        on_step=lambda m: one.append(m["loss"]),
    )
    assert result.processes == 1 and result.accumulation_steps == 4
    assert len(one) == len(two["losses"]) == 4
    assert one[-1] < one[0]
    np.testing.assert_allclose(two["losses"], one, rtol=1e-5)
    assert two["val"] == pytest.approx(result.final_val_loss, rel=1e-5)


@pytest.mark.integration
def test_sigkill_then_resume_reaches_the_uninterrupted_loss(corpus, tokenizer_dir, tmp_path):
    overrides = micro(max_steps=20, checkpoint_interval=5, eval_interval=5)
    run = tmp_path / "killed"
    proc = run_script(tmp_path, [overrides, str(corpus), str(run), str(tokenizer_dir), {"sleep": 0.2}])
    deadline = time.time() + 120
    while not (run / "checkpoints" / "step-00010").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "no step-10 checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "training.json").exists()  # killed before the end
    steps_done = max(int(p.name.split("-")[1]) for p in (run / "checkpoints").glob("step-*"))
    assert 10 <= steps_done < 20

    with pytest.raises(InputError, match="interrupted run"):  # no silent restart over it
        pretrain(load_preset("tiny", overrides), corpus, run, tokenizer=tokenizer_dir)
    resumed = pretrain(
        load_preset("tiny", overrides), corpus, run, tokenizer=tokenizer_dir, resume=True, deterministic=True
    )
    straight = pretrain(
        load_preset("tiny", overrides), corpus, tmp_path / "straight", tokenizer=tokenizer_dir, deterministic=True
    )
    assert resumed.steps == straight.steps == 20
    a, b = read_log(run), read_log(tmp_path / "straight")
    assert [r["step"] for r in a] == list(range(21))  # the rows the killed run wrote after its checkpoint are gone
    assert a[-1]["train_loss"] == pytest.approx(b[-1]["train_loss"], abs=1e-5)
    assert resumed.final_val_loss == pytest.approx(straight.final_val_loss, abs=1e-5)
    np.testing.assert_allclose([r["train_loss"] for r in a[1:]], [r["train_loss"] for r in b[1:]], atol=1e-5)


# ------------------------------------------------------------------------------------------ bad input


def test_finished_run_is_not_overwritten(pretrained, corpus, tokenizer_dir):
    run, _ = pretrained
    before = digest(run)
    with pytest.raises(InputError, match="finished run.*--resume.*--force"):
        pretrain(load_preset("tiny", micro()), corpus, run, tokenizer=tokenizer_dir)
    assert digest(run) == before


def test_empty_corpus_and_empty_dataset(tmp_path, tokenizer_dir, pretrained):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "shard-00000.jsonl").write_text("\n")
    with pytest.raises(InputError, match="corpus is empty"):
        pretrain(load_preset("tiny", micro()), tmp_path / "corpus", tmp_path / "run", tokenizer=tokenizer_dir)
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "model").exists()

    write_instructions(tmp_path / "instr", [], [])
    run, _ = pretrained
    with pytest.raises(InputError, match="train split is empty"):
        finetune(load_preset("tiny", micro()), tmp_path / "instr", tmp_path / "ft", init=run / "model")
    assert not (tmp_path / "ft").exists()


def test_over_long_examples_cropped_dropped_or_an_error(tmp_path, pretrained):
    run, _ = pretrained
    rng = random.Random(5)
    train = [example(rng, i) for i in range(30)] + [example(rng, 100 + i, (150, 200)) for i in range(3)]
    write_instructions(tmp_path / "instr", train, [example(rng, 500)])
    preset = load_preset("tiny", micro(max_steps=2, warmup_steps=1))
    with pytest.raises(InputError, match=r"3 of 33 train examples \(longest: \d+ tokens.*--long crop"):
        finetune(preset, tmp_path / "instr", tmp_path / "ft", init=run / "model", long="error")
    assert not (tmp_path / "ft" / "checkpoints").exists() and not (tmp_path / "ft" / "model").exists()
    result = finetune(preset, tmp_path / "instr", tmp_path / "ft", init=run / "model", long="drop")
    assert result.data["dropped_long"]["train"] == 3 and result.data["examples"]["train"] == 30
    cropped = finetune(preset, tmp_path / "instr", tmp_path / "ft2", init=run / "model")
    assert cropped.data["cropped"]["train"] == 3 and cropped.data["examples"]["train"] == 33


def test_prompt_residues_cut_prompts_in_tuning_and_travel_with_the_model(tmp_path, pretrained):
    run, _ = pretrained
    rng = random.Random(6)
    train = [example(rng, i, (40, 60)) for i in range(20)]
    write_instructions(tmp_path / "instr", train, [example(rng, 500, (40, 60))])
    tok = load_tokenizer(run / "model")
    data = prepare_instruction_data(
        tmp_path / "instr", tok, 128, tmp_path / "cache", loss_on="answer", pack=False, max_residues=16
    )
    for row in range(3):
        batch = data.train.batch(np.array([row]))
        ids, labels = batch["input_ids"][0], batch["labels"][0]
        text = tok.decode(ids[ids != tok.pad_token_id], skip_special_tokens=False)
        residues = text.split("<protein>")[1].split("</protein>")[0]
        assert len(residues) == 16 and "X" in residues  # both ends kept, one X for the gap
        answer = tok.decode(labels[labels != -100]).replace("</s>", "").strip()
        assert answer.startswith("It has ") and answer.endswith("activity.")
    full = prepare_instruction_data(tmp_path / "instr", tok, 128, tmp_path / "cache2", loss_on="answer", pack=False)
    assert full.stats["label_tokens"] == data.stats["label_tokens"]  # the answers are untouched
    assert data.stats["tokens"]["train"] < full.stats["tokens"]["train"]

    preset = load_preset("tiny", {**micro(max_steps=2, warmup_steps=1), "model.prompt_residues": 16})
    finetune(preset, tmp_path / "instr", tmp_path / "ft", init=run / "model")
    config = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert config["prompt_residues"] == 16  # inference reads it (infer.classify.prompt_residues)
    with pytest.raises(InputError, match="model.prompt_residues"):
        load_preset("tiny", {"model.prompt_residues": 4})


def test_bad_model_tokenizer_and_config(tmp_path, pretrained, instructions, corpus):
    import shutil

    run, _ = pretrained
    preset = load_preset("tiny", micro())
    no_weights = tmp_path / "no_weights"
    shutil.copytree(run / "model", no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(InputError, match="no model weights"):
        finetune(preset, instructions, tmp_path / "ft", init=no_weights)

    # a tokenizer without the protein tokens (a plain byte-level BPE, as GPT-2 or OPT ship)
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        ["some text about proteins"] * 10,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    plain = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    foreign = tmp_path / "foreign"
    shutil.copytree(run / "model", foreign)
    for name in ("tokenizer.json", "tokenizer_config.json", "protein_tokenizer.json"):
        (foreign / name).unlink()
    plain.save_pretrained(str(foreign))
    with pytest.raises(InputError, match="lacks the protein tokens"):
        finetune(preset, instructions, tmp_path / "ft", init=foreign)
    with pytest.raises(InputError, match="lacks the protein tokens"):
        pretrain(preset, corpus, tmp_path / "pre", tokenizer=foreign)

    with pytest.raises(InputError, match="unknown key 'finetune.lrr'"):
        load_preset("tiny", {"finetune.lrr": 1e-3})
    assert not (tmp_path / "ft").exists() and not (tmp_path / "pre").exists()


def test_cli_refuses_a_finished_run(pretrained):
    run, _ = pretrained
    before = digest(run)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "instructprotein.cli",
            "train",
            "pretrain",
            "--out",
            str(run),
            "--corpus",
            str(run),
            "--set",
            "pretrain.max_steps=50",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "--resume" in result.stderr and "Traceback" not in result.stderr
    assert digest(run) == before


def test_time_budget_projects_the_schedule_horizon():
    from instructprotein.train.loop import _horizon

    spec = load_preset("tiny").finetune
    assert _horizon(spec, 5, 600.0, 5.0, 0.0, [0]) is None  # pace not known yet
    assert _horizon(spec, 20, None, 20.0, 0.0, [0]) is None  # no time budget: max_steps rules
    assert _horizon(spec, 20, 100.0, 20.0, 0.0, [0]) == 100  # 1 s a step, 80 s left
    # a resumed run: the pace is measured over this segment only
    assert _horizon(spec, 120, 300.0, 240.0, 200.0, [100]) == 120 + 30


def test_cut_prompts_end_where_inference_cuts_them():
    """A long prompt is cut to context - answer_room whatever its answer, so the position where
    a prompt ends says nothing about the answer (short answers would otherwise end late)."""
    import numpy as np

    from instructprotein.instruct.evidence import answer_room
    from instructprotein.train.instruction_data import _Example, _prompt_over

    def ex(prompt: int, answer: int) -> _Example:
        n = prompt + answer
        return _Example(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool), prompt)

    assert answer_room(256) == 64 and answer_room(512) == 128 and answer_room(4096) == 128
    assert _prompt_over(ex(100, 10), 110, 256) == 0  # fits with room to spare: untouched
    assert _prompt_over(ex(230, 10), 240, 256) == 230 - (256 - 64)  # fits, but cut as inference would
    assert _prompt_over(ex(230, 30), 260, 256) == 230 - (256 - 64)  # the same place for a longer answer
    assert _prompt_over(ex(200, 100), 300, 256) == 200 - (256 - 100)  # an answer longer than the room
