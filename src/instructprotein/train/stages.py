"""The two stages, pre-training and instruction tuning: each checks every input first, then sets up
what differs between them (tokenizer and model, data) and hands over to the one loop.

Apart from the loop (:mod:`~instructprotein.train.loop`) so that the loop holds only the recipe
every stage shares.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError
from instructprotein.model.presets import Preset, load_preset
from instructprotein.train.data import corpus_shards, files_fingerprint, first_document
from instructprotein.train.distributed import _on_main, main_first, make_accelerator
from instructprotein.train.logs import _console, _reporter, _stop
from instructprotein.train.loop import TrainResult, train_loop
from instructprotein.train.runfolder import check_run_dir, clear_run_dir, latest_checkpoint

SCAFFOLD_VERSION = 1
"""Bumped when the instructions' fixed words the tokenizer is also trained on change."""


def pretrain(
    preset: Preset | str,
    corpus_dir: str | Path,
    run_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    tokenizer: str | Path | None = None,
    val_fraction: float = 0.01,
    progress: bool = False,
    deterministic: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Pre-train on a corpus folder (``shard-*.jsonl``) into ``run_dir``; the model lands in ``run_dir/model``.

    The tokenizer is ``tokenizer`` (a folder) if given, else the one in ``run_dir/tokenizer``
    if that exists, else trained on the corpus's text documents (``preset.tokenizer``).
    ``preset.model.init_from`` starts from a local causal-LM folder instead of random weights
    (its tokenizer, with the protein tokens added if it lacks them).
    """
    preset = _as_preset(preset)
    run_dir = Path(run_dir)
    spec = preset.pretrain
    # ---- every check that needs no heavy work, before anything is written
    if spec.loss_weighting != "token":
        raise InputError(
            "pretrain.loss_weighting must be 'token': pre-training rows are a stream of text, not "
            f"separate examples (got {spec.loss_weighting!r})"
        )
    check_run_dir(run_dir, resume=resume, force=force)
    if first_document(corpus_shards(corpus_dir)) is None:
        raise InputError("the corpus is empty (no documents in its shards)", corpus_dir)

    from instructprotein.instruct.templates import scaffold_texts
    from instructprotein.model.factory import (
        check_model_folder,
        create_model,
        start_from,
    )
    from instructprotein.model.tokenizer import (
        corpus_texts,
        load_tokenizer,
        train_tokenizer,
    )
    from instructprotein.train.data import prepare_pretrain_data

    init_from = preset.model.init_from
    if init_from:
        if tokenizer is not None:
            raise InputError("give either a tokenizer or model.init_from (whose tokenizer the model was trained with)")
        check_model_folder(init_from)
    if tokenizer is not None:
        load_tokenizer(tokenizer)
    accelerator = make_accelerator(spec, deterministic=deterministic)
    show = progress and accelerator.is_main_process
    if force:
        _on_main(accelerator, lambda: clear_run_dir(run_dir))
    reporter = _reporter(show)
    try:
        # ---- tokenizer and model
        if init_from:
            model, tok = start_from(init_from, context_length=preset.model.context_length)
        else:

            def get_tokenizer():
                if tokenizer is not None:
                    return load_tokenizer(tokenizer)
                folder = run_dir / "tokenizer"
                made_from = json.dumps(
                    {
                        "corpus": files_fingerprint(corpus_shards(corpus_dir)),
                        "tokenizer": asdict(preset.tokenizer),
                        "scaffold": SCAFFOLD_VERSION,
                    },
                    sort_keys=True,
                )
                marker = folder / "trained_on.json"
                if folder.exists() and (
                    resume
                    and latest_checkpoint(run_dir) is not None
                    or marker.exists()
                    and marker.read_text(encoding="utf-8") == made_from
                ):
                    return load_tokenizer(folder)  # the model being resumed was built on it, or nothing changed
                with reporter.step("training the tokenizer"):
                    # the corpus's text, and the instructions' fixed words (the model reads them in every prompt)
                    texts = itertools.chain(
                        corpus_texts(corpus_dir, limit=preset.tokenizer.max_documents), scaffold_texts()
                    )
                    trained = train_tokenizer(
                        texts, preset.tokenizer.bpe_vocab_size, folder, min_frequency=preset.tokenizer.min_frequency
                    )
                marker.write_text(made_from, encoding="utf-8")
                return trained

            tok = main_first(accelerator, get_tokenizer)
            model = create_model(preset, tok, seed=preset.seed)
        # ---- data
        data = main_first(
            accelerator,
            lambda: prepare_pretrain_data(
                corpus_dir,
                tok,
                preset.model.context_length,
                run_dir / "data" / "pretrain",
                seed=preset.seed,
                val_fraction=val_fraction,
                progress=reporter,
            ),
        )
    finally:
        _stop(reporter)
    return train_loop(
        accelerator=accelerator,
        model=model,
        tokenizer=tok,
        data=data,
        spec=spec,
        preset=preset,
        stage="pretrain",
        run_dir=run_dir,
        resume=resume,
        show_progress=show,
        on_step=on_step,
        provenance=data_provenance("corpus", corpus_dir, init_from, model),
    )


def finetune(
    preset: Preset | str,
    instructions_dir: str | Path,
    run_dir: str | Path,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    loss_on: str | None = None,
    long: str = "crop",
    pack: bool = True,
    progress: bool = False,
    deterministic: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Instruction-tune the model in ``init`` (a folder from :func:`pretrain`, the paper's checkpoint,
    any folder with a protein tokenizer) on a built instruction dataset; the model lands in ``run_dir/model``.

    Without ``init``, ``preset.model.init_from`` (a foreign causal LM gets the protein tokens
    added). ``loss_on``: ``answer`` (labels on the answer tokens) or ``all`` (the paper's
    whole-sequence loss); default ``preset.finetune.loss_on``.
    """
    preset = _as_preset(preset)
    run_dir = Path(run_dir)
    spec = preset.finetune
    loss_on = loss_on or spec.loss_on
    if loss_on not in ("answer", "all"):
        raise InputError(f"loss_on must be 'answer' or 'all', not {loss_on!r}")
    # ---- every check that needs no heavy work, before anything is written
    check_run_dir(run_dir, resume=resume, force=force)
    source = init or preset.model.init_from
    if not source:
        raise InputError(
            "instruction tuning needs a model to start from: pass --init MODEL_DIR (e.g. RUN/model of "
            "`train pretrain`) or set model.init_from"
        )

    from instructprotein.model.factory import (
        check_model_folder,
        load_model_and_tokenizer,
        start_from,
    )
    from instructprotein.train.instruction_data import (
        load_instruction_splits,
        prepare_instruction_data,
    )

    check_model_folder(source)
    if len(load_instruction_splits(instructions_dir)["train"]) == 0:
        raise InputError("the instruction dataset's train split is empty", Path(instructions_dir) / "hf")
    if init:  # ours or the paper's: the tokenizer must already have the protein tokens
        model, tok = load_model_and_tokenizer(init)
    else:
        model, tok = start_from(source, context_length=preset.model.context_length)
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and preset.model.context_length > positions:
        raise InputError(
            f"model.context_length {preset.model.context_length} exceeds the model's {positions} "
            "positions; lower it with --set model.context_length=...",
            source,
        )
    # the tuned model reads what it was tuned on: inference cuts its prompts by this config key
    model.config.prompt_residues = preset.model.prompt_residues
    accelerator = make_accelerator(spec, deterministic=deterministic)
    show = progress and accelerator.is_main_process
    if force:
        _on_main(accelerator, lambda: clear_run_dir(run_dir))
    reporter = _reporter(show)
    try:
        data = main_first(
            accelerator,
            lambda: prepare_instruction_data(
                instructions_dir,
                tok,
                preset.model.context_length,
                run_dir / "data" / "finetune",
                loss_on=loss_on,
                pack=pack,
                long=long,
                seed=preset.seed,
                progress=reporter,
                max_residues=preset.model.prompt_residues,
            ),
        )
    finally:
        _stop(reporter)
    if show:
        s = data.stats
        dropped = s["dropped_long"]["train"] + s["dropped_long"]["valid"]
        cropped = s["cropped"]["train"] + s["cropped"]["valid"]
        why = "their protein is the answer (design) or could not be cut enough" if long == "crop" else "--long drop"
        _console().log(
            f"instructions: {s['examples']['train']:,} train / {s['examples']['valid']:,} valid examples in "
            f"{s['rows']['train']:,} / {s['rows']['valid']:,} rows ({s['examples_per_row']['train']:.1f} per row, "
            f"{s['padding_fraction']['train']:.1%} padding); loss on {loss_on}"
            + (f"; {cropped:,} longer than the context had their protein cut to fit" if cropped else "")
            + (f"; {dropped:,} longer than the context left out ({why})" if dropped else "")
        )
    return train_loop(
        accelerator=accelerator,
        model=model,
        tokenizer=tok,
        data=data,
        spec=spec,
        preset=preset,
        stage="finetune",
        run_dir=run_dir,
        resume=resume,
        show_progress=show,
        on_step=on_step,
        provenance=data_provenance("instructions", instructions_dir, source, model),
    )


def _as_preset(preset: Preset | str) -> Preset:
    return preset if isinstance(preset, Preset) else load_preset(preset)


def data_provenance(kind: str, data_dir: str | Path, init: str | Path | None, model: Any) -> dict[str, Any]:
    """What a model card says the model was trained on: the data folder (its summary file's
    sha256 identifies the set), the knowledge graph it came from (source, GO release, content
    hash) and the folder the weights started from. Missing pieces are left out, never guessed."""
    import hashlib

    folder = Path(data_dir)
    name = "instructions.json" if kind == "instructions" else "corpus.json"
    out: dict[str, Any] = {}
    entry: dict[str, Any] = {"path": str(folder.resolve())}
    try:
        raw = (folder / name).read_bytes()
        summary = json.loads(raw)
        entry["sha256"] = hashlib.sha256(raw).hexdigest()
    except (OSError, ValueError):
        summary = {}
    if kind == "instructions":
        config = summary.get("config") or {}
        entry["train"] = (summary.get("instructions") or {}).get("train", config.get("n_train"))
        entry["evidence_fraction"] = config.get("evidence_fraction")
    out[kind] = entry
    kg_path, kg_hash = summary.get("kg") or (summary.get("config") or {}).get("kg"), summary.get("kg_content_hash")
    graph: dict[str, Any] = {"content_hash": kg_hash} if kg_hash else {}
    if kg_path and Path(kg_path).exists():
        try:
            from instructprotein.kg.store import KnowledgeGraph

            with KnowledgeGraph(kg_path) as kg:
                if kg.meta.get("content_hash") == kg_hash or not kg_hash:
                    graph.update(
                        source=kg.meta.get("source"),
                        ontology_version=kg.meta.get("ontology_version"),
                        content_hash=kg.meta.get("content_hash"),
                    )
        except Exception:  # noqa: BLE001 -- provenance is a courtesy: a graph that will not open leaves it out
            pass
    if graph:
        out["graph"] = graph
    if init:
        out["init"] = str(Path(init).resolve()) if Path(init).exists() else str(init)
        out["init_name_or_path"] = getattr(getattr(model, "config", None), "_name_or_path", None)
    return out
