"""Model folders: create from a preset, save atomically, load back bit-identical; open the
paper's layout (a random tiny OPT with the OPT tokenizer + 22 tokens); start from a foreign
causal LM; refuse folders without weights, config or protein tokens."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from instructprotein.errors import InputError
from instructprotein.instruct.render import protein_text, render_paper
from instructprotein.model.factory import (
    count_parameters,
    create_model,
    load_model,
    load_model_and_tokenizer,
    measure_matmul_flops,
    resize_for_tokenizer,
    save_model,
    start_from,
)
from instructprotein.model.presets import load_preset
from instructprotein.model.tokenizer import PAPER_PROTEIN_TOKENS, load_tokenizer, train_tokenizer


def go_texts(go_sqlite: Path, limit: int = 1000) -> list[str]:
    con = sqlite3.connect(f"file:{go_sqlite}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT term, definition FROM go_term WHERE definition IS NOT NULL ORDER BY go_id LIMIT ?", (limit,)
        ).fetchall()
    finally:
        con.close()
    return [f"{t[0].upper()}{t[1:]}: {d}" for t, d in rows]


def gpt2_style_folder(texts: list[str], folder: Path, added: tuple[str, ...]) -> Path:
    """facebook/opt-* tokenizer files (vocab.json, merges.txt, added_tokens.json), BPE trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    folder.mkdir(parents=True)
    bpe.model.save(str(folder))
    size = bpe.get_vocab_size()
    (folder / "added_tokens.json").write_text(
        json.dumps({t: size + i for i, t in enumerate(added)}, ensure_ascii=False), encoding="utf-8"
    )
    specials = {"bos_token": "</s>", "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False, **specials}), encoding="utf-8"
    )
    return folder


def random_opt(vocab_size: int, folder: Path, positions: int = 64, seed: int = 0) -> Path:
    """A randomly initialised tiny OPTForCausalLM saved with save_pretrained, as a checkpoint would be."""
    from transformers import OPTConfig, OPTForCausalLM

    config = OPTConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        ffn_dim=64,
        num_attention_heads=2,
        max_position_embeddings=positions,
        word_embed_proj_dim=32,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    OPTForCausalLM(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def texts(resource) -> list[str]:
    return go_texts(resource("go-sqlite"))


@pytest.fixture(scope="module")
def tok(texts):
    return train_tokenizer(texts, 800)


@pytest.fixture(scope="module")
def tiny():
    return load_preset("tiny")


@pytest.fixture(scope="module")
def micro():
    """The tiny preset shrunk further, so model tests take milliseconds."""
    return load_preset(
        "tiny",
        {
            "model.hidden_size": 32,
            "model.num_layers": 2,
            "model.num_heads": 2,
            "model.ffn_dim": 64,
            "model.context_length": 64,
            "pretrain.micro_batch_tokens": 64,
            "pretrain.batch_tokens": 128,
            "pretrain.eval_tokens": 64,
            "finetune.micro_batch_tokens": 64,
            "finetune.batch_tokens": 128,
            "finetune.eval_tokens": 64,
        },
    )


def logits(model, tok, text: str) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([tok.encode(text)])).logits


TEXT = render_paper("MKTAYIAKQR", "What does this protein do?", "It binds zinc.")[0]


# ---------------------------------------------------------------- create, save, load


def test_tiny_model_has_the_presets_size(tiny, tok):
    model = create_model(tiny, tok)
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert count_parameters(model) == tiny.parameter_count(len(tok))
    assert 1.5e6 <= count_parameters(model) <= 5e6
    assert model.config.eos_token_id == tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id
    assert model.config.max_position_embeddings == tiny.model.context_length


def test_creation_is_seeded_and_leaves_global_rng_alone(micro, tok):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = create_model(micro, tok)
    assert torch.rand(1) == before  # the caller's random stream is untouched
    b = create_model(micro, tok)
    c = create_model(micro, tok, seed=1)
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_save_load_round_trip_identical_logits(micro, tok, tmp_path):
    model = create_model(micro, tok)
    out = save_model(model, tok, tmp_path / "model", extra_files={"preset.yaml": micro.to_yaml()})
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    assert (out / "tokenizer.json").exists() and (out / "preset.yaml").read_text() == micro.to_yaml()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    loaded, loaded_tok = load_model_and_tokenizer(out)
    assert loaded_tok.encode(TEXT) == tok.encode(TEXT)
    assert torch.equal(logits(model, tok, TEXT), logits(loaded, loaded_tok, TEXT))
    assert load_preset(out / "preset.yaml") == micro


def test_failed_save_keeps_the_old_folder(micro, tok, tmp_path, monkeypatch):
    model = create_model(micro, tok)
    target = save_model(model, tok, tmp_path / "model", extra_files={"note.txt": "first"})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tok, target, extra_files={"note.txt": "second"})
    assert (target / "note.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_generate_stops_and_decodes(micro, tok):
    model = create_model(micro, tok)
    prompt = torch.tensor([tok.encode("Design a protein.\n\nOutput: <protein>M")])
    out = model.generate(prompt, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    text = tok.decode(out[0])
    assert text.startswith("Design a protein.\n\nOutput: <protein>M")


# ---------------------------------------------------------------- the paper's layout


def test_paper_layout_checkpoint_loads(texts, tmp_path):
    folder = gpt2_style_folder(texts[:300], tmp_path / "instructprotein", PAPER_PROTEIN_TOKENS)
    paper_tok = load_tokenizer(folder)
    random_opt(len(paper_tok), folder)
    model, tok = load_model_and_tokenizer(folder)
    assert tok.layout == "paper"
    assert type(model).__name__ == "OPTForCausalLM"
    ids = tok.encode(protein_text("MKTAYIAKQR") + "Instruction: Is it an enzyme?\n\nOutput: Yes")
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]))
    assert out.logits.shape == (1, len(ids), len(tok))
    # re-saving through our code keeps the layout and the weights
    again = save_model(model, tok, tmp_path / "resaved")
    model2, tok2 = load_model_and_tokenizer(again)
    assert tok2.layout == "paper"
    assert torch.equal(logits(model, tok, TEXT), logits(model2, tok2, TEXT))


def test_start_from_a_causal_lm_without_protein_tokens(texts, tmp_path):
    folder = gpt2_style_folder(texts[:300], tmp_path / "gpt2", added=())
    base_tok = load_tokenizer(folder, add_missing=True)
    base_size = len(base_tok) - 23
    random_opt(base_size, folder)
    with pytest.raises(InputError) as err:
        load_model_and_tokenizer(folder)
    assert str(folder) in str(err.value) and "<protein>" in str(err.value)
    model, tok = start_from(folder, context_length=64)
    assert tok.layout == "adapted" and len(tok) == base_size + 23
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    assert not resize_for_tokenizer(model, tok)  # already large enough: nothing to do
    with pytest.raises(InputError, match="exceeds the model's 64 positions"):
        start_from(folder, context_length=512)


# ---------------------------------------------------------------- bad folders


def test_folder_without_weights(micro, tok, tmp_path):
    folder = save_model(create_model(micro, tok), tok, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="no model weights") as err:
        load_model(folder)
    assert str(folder) in str(err.value)


def test_folder_without_config(micro, tok, tmp_path):
    folder = save_model(create_model(micro, tok), tok, tmp_path / "m")
    (folder / "config.json").unlink()
    with pytest.raises(InputError, match="no config.json"):
        load_model(folder)
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "absent")


def test_missing_shard_and_broken_weights(micro, tok, tmp_path):
    folder = save_model(create_model(micro, tok), tok, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match="weight shards missing"):
        load_model(folder)
    (folder / "model.safetensors.index.json").unlink()
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="cannot load the model"):
        load_model(folder)


def test_tokenizer_larger_than_embedding(micro, tok, texts, tmp_path):
    folder = save_model(create_model(micro, tok), tok, tmp_path / "m")
    bigger = train_tokenizer(texts, 900)
    bigger.save_pretrained(folder)
    with pytest.raises(InputError, match="do not belong together"):
        load_model_and_tokenizer(folder)


def test_measure_matmul_flops():
    assert measure_matmul_flops(128, seconds=0.05) > 1e6
