"""The model card: ``README.md`` in every model folder, the Hugging Face convention.

Why a card at all: a model folder travels without this package (copied, shared, opened by the
paper's own scripts with ``AutoTokenizer`` / ``AutoModelForCausalLM``). Whoever opens it must
learn from the folder itself what the model is, what it was trained on, how well it does next
to the baselines, how to write a prompt it understands, and where it fails. The card is built
only from the folder's own files (``config.json``, ``preset.yaml``, ``metrics.json`` with the
training data's provenance, ``protein_tokenizer.json``, ``generation_config.json``) plus, when
there is one, the evaluation's ``results.json``, so it can be rewritten at any time (after
training: no numbers yet; after ``instructprotein run`` evaluates: the real numbers) and never
says anything the folder does not back. Written atomically (temporary name, rename).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from instructprotein.atomic import write_text

CARD_FILE = "README.md"

CARD_TASKS = (
    "deeploc10",
    "deeploc_binary",
    "metal_ion_binding",
    "go_mf",
    "heldout_location",
    "heldout_metal",
    "heldout_go_mf",
    "heldout_go_bp",
    "heldout_go_cc",
)
"""Choice tasks shown in the card's table, in this order (others in the results follow)."""

_BASELINES = (
    ("majority", "majority"),
    ("homology_best", "homology (best hit)"),
    ("composition", "composition + LR"),
    ("term_frequency", "term frequency"),
)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ImportError, yaml.YAMLError):  # a card never fails a save over an unreadable preset
        return {}
    return data if isinstance(data, dict) else {}


def _yaml_value(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _hub_id(name: Any) -> str | None:
    """``owner/name`` of a hub model (``facebook/opt-1.3b``), not a local path: only that is a
    valid ``base_model`` in the card's header."""
    if not isinstance(name, str) or name.count("/") != 1 or name.startswith((".", "/", "~")):
        return None
    return None if Path(name).exists() else name


def _pct(r: dict[str, Any] | None) -> str:
    if not r or r.get("accuracy") is None:
        return "-"
    return f"{r['accuracy'] * 100:.1f}"


def _parameters(config: dict[str, Any]) -> int | None:
    """OPT's parameter count from its config (the card must not load the weights to say it)."""
    try:
        v, d, f, n = config["vocab_size"], config["hidden_size"], config["ffn_dim"], config["num_hidden_layers"]
        pos = config["max_position_embeddings"] + 2  # OPT's learned positions have an offset of 2
    except KeyError:
        return None
    layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d  # attention, MLP, two layer norms
    total = v * d + pos * d + n * layer + 2 * d
    if not config.get("tie_word_embeddings", True):
        total += v * d
    return total


def evaluation_table(results: dict[str, Any]) -> list[str]:
    """Markdown rows: each choice task's accuracy (both rules) beside its baselines and the paper."""
    tasks = results.get("tasks") or {}
    names = [t for t in CARD_TASKS if t in tasks] + sorted(t for t in tasks if t not in CARD_TASKS)
    rows = []
    for name in names:
        r = tasks[name]
        model = r.get("model")
        if not isinstance(model, dict) or "first_token" not in model:
            continue  # describe / design tasks have their own metrics (report.md)
        b = r.get("baselines") or {}
        paper = r.get("paper") or {}
        rows.append(
            f"| {name} | {r.get('n', 0):,} | {_pct(r.get('system'))} | {_pct(model.get('first_token'))} | "
            f"{_pct(model.get('sum'))} | {_pct(r.get('model_alone'))} | "
            + " | ".join(_pct(b.get(k)) for k, _ in _BASELINES)
            + f" | {', '.join(f'{k} {v}' for k, v in paper.items()) or '-'} |"
        )
    if not rows:
        return []
    head = [
        "| task | n | system (combination.json, fit on validation) | model, first token (paper's rule) | "
        "model, full option | model alone (no evidence) | "
        + " | ".join(label for _, label in _BASELINES)
        + " | paper (1.3B) |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(_BASELINES) + "---|",
    ]
    return head + rows


def render_card(folder: str | Path, results: dict[str, Any] | None = None) -> str:
    """The card's text for the model folder ``folder`` (and its evaluation ``results``, if any)."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    metrics = _read_json(folder / "metrics.json")
    marker = _read_json(folder / "protein_tokenizer.json")
    gen = _read_json(folder / "generation_config.json")
    preset = _read_yaml(folder / "preset.yaml")
    data = metrics.get("data") or {}
    stage = metrics.get("stage")
    preset_name = preset.get("name") or "unknown"
    layout = marker.get("layout", "paper")
    params = _parameters(config)
    init = data.get("init")
    base = _hub_id(data.get("init_name_or_path"))
    seed = preset.get("seed")
    graph = data.get("graph") or {}
    instr = data.get("instructions") or {}
    corpus = data.get("corpus") or {}
    residues = config.get("prompt_residues")
    ctx = config.get("max_position_embeddings")

    datasets = ["UniProtKB/Swiss-Prot (release of the knowledge graph below)", "Gene Ontology"]
    if results and any(str(t).startswith("deeploc") for t in results.get("tasks", {})):
        datasets.append("DeepLoc (evaluation only)")
    tags = [
        "protein",
        "biology",
        "gene-ontology",
        "instructprotein",
        "knowledge-graph",
        "text-generation",
        config.get("model_type") or "causal-lm",
    ]
    header = [
        "---",
        "license: other",
        "license_name: mixed",
        'license_link: "LICENSE"',
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags:",
    ]
    header += [f"- {_yaml_value(t)}" for t in tags]
    if base:
        header.append(f"base_model: {_yaml_value(base)}")
    header.append("datasets:")
    header += [f"- {_yaml_value(d)}" for d in datasets]
    header.append("---")

    what = (
        "instruction-tuned"
        if stage == "finetune"
        else "pre-trained (not instruction-tuned)"
        if stage == "pretrain"
        else "causal"
    )
    body = [
        "",
        f"# InstructProtein {preset_name + ' ' if preset else ''}model ({what})",
        "",
        (
            "A decoder-only language model that reads and writes both English and protein sequences, trained by "
            "[instructprotein](https://arxiv.org/abs/2310.03269) (an implementation of InstructProtein, Wang et al., "
            "ACL 2024): pre-training on protein sequences and biomedical text, then instruction tuning on questions "
            "generated from a knowledge graph of Swiss-Prot proteins and their Gene Ontology annotations."
        ),
        "",
        "| | |",
        "|---|---|",
        (
            f"| architecture | {config.get('model_type', '?')}, {config.get('num_hidden_layers', '?')} layers, hidden size "
            f"{config.get('hidden_size', '?')}, {ctx or '?'} positions |"
        ),
        f"| parameters | {f'{params / 1e6:.1f} M' if params else '?'} |",
        f"| vocabulary | {config.get('vocab_size', '?')} tokens (tokenizer layout: {layout}; one token per residue) |",
    ]
    if preset:
        body.append(f"| preset | {preset_name} (the full preset is `preset.yaml` in this folder) |")
    if stage:
        body.append(f"| stage | {stage} |")
    if "step" in metrics:
        body.append(
            f"| steps | {metrics['step']} (this folder holds the best validation loss; tokens read: "
            f"{metrics.get('tokens', '?')}) |"
        )
    if isinstance(metrics.get("val_loss"), (int, float)):
        body.append(f"| validation loss | {metrics['val_loss']:.4f} |")
    if seed is not None:
        body.append(f"| seed | {seed} |")
    if graph:
        body.append(
            f"| knowledge graph | {graph.get('source', '?')}; GO {graph.get('ontology_version') or '?'}; "
            f"content hash `{graph.get('content_hash', '?')}` |"
        )
    if instr:
        body.append(
            f"| instruction set | `{instr.get('path', '?')}`, `instructions.json` sha256 "
            f"`{instr.get('sha256', '?')}`; {instr.get('train', '?')} training instructions, evidence fraction "
            f"{instr.get('evidence_fraction', '?')} |"
        )
    if corpus:
        body.append(
            f"| pre-training corpus | `{corpus.get('path', '?')}`, `corpus.json` sha256 `{corpus.get('sha256', '?')}` |"
        )
    if init:
        body.append(f"| started from | `{init}` |")
    if residues:
        body.append(f"| protein in prompts | cut to {residues} residues (first three quarters, `X`, last quarter) |")

    body += ["", "## Evaluation", ""]
    table = evaluation_table(results) if results else []
    if table:
        model_info = results.get("model") or {}
        body += [
            f"Accuracy % on the test sets, from `results.json` of {results.get('created', '?')} "
            f"({'with' if results.get('retrieval') else 'without'} homologs' annotations in the prompt"
            + (f"; first {results['limit']:,} items per task" if results.get("limit") else "")
            + f"; weights sha256 `{(model_info.get('weights') or {}).get('sha256') or '?'}`). Homology transfer "
            f"excludes database proteins at or above {(results.get('homology') or {}).get('max_identity', '?')} identity "
            "to the query, the paper's decontamination rule. The bar for a protein language model is homology "
            "transfer, not the majority class.",
            "",
            *table,
        ]
    else:
        body.append(
            "Not evaluated yet. `instructprotein evaluate --model THIS_FOLDER` writes `results.json` with "
            "the model beside majority-class, homology-transfer and composition baselines; "
            "`instructprotein run` rewrites this card with those numbers."
        )

    bos = "`</s>`" if layout == "paper" else "`<s>`"
    body += [
        "",
        "## Prompt format",
        "",
        "The paper's format, one prompt and its answer:",
        "",
        "```",
        "<protein>ƤMƤKƤT…</protein>Instruction: {question}\\n\\nOutput: {answer}",
        "```",
        "",
        (
            f"- Every sequence starts with {bos} (the tokenizer in this folder adds it: `add_bos_token`, and a "
            "post-processor in `tokenizer.json`); answers end with the eos token `</s>`."
        ),
        "- A protein is `<protein>`, one token per residue written `Ƥ` + letter, `</protein>`. With plain "
        '`transformers` write the residues in that notation: `"<protein>Ƥ" + "Ƥ".join(seq) + "</protein>"`. '
        "U is written as C, O as K, B/Z/J/X as the unknown residue"
        + (" `ƤX`." if layout != "paper" else " (the text token `X`: this layout has no `ƤX`)."),
        (
            "- Scoring options (the paper's zero-shot rule): end the prompt after the answer prefix without a trailing "
            "space, e.g. `…Output: The protein is located in`, and compare the log-probability of each option's "
            "first token (each option written with one leading space, ` nucleus`)."
        ),
        (
            "- With retrieval, the question is preceded by a line of homologs' annotations, e.g. "
            "`Homologs: 62% identical: nucleus. 41% identical: cytoplasm.` (the instructprotein package writes it "
            "from a knowledge graph)."
        ),
    ]
    if residues:
        body.append(
            f"- The model was tuned on proteins cut to {residues} residues (first three quarters, one `X`, "
            "last quarter); longer proteins should be cut the same way."
        )
    stop = gen.get("eos_token_id")
    body += [
        "",
        "## Use with plain transformers",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline",
        "",
        'folder = "path/to/this/folder"',
        "tok = AutoTokenizer.from_pretrained(folder)",
        "model = AutoModelForCausalLM.from_pretrained(folder)",
        'seq = "MKTAYIAKQRQISFVKSHFSRQ"',
        'prompt = "<protein>Ƥ" + "Ƥ".join(seq) + "</protein>Instruction: What is the function of this protein?\\n\\nOutput:"',
        'generate = pipeline("text-generation", model=model, tokenizer=tok)',
        'print(generate(prompt, return_full_text=False)[0]["generated_text"])',
        "```",
        "",
        (
            f"`generation_config.json` holds the decoding the package's `describe` uses (greedy, at most "
            f"{gen.get('max_new_tokens', '?')} new tokens, stop at eos id {stop}). `describe` also masks residue "
            "tokens outside a protein segment; plain `generate` does not."
        ),
        "",
        "## Use with instructprotein",
        "",
        "```python",
        "from instructprotein.infer.model import Model",
        "",
        'm = Model.load("path/to/this/folder", kg="instructprotein-work/kg.sqlite")  # kg: retrieval, GO ids, checks',
        'print(m.describe("MKTAYIAKQRQISFVKSHFSRQ").to_text())',
        'print(m.classify("MKTAYIAKQRQISFVKSHFSRQ", "What cellular components is the protein located in?",',
        '                 ["nucleus", "cytoplasm"], prefix="The protein is located in").answer)',
        "```",
        "",
        (
            "The package writes proteins plainly (`<protein>MKT</protein>`) and translates; `instructprotein describe`, "
            "`design`, `evaluate` and `serve` take this folder with `--model`."
        ),
        "",
        "## Limits",
        "",
        f"- Small: {f'{params / 1e6:.1f} M' if params else 'few'} parameters"
        + (f", trained for {metrics['step']} steps" if "step" in metrics else "")
        + ". Its answers come mostly from the homologs' annotations it is shown; without them it often answers "
        "with the most frequent classes. Do not use its answers as annotations without checking them.",
        (
            "- Knowledge: Swiss-Prot and GO as of the graph's release (2014 for the default data); newer terms and "
            "proteins are unknown to it. Proteins in the same 70 %-identity cluster as a benchmark test protein were "
            "removed from training; proteins outside Swiss-Prot's coverage are out of distribution."
        ),
        (
            "- Designed sequences are not checked for folding or function by the model; the package's `design` "
            "checks them against the knowledge graph only."
        ),
        (
            "- Reads only the 20 standard residues (others are mapped, see above); a prompt without the leading bos "
            "token gives worse answers."
        ),
        (
            "- The package's answers (the \"system\" column) combine this model with the homologs' vote using the "
            "weights in `combination.json`, fit on the instruction set's validation split; plain transformers gives the "
            'model\'s own answers (the "model" columns) only.'
        ),
        "",
        "## Licence",
        "",
        (
            "Code: MIT (instructprotein). The weights are derived from UniProtKB/Swiss-Prot and the Gene Ontology "
            "(CC BY 4.0), here as shipped in Debian's `metastudent-data` package (GPL-2+); check those terms before "
            "you redistribute the model."
        ),
        "",
    ]
    return "\n".join(header + body)


def write_model_card(folder: str | Path, results: dict[str, Any] | None = None) -> Path:
    """(Re)write ``folder/README.md`` atomically; ``results``: the evaluation of exactly this model."""
    path = Path(folder) / CARD_FILE
    write_text(path, render_card(folder, results))
    return path


def _sha256(path: Path) -> str:
    from instructprotein.checksums import file_sha256

    return file_sha256(path)


def results_for(folder: str | Path, results_path: str | Path) -> dict[str, Any] | None:
    """``results.json`` if it scored the model in ``folder``, else None: a card never shows another
    model's numbers. Same config and weights sha256 (the evaluation hashes weights up to 1 GB;
    above that, the same config and weight file size)."""
    folder = Path(folder)
    results = _read_json(Path(results_path))
    info = results.get("model") or {}
    weights = info.get("weights") or {}
    target = folder / str(weights.get("file"))
    if not results.get("tasks") or not weights.get("file") or not target.is_file():
        return None
    if not (folder / "config.json").is_file() or info.get("config_sha256") != _sha256(folder / "config.json"):
        return None
    if weights.get("sha256"):
        return results if _sha256(target) == weights["sha256"] else None
    return results if weights.get("bytes") == target.stat().st_size else None


def upgrade_folder(folder: str | Path) -> Path:
    """Bring a model folder saved by an older version up to date, in place: tokenizer files that
    make plain ``AutoTokenizer`` add bos, ``generation_config.json`` with the describe defaults,
    and a card. The weights are not touched; each file is replaced by rename."""
    from instructprotein.model.factory import generation_config
    from instructprotein.model.tokenizer import load_tokenizer

    folder = Path(folder)
    tokenizer = load_tokenizer(folder)
    tmp = Path(tempfile.mkdtemp(prefix=".upgrade-", dir=folder))
    try:
        tokenizer.save_pretrained(tmp)
        if (folder / "config.json").exists():
            generation_config(tokenizer).save_pretrained(str(tmp))
        for item in tmp.iterdir():
            os.replace(item, folder / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if (folder / "config.json").exists():
        write_model_card(folder)
    return folder
