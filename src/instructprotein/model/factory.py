"""Create, load and save causal LMs as plain Hugging Face folders.

A model folder is what ``save_pretrained`` writes (``config.json``, ``model.safetensors``,
``generation_config.json`` with the decoding ``describe`` uses) plus the tokenizer files (which
add bos for plain ``transformers`` too) and a model card (``README.md``): any ``transformers`` tool opens it,
and :func:`load_model_and_tokenizer` opens the paper's released checkpoint the same way.
Nothing here reaches a model hub: every path is a local folder, loaded with
``local_files_only=True``.

Errors a user can cause (a folder without weights, without a config, a tokenizer whose
vocabulary the model cannot embed) are :class:`~instructprotein.errors.InputError` naming
the folder, raised before any training step. Saving goes through
:func:`~instructprotein.atomic.atomic_dir`: a crash mid-save leaves the previous folder as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from instructprotein.atomic import atomic_dir
from instructprotein.errors import InputError
from instructprotein.model.presets import Preset
from instructprotein.model.tokenizer import ProteinTokenizer, load_tokenizer

if TYPE_CHECKING:
    from transformers import OPTConfig, PreTrainedModel

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""Any of these makes a folder loadable; we write the first (safetensors, sharded above 50 GB)."""


# ------------------------------------------------------------------- creating


def model_config(preset: Preset, tokenizer: ProteinTokenizer) -> OPTConfig:
    """The ``OPTConfig`` of a preset's shape for ``tokenizer`` (vocabulary ``len(tokenizer)``)."""
    from transformers import OPTConfig

    m = preset.model
    if m.architecture != "opt":
        raise InputError(f"model.architecture {m.architecture!r} is not supported (only 'opt')", preset.source)
    return OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=m.hidden_size,
        num_hidden_layers=m.num_layers,
        ffn_dim=m.ffn_dim,
        num_attention_heads=m.num_heads,
        max_position_embeddings=m.context_length,
        word_embed_proj_dim=m.hidden_size,
        do_layer_norm_before=True,  # pre-LN, as every OPT but the 350M
        dropout=m.dropout,
        attention_dropout=m.attention_dropout,
        activation_function=m.activation,
        init_std=m.init_std,
        tie_word_embeddings=m.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        prompt_residues=m.prompt_residues,  # ours, kept in config.json for inference
    )


def create_model(preset: Preset, tokenizer: ProteinTokenizer, *, seed: int | None = None) -> PreTrainedModel:
    """A randomly initialised ``OPTForCausalLM`` of the preset's shape, in fp32.

    Seeded (``seed``, else ``preset.seed``) inside a forked RNG, so the same preset gives
    the same weights on every process and the caller's random state is left untouched.
    """
    from transformers import OPTForCausalLM

    config = model_config(preset, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(preset.seed if seed is None else seed)
        model = OPTForCausalLM(config)
    _sync_generation_ids(model, tokenizer)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied output layer counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ------------------------------------------------------------------- loading


def check_model_folder(path: str | Path) -> Path:
    """Raise :class:`InputError` unless ``path`` holds a config and weights ``transformers`` can load."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError("model folder not found", folder)
    config = folder / "config.json"
    if not config.exists():
        raise InputError("no config.json: not a Hugging Face model folder", folder)
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"config.json is not valid JSON ({exc})", config) from exc
    present = [name for name in WEIGHT_FILES if (folder / name).exists()]
    if not present:
        raise InputError(f"no model weights (expected one of {', '.join(WEIGHT_FILES)})", folder)
    for name in present:
        if name.endswith(".index.json"):
            try:
                shards = set(json.loads((folder / name).read_text(encoding="utf-8"))["weight_map"].values())
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"unreadable weight index ({exc})", folder / name) from exc
            missing = sorted(s for s in shards if not (folder / s).exists())
            if missing:
                raise InputError(f"weight shards missing: {', '.join(missing)}", folder)
    return folder


def load_model(path: str | Path, *, dtype: torch.dtype | str = torch.float32) -> PreTrainedModel:
    """Any local causal-LM folder (OPT, GPT-2, Llama, ...) via ``AutoModelForCausalLM``.

    ``dtype`` defaults to fp32, what training needs for its master weights; pass
    ``"auto"`` (the stored dtype) or ``torch.bfloat16`` for inference.
    """
    import pickle

    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    folder = check_model_folder(path)
    hf_logging.disable_progress_bar()  # "Loading weights" bars for a model that loads in milliseconds bury our own
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its "UNEXPECTED weights" table scrolled past; the check below is an error
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=dtype, output_loading_info=True
        )
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError, pickle.UnpicklingError) as exc:
        raise InputError(f"cannot load the model ({type(exc).__name__}: {exc})", folder) from exc
    finally:
        hf_logging.set_verbosity(level)
    check_loading_info(info, folder)
    return model


def check_loading_info(info: Mapping[str, Any], folder: str | Path) -> None:
    """:class:`InputError` naming ``folder`` when config.json and the weights disagree.

    ``from_pretrained`` fills weights it does not find with random values and drops those it
    does not expect, with a warning only: a config edited to 2 layers then loads and answers
    nonsense with exit 0. Missing, unexpected or wrongly shaped weights are therefore an error.
    """
    problems = []
    for key, what in (
        ("missing_keys", "missing from the weights"),
        ("unexpected_keys", "not in config.json's model"),
        ("mismatched_keys", "of another shape than config.json says"),
    ):
        names = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get(key) or ())
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            problems.append(f"{len(names)} weight(s) {what} ({shown})")
    if problems:
        raise InputError(
            "config.json does not match the weights: "
            + "; ".join(problems)
            + " (was config.json edited, or copied from another model?)",
            folder,
        )


def load_model_and_tokenizer(
    path: str | Path, *, dtype: torch.dtype | str = torch.float32
) -> tuple[PreTrainedModel, ProteinTokenizer]:
    """A folder saved by :func:`save_model` or the paper's checkpoint: model and tokenizer together.

    The tokenizer must have the protein tokens (else :class:`InputError` naming them) and
    the model must have an embedding row for every token id.
    """
    folder = check_model_folder(path)
    tokenizer = load_tokenizer(folder)
    model = load_model(folder, dtype=dtype)
    rows = model.get_input_embeddings().num_embeddings
    if rows < len(tokenizer):
        raise InputError(
            f"the tokenizer has {len(tokenizer)} tokens but the model embeds only {rows}; "
            "model and tokenizer do not belong together",
            folder,
        )
    _sync_generation_ids(model, tokenizer)
    return model, tokenizer


def start_from(
    path: str | Path, *, context_length: int | None = None, dtype: torch.dtype | str = torch.float32
) -> tuple[PreTrainedModel, ProteinTokenizer]:
    """Begin training from a local causal-LM folder (``model.init_from``): OPT-1.3B, GPT-2,
    the paper's checkpoint, one of ours.

    A tokenizer without the protein tokens gets them (layout ``adapted``) and the model's
    embeddings grow to match (:func:`resize_for_tokenizer`). ``context_length`` (the
    preset's) must fit the model's position table.
    """
    folder = check_model_folder(path)
    tokenizer = load_tokenizer(folder, add_missing=True)
    model = load_model(folder, dtype=dtype)
    resize_for_tokenizer(model, tokenizer)
    if context_length is not None:
        limit = _max_positions(model)
        if limit is not None and context_length > limit:
            raise InputError(
                f"model.context_length {context_length} exceeds the model's {limit} positions; lower it",
                folder,
            )
    return model, tokenizer


def resize_for_tokenizer(model: PreTrainedModel, tokenizer: ProteinTokenizer) -> bool:
    """Grow the embedding (and a tied output layer) to ``len(tokenizer)``; True if it grew.

    New rows start at the mean of the existing ones (``transformers``' ``mean_resizing``):
    a random row far from every trained one would dominate the first steps' logits. Rows
    are never removed, so a checkpoint padded to a round size (OPT's 50,272) keeps them.
    """
    rows = model.get_input_embeddings().num_embeddings
    grew = rows < len(tokenizer)
    if grew:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    _sync_generation_ids(model, tokenizer)
    return grew


def _sync_generation_ids(model: PreTrainedModel, tokenizer: ProteinTokenizer) -> None:
    """bos/eos/pad ids in the config and generation config follow the tokenizer, so
    ``generate`` stops at our eos and pads with our pad in either layout."""
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for key, value in ids.items():
        setattr(model.config, key, value)
        if getattr(model, "generation_config", None) is not None:
            setattr(model.generation_config, key, value)


DESCRIBE_DECODING: dict[str, Any] = {"do_sample": False, "num_beams": 1, "max_new_tokens": 128}
"""The decoding :func:`~instructprotein.infer.describe.describe` uses (greedy, 128 new tokens at
most, stop at eos), written into every saved folder's ``generation_config.json`` so that a plain
``model.generate`` or ``pipeline("text-generation")`` decodes and stops as ``describe`` does
(a test keeps the two in step)."""


def generation_config(tokenizer: ProteinTokenizer) -> Any:
    """The ``GenerationConfig`` a saved folder carries: the tokenizer's bos / eos / pad ids and
    :data:`DESCRIBE_DECODING`."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **DESCRIBE_DECODING,
    )


def _max_positions(model: PreTrainedModel) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(model.config, key, None)
        if isinstance(value, int):
            return value
    return None


# ------------------------------------------------------------------- saving


def save_model(
    model: PreTrainedModel,
    tokenizer: ProteinTokenizer,
    path: str | Path,
    *,
    extra_files: Mapping[str, str] | None = None,
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """Write model (safetensors), tokenizer and ``extra_files`` (name -> text, e.g. the
    effective preset YAML or metrics) into ``path``, atomically: a folder built aside and
    renamed, so readers see the old folder or the new one, never half of one.

    ``state_dict``: pass ``accelerator.get_state_dict(model)`` for sharded (FSDP/DeepSpeed)
    models; call this on the main process only.
    """
    target = Path(path)
    for name in extra_files or {}:
        if Path(name).name != name:
            raise ValueError(f"extra file names must be plain file names, not {name!r}")
    from instructprotein.model.card import write_model_card

    with atomic_dir(target) as tmp:
        model.save_pretrained(str(tmp), state_dict=state_dict)
        generation_config(tokenizer).save_pretrained(str(tmp))
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        if not any((tmp / w).exists() for w in WEIGHT_FILES):
            raise RuntimeError(f"save_pretrained wrote no weights into {tmp}")
        if "README.md" not in (extra_files or {}):
            write_model_card(tmp)  # no evaluation yet; `instructprotein run` rewrites it with the numbers
    return target


# ------------------------------------------------------------------- measuring


def measure_matmul_flops(
    size: int = 1024, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", seconds: float = 1.0
) -> float:
    """Sustained FLOP/s of square matmuls on ``device``: the ceiling a training loop's
    achieved FLOP/s is compared against (``Preset.describe(flops_per_second=...)``)."""
    device = torch.device(device)
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        a @ b
    sync()
    runs = 0
    start = time.perf_counter()
    while True:
        a @ b
        runs += 1
        if runs % 4 == 0:
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return 2.0 * size**3 * runs / elapsed
