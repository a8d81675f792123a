"""Evaluation runs: the held-out sets, the runner end to end (user task files, retrieval,
describe and design tasks), the ``evaluate`` command and CLI.

The model is the random tiny one of ``helpers_model`` (no training: the tests check that the
evaluation computes the right numbers from whatever weights it gets). Homology transfer runs
MMseqs2 against the helpers' graph, whose P20007 is P20001 with 20 % of residues substituted.
The statistics, task files and baselines are in ``test_evaluate.py``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

import helpers_model as h
from helpers_tasks import task_dict
from instructprotein.errors import InputError
from instructprotein.evaluate import generation as g
from instructprotein.evaluate.tasks import load_task, parse_task

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


# -- held-out split -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def instructions_dir(tmp_path_factory):
    """A hand-made instruction folder over the helpers' graph: 5 train, 3 test proteins."""
    return h.instructions_folder(
        tmp_path_factory.mktemp("instr"), {"P20001": "test", "P20002": "test", "P20006": "test"}
    )


def test_heldout_items(instructions_dir, tmp_path):
    from instructprotein.evaluate.heldout import HeldOut
    from instructprotein.evaluate.tasks import Source

    ho = HeldOut(instructions_dir, out_dir=tmp_path)
    loc = ho.items(Source(heldout="location"))
    assert {(i.accession, i.label) for i in loc} == {
        ("P20001", "nucleus"),
        ("P20002", "mitochondrion"),
        ("P20006", "nucleus"),
    }
    metal = ho.items(Source(heldout="metal"))
    assert {(i.accession, i.label) for i in metal} == {("P20001", "yes"), ("P20002", "yes"), ("P20006", "no")}
    go = ho.items(Source(heldout="go", aspect="F"), seed=3)
    assert go and all(i.term and i.term_name for i in go)
    pos = [i for i in go if i.label == "yes"]
    assert {i.term for i in pos if i.accession == "P20001"} == {"GO:0008270"}
    assert ho.items(Source(heldout="go", aspect="F"), seed=3) == go  # seeded, stable
    assert (tmp_path / "heldout" / "location_test.jsonl").is_file()
    assert ho.not_train() == frozenset({"P20001", "P20002", "P20006"})


# -- the runner ---------------------------------------------------------------------------------------------------


def _toy_task_files(folder: Path) -> Path:
    """A user's yes/no task in JSON lines + a train TSV, with a YAML that uses every baseline."""
    test = [
        {"id": "a", "sequence": h.mutant(h.SEQUENCES["P20001"], 0.9, seed=5), "binds": "yes"},
        {"id": "b", "sequence": h.mutant(h.SEQUENCES["P20006"], 0.9, seed=6), "binds": "no"},
        {"id": "c", "sequence": h.mutant(h.SEQUENCES["P20008"], 0.9, seed=7), "binds": "no"},
        {"id": "d", "sequence": h.random_protein(150, seed=4321), "binds": "yes"},
    ]
    (folder / "toy_test.jsonl").write_text("\n".join(json.dumps(r) for r in test) + "\n")
    train = [(h.random_protein(100, seed=900 + i), "yes" if i % 3 else "no") for i in range(12)]
    (folder / "toy_train.tsv").write_text("".join(f"{s}\t{lab}\n" for s, lab in train))
    (folder / "toy.yaml").write_text(
        "name: toy_metal\n"
        "description: metal binding on my own proteins\n"
        "data:\n  test: toy_test.jsonl\n  train: toy_train.tsv\n  label_field: binds\n"
        "prompt:\n  question: Does the protein associate with metal ion binding?\n"
        "  prefix: Based on the record, the answer is\n"
        'candidates: [" no", " yes"]\n'
        'positive: "yes"\n'
        "metrics: [accuracy, aupr]\n"
        "baselines:\n  homology: {rule: carries_term, term: 'GO:0046872', k: 3}\n"
        "paper: {accuracy: 50}\n"
    )
    return folder / "toy.yaml"


def test_user_task_runs_end_to_end(tmp_path):
    from instructprotein.evaluate.runner import evaluate

    task = _toy_task_files(tmp_path)
    out = tmp_path / "eval"
    r = evaluate(h.model_path(), [task], out_dir=out, kg=h.kg_path(), max_identity=0.95, seed=1)
    t = r["tasks"]["toy_metal"]
    assert t["n"] == 4
    for rule in ("first_token", "sum"):
        m = t["model"][rule]
        assert m["n"] == 4 and 0 <= m["accuracy"] <= 1 and m["ci95"][0] <= m["accuracy"] <= m["ci95"][1]
        assert "aupr" in m and "calibration" in m
    b = t["baselines"]
    assert b["majority"]["class"] == "yes" and b["majority"]["source"] == "train"  # 8 of 12 train items
    assert b["majority"]["accuracy"] == 0.5
    # homology: a -> P20001 (zinc: yes), b -> P20006 (kinase: no), c -> P20008 (DNA binding: no), d -> no hit
    assert b["homology_best"]["covered"] == 3 and b["homology_best"]["coverage"] == 0.75
    assert b["homology_best"]["accuracy"] == 1.0  # d falls back to the majority class, yes
    assert "composition" in b and t["paper"] == {"accuracy": 50.0}
    # results.json: the exact task definition, model, seed, versions
    saved = json.loads((out / "results.json").read_text())
    assert saved["tasks"]["toy_metal"]["task"]["definition"]["data"]["label_field"] == "binds"
    assert saved["tasks"]["toy_metal"]["task"]["file"] == str(task)
    assert saved["tasks"]["toy_metal"]["data"]["test"]["sha256"]
    assert saved["seed"] == 1 and saved["model"]["config_sha256"] and saved["versions"]["torch"]
    assert saved["homology"]["max_identity"] == 0.95
    # report and plots
    report = (out / "report.md").read_text()
    assert "toy_metal" in report and "95 %" in report and "0.95 identity" in report
    for kind in ("confusion", "per_class", "calibration"):
        assert (out / "plots" / f"toy_metal_{kind}.png").stat().st_size > 1000
    assert (out / "plots" / "overview.png").is_file()
    preds = [json.loads(x) for x in (out / "predictions" / "toy_metal.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["toy_test:1", "toy_test:2", "toy_test:3", "toy_test:4"]
    assert preds[0]["homology_best"] == "yes"


def test_retrieval_puts_the_declared_evidence_in_the_prompt(tmp_path):
    from instructprotein.evaluate.runner import evaluate

    task = _toy_task_files(tmp_path)
    task.write_text(task.read_text() + "evidence: {term: 'GO:0046872'}\n")
    r = evaluate(h.model_path(), [task], out_dir=tmp_path / "eval", kg=h.kg_path(), max_identity=0.95, retrieval=True)
    assert r["retrieval"] is True and r["tasks"]["toy_metal"]["task"]["resolved"]["evidence"] == "term (GO:0046872)"
    preds = [json.loads(x) for x in (tmp_path / "eval" / "predictions" / "toy_metal.jsonl").read_text().splitlines()]
    ev = [p["evidence"] for p in preds]
    # a -> P20001 (zinc ion binding: a metal ion binding), b -> P20006 (a kinase, no metal), d -> nothing
    assert ev[0].startswith("Homologs with metal ion binding? 9") and ev[0].endswith("identical: yes.")
    assert ev[1].startswith("Homologs with metal ion binding? ") and ev[1].endswith("identical: no.")
    assert ev[3] == "Homologs: none found."


def test_labels_not_among_candidates_fail_before_the_model(tmp_path):
    from instructprotein.evaluate.runner import evaluate

    task = _toy_task_files(tmp_path)
    rows = (tmp_path / "toy_test.jsonl").read_text().splitlines()
    rows[2] = rows[2].replace('"binds": "no"', '"binds": "maybe"')
    (tmp_path / "toy_test.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError) as err:  # the model path does not exist: the data error must come first
        evaluate(tmp_path / "no-model", [task], out_dir=tmp_path / "o", kg=h.kg_path())
    assert "'maybe'" in str(err.value) and "toy_test.jsonl:3" in str(err.value)


def test_model_without_protein_tokens(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from instructprotein.evaluate.runner import evaluate

    folder = tmp_path / "plain-model"
    shutil.copytree(h.model_path(), folder)
    for f in ("tokenizer.json", "tokenizer_config.json", "protein_tokenizer.json", "special_tokens_map.json"):
        (folder / f).unlink(missing_ok=True)
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel()
    raw.train_from_iterator(
        ["Does the protein bind metal?"] * 5,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"]),
    )
    PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    ).save_pretrained(folder)
    task = _toy_task_files(tmp_path)
    with pytest.raises(InputError, match="protein tokens"):
        evaluate(folder, [task], out_dir=tmp_path / "o", kg=h.kg_path(), homology=False)


def test_heldout_task_through_the_runner(instructions_dir, tmp_path):
    from instructprotein.evaluate.runner import evaluate

    r = evaluate(
        h.model_path(),
        ["heldout_metal", "heldout_go_mf"],
        out_dir=tmp_path,
        instructions_dir=instructions_dir,
        plots=False,
    )
    metal = r["tasks"]["heldout_metal"]
    assert metal["n"] == 3 and metal["data"]["train"]["n"] == 5
    assert metal["baselines"]["majority"]["source"] == "train"
    assert r["homology"]["heldout_graph"]["excluded_not_in_train_split"] == 3
    go = r["tasks"]["heldout_go_mf"]
    assert "term_frequency" in go["baselines"] and go["baselines"]["term_frequency"]["excluded_proteins"] == 3
    assert go["prompts_scored"] + go["prompts_reused"] == go["n"]  # a "metal ion binding" item reuses heldout_metal
    assert (tmp_path / "report.md").is_file()


def test_evaluate_command_prints_table(tmp_path):
    from rich.console import Console

    from instructprotein.evaluate.commands import (
        evaluate_command,
        expand_tasks,
        list_tasks_command,
    )

    console = Console(record=True, width=200)
    task = _toy_task_files(tmp_path)
    evaluate_command(
        h.model_path(),
        [str(task)],
        None,
        h.kg_path(),
        None,
        tmp_path / "o",
        homology=False,
        plots=False,
        console=console,
        show_progress=False,
    )
    text = console.export_text()
    assert "toy_metal" in text and "first token (paper)" in text and "full option" in text and "report:" in text
    rows = list_tasks_command(console)
    assert ("deeploc10" in [n for n, _ in rows]) and "deeploc10" in expand_tasks(["all"])
    assert all(n.startswith("heldout_") for n in expand_tasks(["heldout"]))


def test_evaluate_cli(tmp_path):
    import subprocess
    import sys

    def cli(*args):
        import os

        return subprocess.run(
            [sys.executable, "-m", "instructprotein.cli", "evaluate", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200"},
        )

    task = _toy_task_files(tmp_path)
    r = cli(
        "--model",
        str(h.model_path()),
        "--task",
        str(task),
        "--kg",
        str(h.kg_path()),
        "--out",
        str(tmp_path / "o"),
        "--no-homology",
        "--no-plots",
    )
    assert r.returncode == 0, r.stderr
    assert "toy_metal" in r.stdout and "report:" in r.stdout
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["retrieval"] is True  # on by default with a knowledge graph
    assert "evidence" in (tmp_path / "o" / "predictions" / "toy_metal.jsonl").read_text()
    bad = cli("--model", str(tmp_path / "nope"), "--task", "deeploc10")
    assert bad.returncode == 1 and "model folder not found" in bad.stderr and "Traceback" not in bad.stderr
    unknown = cli("--model", str(h.model_path()), "--task", "deeploc11", "--no-homology")
    assert unknown.returncode == 1 and "unknown task 'deeploc11'" in unknown.stderr


# -- generation metrics -----------------------------------------------------------------------------------------------


def test_bleu_and_rouge():
    ref = "the protein binds zinc ion in the nucleus ."
    assert g.sentence_bleu(ref, ref) == pytest.approx(1.0)
    assert g.bleu(["zinc"], ["the protein binds zinc ion"], smooth=False) == 0.0
    # hand: hyp "the protein binds zinc" vs ref "the protein binds zinc ion" (smoothing off):
    # precisions 4/4, 3/3, 2/2, 1/1; brevity penalty exp(1 - 5/4)
    assert g.bleu(["the protein binds zinc"], ["the protein binds zinc ion"], smooth=False) == pytest.approx(
        math.exp(-0.25)
    )
    assert 0 < g.sentence_bleu("a protein that binds zinc", ref) < 1
    # ROUGE-L: LCS("a b c d", "a c d e") = 3 -> P = R = 3/4
    assert g.rouge_l_pair("a b c d", "a c d e")["f1"] == pytest.approx(0.75)
    assert g.rouge_l([ref, "x"], [ref, "y"]) == pytest.approx(0.5)


def test_go_fmax():
    truth = {"p1": {"A", "B"}, "p2": {"C"}}
    pred = {"p1": {"A": 0.9, "B": 0.4, "X": 0.8}, "p2": {"C": 0.7}}
    r = g.go_fmax(pred, truth)
    # t in (0.7, 0.8]: p1 {A, X} P=1/2 R=1/2, p2 {} -> P over p1 only = 0.5, R = (0.5 + 0) / 2 = 0.25
    # t in (0.4, 0.7]: p1 {A, X}, p2 {C}: P = (0.5 + 1) / 2 = 0.75, R = (0.5 + 1) / 2 = 0.75 -> F 0.75
    # t <= 0.4: p1 {A, B, X} P 2/3 R 1, p2 P 1 R 1: P = 5/6, R = 1 -> F 0.909
    assert r["f_max"] == pytest.approx(2 * (5 / 6) / (5 / 6 + 1))
    assert r["threshold"] <= 0.4
    assert g.set_precision_recall({"A", "X"}, {"A", "B"}) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_design_helpers():
    good = h.random_protein(120, seed=3)
    assert g.validity(good)["valid"]
    assert not g.validity("MKX" + good)["standard_residues"]
    assert not g.validity("A" * 80)["valid"] and not g.validity("MK")["length_in_range"]
    d = g.diversity([good, good, h.random_protein(120, seed=4)])
    assert d["max_identity"] == pytest.approx(1.0) and 0 < d["diversity"] < 1
    assert g.pairwise_identity(good, h.mutant(good, 0.8, seed=2)) == pytest.approx(0.8, abs=0.02)
    nov = g.novelty([0.9, 0.5, None])
    assert nov["novelty"] == pytest.approx((0.1 + 0.5 + 1.0) / 3) and nov["novel_fraction"] == pytest.approx(2 / 3)
    terms = {"P1": {"GO:1", "GO:2"}, "P2": {"GO:1"}}
    c = g.annotation_consistency(["P1", "P2", None], [{"GO:2"}, {"GO:2"}, {"GO:1"}], lambda a: terms[a])
    assert c["consistent_fraction"] == pytest.approx(1 / 3)
    c = g.describe_consistency([{"GO:1", "GO:2"}, {"GO:3"}], [{"GO:1", "GO:2", "GO:9"}, set()])
    assert c["consistent_fraction"] == 0.5 and c["mean_recall"] == 0.5


def test_describe_task_from_a_user_file(tmp_path):
    from instructprotein.evaluate.runner import evaluate

    rows = [
        {
            "sequence": h.mutant(h.SEQUENCES["P20001"], 0.9, seed=8),
            "reference": "It binds zinc ion.",
            "go": ["GO:0008270", "GO:0046914", "GO:0046872"],
        },
        {
            "sequence": h.mutant(h.SEQUENCES["P20006"], 0.9, seed=9),
            "reference": "It has protein kinase activity.",
            "go": ["GO:0004672", "GO:0016301", "GO:0003824"],
        },
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "d.yaml").write_text(
        "name: my_describe\nkind: describe\ndata: {test: d.jsonl, terms_field: go}\n"
        "prompt: {question: 'What is the function of this protein?'}\nmax_new_tokens: 6\n"
        "baselines: {homology: {rule: go_terms, k: 3}}\n"
    )
    r = evaluate(
        h.model_path(), [tmp_path / "d.yaml"], out_dir=tmp_path / "o", kg=h.kg_path(), max_identity=0.95, plots=False
    )
    t = r["tasks"]["my_describe"]
    assert t["n"] == 2 and 0 <= t["generated"]["bleu"] <= 1 and 0 <= t["generated"]["rouge_l"] <= 1
    assert "precision" in t["generated"]["go"]
    # the homologs P20001 (zinc ion binding) and P20006 (protein kinase activity) give back every true term
    assert t["baselines"]["homology_best"]["recall"] == 1.0 and t["baselines"]["homology_best"]["coverage"] == 1.0
    assert "naive" in t["baselines"]
    assert "my_describe" in (tmp_path / "o" / "report.md").read_text()
    with pytest.raises(InputError, match="candidates"):
        parse_task(
            {
                "name": "x",
                "kind": "describe",
                "data": {"test": "d.jsonl"},
                "prompt": {"question": "Q?"},
                "candidates": [" a", " b"],
            }
        )


def test_go_pairs_names_from_graph_then_go_sqlite(tmp_path):
    from instructprotein.evaluate.data import go_sqlite_names, load_task_data
    from instructprotein.kg.store import KnowledgeGraph

    rows = [{"sequence": h.SEQUENCES["P20001"][:50], "label": ["GO:0008270"], "negative_labels": ["GO:0140096"]}]
    (tmp_path / "go.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = parse_task(
        {
            **task_dict(),
            "data": {"test": str(tmp_path / "go.jsonl"), "format": "go_pairs"},
            "prompt": {"question": "Does the protein associate with {term}?"},
        }
    )
    with KnowledgeGraph(h.kg_path()) as kg:
        td = load_task_data(spec, kg=kg)
    names = {i.term: i.term_name for i in td.items}
    assert names["GO:0008270"] == "zinc ion binding"
    assert [i.label for i in td.items] == (["yes", "no"] if len(td.items) == 2 else ["yes"])
    if go_sqlite_names():  # the data cache has GO.sqlite (GO 2022): a term newer than the graph is named from it
        assert names["GO:0140096"] == "catalytic activity, acting on a protein"
    else:
        assert "GO:0140096" not in names
    kg_only = parse_task(
        {
            **task_dict(),
            "data": {"test": str(tmp_path / "go.jsonl"), "format": "go_pairs", "term_names": "kg"},
            "prompt": {"question": "Does the protein associate with {term}?"},
        }
    )
    with KnowledgeGraph(h.kg_path()) as kg:
        assert [i.term for i in load_task_data(kg_only, kg=kg).items] == ["GO:0008270"]


# -- design tasks -------------------------------------------------------------------------------------------


def test_design_task_from_a_user_file(tmp_path):
    from instructprotein.evaluate.runner import evaluate

    natural = h.mutant(h.SEQUENCES["P20001"], 0.9, seed=8)  # its closest graph protein is P20001 (zinc ion binding)
    rows = [
        {"request": "binds zinc ion", "terms": ["GO:0008270"], "sequence": natural},
        {"request": "Design a protein with protein kinase activity.", "terms": ["GO:0004672"]},
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "d.yaml").write_text(
        "name: my_design\nkind: design\ndata: {test: d.jsonl}\n"
        "sampling: {per_request: 3, min_len: 20, max_len: 40, seed: 5}\nmax_new_tokens: 4\n"
    )
    r = evaluate(h.model_path(), [tmp_path / "d.yaml"], out_dir=tmp_path / "o", kg=h.kg_path(), plots=False)
    t = r["tasks"]["my_design"]
    assert t["n"] == 2 and t["designs"] == 6 and t["requests_skipped"] == 0
    model, shuffled, nat = (t["design"][g] for g in ("model", "shuffled", "natural"))
    assert model["sequences"] == shuffled["sequences"] == 6 and nat["sequences"] == 1
    assert model["mean_length"] == shuffled["mean_length"] and 20 <= model["mean_length"] <= 40
    assert model["validity"]["n"] == 6 and 0 <= model["validity"]["rate"] <= 1
    assert model["diversity_within_request"]["requests"] == 2
    # the natural protein's closest training protein is P20001 at ~0.9 identity, and carries the request
    assert nat["identity_of_closest"][0] == pytest.approx(0.9, abs=0.05)
    assert nat["consistency"]["consistent_fraction"] == 1.0 and nat["consistency"]["ci95"][1] == 1.0
    assert "describe" in model and model["describe"]["designs"] == 6
    lines = (tmp_path / "o" / "predictions" / "my_design.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["request"] == "Design a protein that binds zinc ion."
    same = evaluate(h.model_path(), [tmp_path / "d.yaml"], out_dir=tmp_path / "o2", kg=h.kg_path(), plots=False)
    assert [json.loads(x)["sequence"] for x in lines] == [
        json.loads(x)["sequence"]
        for x in (tmp_path / "o2" / "predictions" / "my_design.jsonl").read_text().splitlines()
    ]  # seeded
    assert same["tasks"]["my_design"]["design"]["natural"]["consistency"] == nat["consistency"]
    assert "my_design (shuffled)" in (tmp_path / "o" / "report.md").read_text()


def test_design_task_bad_input(tmp_path):
    from instructprotein.evaluate.data import load_task_data

    base = {"name": "x", "kind": "design", "data": {"test": str(tmp_path / "d.jsonl")}}
    with pytest.raises(InputError, match="'prompt' is not a key of a design task"):
        parse_task({**base, "prompt": {"question": "Q?"}})
    with pytest.raises(InputError, match="sampling.per_request"):
        parse_task({**base, "sampling": {"per_request": 0}})
    with pytest.raises(InputError, match="unknown key"):
        parse_task({**base, "sampling": {"temprature": 0.5}})
    with pytest.raises(InputError, match="min_len <= max_len"):
        parse_task({**base, "sampling": {"min_len": 50, "max_len": 40}})
    (tmp_path / "d.jsonl").write_text(
        '{"request": "binds zinc ion", "terms": ["GO:0008270"]}\n{"request": "  ", "terms": ["GO:1"]}\n'
    )
    with pytest.raises(InputError, match=r"d.jsonl:2: 'request' must be a non-empty request text"):
        load_task_data(parse_task(base))
    (tmp_path / "d.jsonl").write_text('{"request": "binds zinc ion", "terms": []}\n')
    with pytest.raises(InputError, match=r"d.jsonl:1: 'terms' must be a non-empty list"):
        load_task_data(parse_task(base))


def test_heldout_design_items(instructions_dir, tmp_path):
    from instructprotein.evaluate.heldout import HeldOut
    from instructprotein.evaluate.tasks import Source

    d = tmp_path / "instr"
    shutil.copytree(instructions_dir, d)
    (d / "jsonl").mkdir()
    recs = [
        {
            "split": "test",
            "task": "function",
            "accession": "P20001",
            "prompt": "Instruction: What?\n\nOutput: ",
            "answer": "It binds zinc ion.",
            "triples": [["P20001", "enables", "GO:0008270"]],
        },
        {
            "split": "test",
            "task": "design",
            "accession": "P20001",
            "prompt": "Instruction: Design a protein that binds zinc ion.\n\nOutput: ",
            "answer": "<protein>M</protein>",
            "triples": [["P20001", "enables", "GO:0008270"], ["P20001", "located_in", "GO:0005634"]],
        },
        {
            "split": "test",
            "task": "design",
            "accession": "P20001",
            "prompt": "Instruction: Another.\n\nOutput: ",
            "answer": "<protein>M</protein>",
            "triples": [["P20001", "enables", "GO:0003824"]],
        },
    ]
    (d / "jsonl" / "test-00000.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    items = HeldOut(d).items(Source(heldout="design"))
    assert [(i.accession, i.label, i.terms) for i in items] == [
        ("P20001", "Design a protein that binds zinc ion.", ("GO:0008270", "GO:0005634"))
    ]  # the first per protein
    assert items[0].sequence == h.SEQUENCES["P20001"]
    assert load_task("heldout_design").kind == "design"


def test_evaluation_prompts_cut_proteins_to_the_models_own_length():
    from instructprotein.evaluate.data import Item
    from instructprotein.evaluate.runner import build_prompts

    _, tok = h.model_and_tokenizer()
    spec = load_task("deeploc10")
    items = [Item("a", h.random_protein(200, seed=1), "nucleus"), Item("b", h.random_protein(20, seed=2), "golgi")]
    _, read, info, texts = build_prompts(spec, items, tok, 512, 4, max_residues=32)
    assert [len(s) for s in read] == [32, 20] and info["model_cut"] == 1
    assert read[0] == items[0].sequence[:23] + "X" + items[0].sequence[-8:]
    assert f"<protein>{read[0]}</protein>" in texts[0] and "tuned on" in info["rule"]
    _, whole, info, _ = build_prompts(spec, items, tok, 512, 4)
    assert [len(s) for s in whole] == [200, 20] and info["model_cut"] == 0
