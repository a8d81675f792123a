"""Presets: plain YAML files, every key checked, sizes from the shape (1.3B never instantiated)."""

from __future__ import annotations

import pytest

from instructprotein.errors import InputError
from instructprotein.model.presets import PRESET_NAMES, load_preset, preset_path


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_named_presets_load(name):
    preset = load_preset(name)
    assert preset.name == name
    assert preset_path(name).is_file()  # shipped as package data
    assert preset.model.architecture == "opt"
    assert preset.pretrain.loss_on == "all"
    text = preset.describe()
    assert f"{preset.parameter_count():,}" in text and "pretrain" in text and "finetune" in text
    assert "at 50 GFLOP/s" in preset.describe(flops_per_second=50e9)


def test_parameter_counts_are_in_range():
    assert 2e6 <= load_preset("tiny").parameter_count() <= 5e6
    assert 25e6 <= load_preset("small").parameter_count() <= 50e6
    assert 1.25e9 <= load_preset("paper").parameter_count() <= 1.4e9


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_parameter_count_matches_transformers_opt(name):
    """Arithmetic against the real module, built on the meta device (no 1.3B allocation)."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    p = load_preset(name)
    m = p.model
    config = OPTConfig(
        vocab_size=p.vocab_size,
        hidden_size=m.hidden_size,
        num_hidden_layers=m.num_layers,
        ffn_dim=m.ffn_dim,
        num_attention_heads=m.num_heads,
        max_position_embeddings=m.context_length,
        word_embed_proj_dim=m.hidden_size,
        tie_word_embeddings=m.tie_word_embeddings,
    )
    with torch.device("meta"):
        model = OPTForCausalLM(config)
    distinct = {id(t): t for t in model.parameters()}.values()
    assert sum(t.numel() for t in distinct) == p.parameter_count()


def test_paper_preset_has_the_papers_optimiser():
    p = load_preset("paper")
    m = p.model
    assert (m.hidden_size, m.num_layers, m.num_heads, m.ffn_dim, m.context_length) == (2048, 24, 32, 8192, 1024)
    for stage in (p.pretrain, p.finetune):
        assert stage.betas == (0.9, 0.98)
        assert stage.weight_decay == 0.01
        assert stage.warmup_steps == 5000
        assert stage.lr == 1e-4
        assert stage.decay == "linear"
        assert stage.lr_at(4999) == pytest.approx(1e-4)
        assert stage.lr_at(stage.max_steps) == pytest.approx(0.0)
        assert stage.lr_at(0) == pytest.approx(1e-4 / 5000)


def test_tiny_fits_the_cpu_budget():
    p = load_preset("tiny")
    # the budget is a step count (~2 M + 6.6 M tokens, about 18 minutes on 2 idle cores); the
    # minute caps are a safety net well above it
    assert p.pretrain.max_steps * p.pretrain.batch_tokens + p.finetune.max_steps * p.finetune.batch_tokens <= 9_000_000
    assert p.pretrain.max_minutes >= 10 and p.finetune.max_minutes >= 30
    assert p.model.context_length == 256
    assert p.pretrain.accumulation_steps(1) == p.pretrain.batch_tokens // p.pretrain.micro_batch_tokens
    assert p.pretrain.rows_per_batch(p.model.context_length) * p.model.context_length == p.pretrain.batch_tokens


def test_schedule_shapes():
    p = load_preset("tiny", {"pretrain.decay": "cosine", "pretrain.final_lr_fraction": 0.1})
    s = p.pretrain
    peak = s.lr_at(s.warmup_steps)
    assert peak == pytest.approx(s.lr)
    assert s.lr_at(s.max_steps) == pytest.approx(0.1 * s.lr)
    assert s.lr_at(s.warmup_steps + 10) < peak
    # a time-capped run decays to its floor by the step the budget is projected to end at
    assert s.lr_at(100, horizon=100) == pytest.approx(0.1 * s.lr) and s.lr_at(100) > 0.5 * s.lr
    assert s.lr_at(50, horizon=10**9) == pytest.approx(s.lr_at(50))  # never beyond max_steps
    const = load_preset("tiny", {"pretrain.decay": "constant"}).pretrain
    assert const.lr_at(const.max_steps - 1) == const.lr


def test_overrides_dotted_nested_and_strings():
    p = load_preset(
        "tiny",
        {"pretrain.lr": "3e-4", "finetune": {"betas": "[0.9, 0.95]"}, "model.init_from": "null", "seed": "7"},
    )
    assert p.pretrain.lr == 3e-4 and p.finetune.betas == (0.9, 0.95)
    assert p.model.init_from is None and p.seed == 7
    assert p.source.endswith("tiny.yaml")


def test_accumulation_must_divide():
    s = load_preset("small").pretrain
    assert s.accumulation_steps(2) == s.batch_tokens // (2 * s.micro_batch_tokens)
    with pytest.raises(InputError, match="not a multiple"):
        s.accumulation_steps(3)


# ---------------------------------------------------------------- files


def test_to_yaml_round_trips(tmp_path):
    p = load_preset("small", {"pretrain.lr": 1e-3})
    path = tmp_path / "mine.yaml"
    path.write_text(p.to_yaml())
    again = load_preset(path)
    assert again == p  # source is not compared


def test_base_inherits_and_overrides(tmp_path):
    path = tmp_path / "quick.yaml"
    path.write_text("base: tiny\nname: quick\npretrain:\n  max_steps: 10\n  warmup_steps: 2\n")
    p = load_preset(path)
    tiny = load_preset("tiny")
    assert p.name == "quick" and p.pretrain.max_steps == 10
    assert p.model == tiny.model and p.finetune == tiny.finetune


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("base: tiny\npretrain:\n  weight_decy: 0.1\n")
    with pytest.raises(InputError) as err:
        load_preset(path)
    assert str(path) in str(err.value) and "pretrain.weight_decy" in str(err.value)
    path.write_text("base: tiny\noptimiser: adam\n")
    with pytest.raises(InputError, match="optimiser"):
        load_preset(path)


def test_unknown_override_key():
    with pytest.raises(InputError, match=r"overrides: unknown key 'pretrain\.lrr'"):
        load_preset("tiny", {"pretrain.lrr": 1.0})
    with pytest.raises(InputError, match="unknown key 'foo'"):
        load_preset("tiny", {"foo": 1})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"pretrain.lr": "fast"}, "'pretrain.lr' must be a number"),
        ({"model.num_layers": 2.5}, "'model.num_layers' must be an integer"),
        ({"pretrain.decay": "step"}, "must be one of linear, cosine, constant"),
        ({"pretrain.betas": [0.9]}, "list of 2 numbers"),
        ({"model.num_heads": 5}, "not divisible"),
        ({"pretrain.micro_batch_tokens": 1000}, "not a multiple of model.context_length"),
        ({"pretrain.warmup_steps": 10_000}, "warmup_steps"),
        ({"model.tie_word_embeddings": "maybe"}, "true or false"),
    ],
)
def test_bad_values(overrides, message):
    with pytest.raises(InputError, match=message) as err:
        load_preset("tiny", overrides)
    assert str(err.value).startswith("overrides: ")


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_preset(tmp_path / "absent.yaml")
    with pytest.raises(InputError, match="unknown preset 'huge'"):
        load_preset("huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_preset(bad)
    partial = tmp_path / "partial.yaml"
    partial.write_text("name: partial\n")
    with pytest.raises(InputError, match="missing section"):
        load_preset(partial)
