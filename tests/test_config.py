"""Config files (presets, evaluation tasks, the main job's recipe) share one checker, pydantic:
unknown keys refused, errors naming the file and the key."""

from __future__ import annotations

import pytest
import yaml

from instructprotein.cli.recipe import load_recipe, recipe_path
from instructprotein.errors import InputError
from instructprotein.evaluate.tasks import builtin_tasks, load_task, parse_task
from instructprotein.model.presets import load_preset

TASK = {
    "name": "toy",
    "data": {"test": "toy.jsonl"},
    "prompt": {"question": "Does the protein associate with metal ion binding?", "prefix": "The answer is"},
    "candidates": [" no", " yes"],
}


# -- presets


def test_preset_error_names_the_file_that_set_the_key(tmp_path):
    """A bad value inherited through ``base:`` is reported against the file that wrote it."""
    base = tmp_path / "base.yaml"
    base.write_text("base: tiny\npretrain:\n  lr: fast\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\nname: child\n")
    with pytest.raises(InputError) as err:
        load_preset(child)
    assert str(err.value).startswith(f"{base}: 'pretrain.lr' must be a number")


def test_preset_refuses_booleans_for_numbers_and_numbers_for_booleans():
    with pytest.raises(InputError, match="'model.num_layers' must be an integer, got True"):
        load_preset("tiny", {"model.num_layers": True})
    with pytest.raises(InputError, match="'model.tie_word_embeddings' must be true or false"):
        load_preset("tiny", {"model.tie_word_embeddings": 1})
    assert load_preset("tiny", {"model.init_from": "null", "pretrain.betas": "[0.9, 0.95]"}).pretrain.betas == (
        0.9,
        0.95,
    )


def test_preset_section_lacking_keys(tmp_path):
    path = tmp_path / "p.yaml"
    tiny = yaml.safe_load(load_preset("tiny").to_yaml())
    del tiny["model"]["hidden_size"], tiny["model"]["ffn_dim"]
    path.write_text(yaml.safe_dump(tiny))
    with pytest.raises(InputError, match="section 'model' lacks hidden_size, ffn_dim"):
        load_preset(path)


# -- tasks


def test_task_include_merges_mappings_and_replaces_the_rest(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({**TASK, "version": 3, "metrics": ["accuracy"]}))
    (tmp_path / "variant.yaml").write_text(
        'include: base.yaml\nname: variant\nprompt: {prefix: "Based on the record, the answer is"}\n'
    )
    spec = load_task(tmp_path / "variant.yaml")
    assert spec.name == "variant" and spec.version == 3
    assert spec.question == TASK["prompt"]["question"]  # kept from the base: mappings merge key by key
    assert spec.prefix == "Based on the record, the answer is"
    assert spec.to_dict()["version"] == 3 and "include" not in spec.to_dict()["definition"]


def test_task_include_errors_name_the_file(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("include: loop.yaml\nname: x\n")
    with pytest.raises(InputError, match="refers back to itself") as err:
        load_task(loop)
    assert str(loop) in str(err.value)
    missing = tmp_path / "m.yaml"
    missing.write_text("include: absent.yaml\nname: x\n")
    with pytest.raises(InputError, match="no such task file absent.yaml"):
        load_task(missing)


def test_heldout_go_tasks_share_one_base():
    tasks = builtin_tasks()
    assert "_heldout_go" not in tasks  # a base to include, not a task
    specs = [load_task(f"heldout_go_{a}") for a in ("mf", "bp", "cc")]
    assert [s.test.aspect for s in specs] == ["F", "P", "C"]
    assert {s.question for s in specs} == {"Does the protein associate with {term}?"}
    assert all(s.format == "go_pairs" and s.homology and s.homology.rule == "item_term" for s in specs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"baselines": {"homology": {"rule": "location", "kk": 3}}}, "unknown key(s) in baselines.homology: kk"),
        ({"data": {"test": {"heldout": "go", "aspekt": "F"}}}, "unknown key(s) in data.test: aspekt"),
        ({"data": {"test": "t.jsonl", "colour": 1}}, "unknown key(s) in data: colour"),
        ({"max_new_tokens": "many"}, "max_new_tokens: input should be a valid integer"),
        ({"cut": {"above": "long"}}, "cut.above: input should be a valid integer"),
        ({"version": "one"}, "version: input should be a valid integer"),
    ],
)
def test_task_shape_errors_name_file_and_key(tmp_path, changes, message):
    path = tmp_path / "t.yaml"
    with pytest.raises(InputError) as err:
        parse_task({**TASK, **changes}, path)
    assert message in str(err.value) and str(path) in str(err.value)


# -- the main job's recipe


def test_main_recipe_is_packaged_and_checked(tmp_path):
    recipe = load_recipe()
    assert recipe.instructions.n == 20_000 and recipe.instructions.evidence_fraction == 1.0
    assert recipe.instructions.task_weights == ("location=6",) and recipe.corpus.proteins["tiny"] == 20_000
    bad = tmp_path / "main.yaml"
    bad.write_text(recipe_path().read_text().replace("evidence_top_k:", "evidence_topk:"))
    with pytest.raises(InputError) as err:
        load_recipe(bad)
    assert str(bad) in str(err.value) and "instructions.evidence_topk" in str(err.value)
