"""Presets: model shape, tokenizer size and both training stages' knobs in one YAML file.

A preset is data, not code (as in torchtune / litgpt recipes): ``tiny`` runs on a laptop,
``small`` on one machine, ``paper`` is the published 1.3B setup, and a user's own file
either lists every key or starts with ``base: tiny`` and sets only what differs. Every
key is checked by pydantic against the dataclasses below (the one schema): a misspelt key is an
error naming the file and the key, never a silently ignored setting (a typo in ``weight_decay``
would otherwise train with the default).

This module imports neither torch nor transformers, so validating a config is instant;
parameter counts are computed from the shape (:meth:`Preset.parameter_count`, exact for
``transformers``' OPT, checked against an instantiated model in the tests).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import yaml
from pydantic import BeforeValidator, ConfigDict, Strict, TypeAdapter, ValidationError, with_config

from instructprotein.errors import InputError
from instructprotein.model.tokenizer import PROTEIN_TOKENS

PRESET_NAMES = ("tiny", "small", "paper")


def _no_bool(value: Any) -> Any:
    """YAML's ``true`` is not a number: refuse it where pydantic's lax mode would read 1."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
Bool = Annotated[bool, Strict()]
Architecture = Literal["opt"]
Activation = Literal["relu", "gelu", "gelu_new", "silu"]
Decay = Literal["linear", "cosine", "constant"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
LossOn = Literal["all", "answer"]
LossWeighting = Literal["token", "example"]
_STRICT = ConfigDict(extra="forbid")

GPU_REFERENCE = ("H100 bf16, 989 TFLOP/s dense peak at 40 % utilisation", 989e12 * 0.4)
"""A stated assumption for :meth:`Preset.describe`'s GPU line, not a measurement."""


@with_config(_STRICT)
@dataclass(frozen=True)
class ModelSpec:
    """Shape of the causal LM. OPT for every preset: the paper's checkpoint is an
    ``OPTForCausalLM``, so one architecture serves training from scratch and loading it."""

    hidden_size: Int
    num_layers: Int
    num_heads: Int
    ffn_dim: Int
    context_length: Int
    architecture: Architecture = "opt"
    dropout: Float = 0.0
    attention_dropout: Float = 0.0
    activation: Activation = "relu"
    init_std: Float = 0.02
    tie_word_embeddings: Bool = True
    init_from: str | None = None
    prompt_residues: Int | None = None
    """Residues of a prompt's protein the model reads (both ends kept, as any cut); None: as
    many as the context holds. Saved in the model's config, so inference cuts as training did."""


@with_config(_STRICT)
@dataclass(frozen=True)
class TokenizerSpec:
    bpe_vocab_size: Int
    min_frequency: Int = 2
    max_documents: Int | None = None


@with_config(_STRICT)
@dataclass(frozen=True)
class TrainSpec:
    """One training stage. Batch sizes count tokens, so a preset means the same thing on one
    process or eight: the loop derives rows (``tokens / context``) and accumulation steps."""

    batch_tokens: Int
    micro_batch_tokens: Int
    lr: Float
    warmup_steps: Int
    max_steps: Int
    decay: Decay = "linear"
    final_lr_fraction: Float = 0.0
    betas: tuple[Float, Float] = (0.9, 0.98)
    eps: Float = 1e-8
    weight_decay: Float = 0.01
    grad_clip: Float = 1.0
    max_tokens: Int | None = None
    max_minutes: Float | None = None
    eval_interval: Int = 100
    eval_tokens: Int = 65536
    checkpoint_interval: Int = 100
    patience: Int = 5
    precision: Precision = "auto"
    loss_on: LossOn = "all"
    loss_weighting: LossWeighting = "token"  # see instructprotein.train.data.LOSS_WEIGHTINGS

    def rows_per_batch(self, context_length: int) -> int:
        """Packed rows of ``context_length`` tokens per optimiser step."""
        return self.batch_tokens // context_length

    def rows_per_micro_batch(self, context_length: int) -> int:
        return self.micro_batch_tokens // context_length

    def accumulation_steps(self, processes: int = 1) -> int:
        """Micro-batches per optimiser step on each of ``processes`` processes.

        Raises ``InputError`` when the global batch does not split evenly: a silent rounding
        would change the effective batch between a one- and a many-process run.
        """
        per_step = self.micro_batch_tokens * processes
        if self.batch_tokens % per_step:
            raise InputError(
                f"batch_tokens {self.batch_tokens} is not a multiple of micro_batch_tokens "
                f"{self.micro_batch_tokens} x {processes} process(es)"
            )
        return self.batch_tokens // per_step

    def lr_at(self, step: int, horizon: int | None = None) -> float:
        """The schedule every preset describes: linear warm-up, then linear/cosine/constant decay
        to ``lr * final_lr_fraction`` at ``max_steps`` (or at ``horizon``, the step a time
        budget is projected to end at). ``step`` counts optimiser steps from 0."""
        import math

        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.decay == "constant":
            return self.lr
        end = self.max_steps if horizon is None else min(self.max_steps, horizon)
        span = max(1, end - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.lr * self.final_lr_fraction
        if self.decay == "linear":
            return floor + (self.lr - floor) * (1.0 - progress)
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@with_config(_STRICT)
@dataclass(frozen=True)
class Preset:
    name: str
    model: ModelSpec
    tokenizer: TokenizerSpec
    pretrain: TrainSpec
    finetune: TrainSpec
    description: str = ""
    seed: Int = 0
    source: str = field(default="", compare=False)

    # ------------------------------------------------------------ sizes and cost

    @property
    def vocab_size(self) -> int:
        """Tokenizer length a model built from this preset gets: BPE (incl. specials) + 23 protein tokens.

        An estimate until the tokenizer exists (a small corpus may support fewer merges);
        the factory always uses ``len(tokenizer)``."""
        return self.tokenizer.bpe_vocab_size + len(PROTEIN_TOKENS)

    def parameter_count(self, vocab_size: int | None = None) -> int:
        """Exact parameter count of ``transformers``' ``OPTForCausalLM`` of this shape.

        OPT: token embedding V x h, learned positions (context + 2) x h (OPT offsets
        positions by 2), per layer q/k/v/out projections 4(h^2 + h), fc1 h f + f, fc2 f h + h,
        two layer norms 4h; a final layer norm 2h; the output layer is tied to the embedding.
        """
        m = self.model
        v = vocab_size if vocab_size is not None else self.vocab_size
        h, f, n = m.hidden_size, m.ffn_dim, m.num_layers
        per_layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 4 * h
        total = v * h + (m.context_length + 2) * h + n * per_layer + 2 * h
        if not m.tie_word_embeddings:
            total += v * h
        return total

    def flops_per_token(self, vocab_size: int | None = None) -> float:
        """Training FLOPs per token: 6 x (matmul parameters) + 12 x layers x hidden x context.

        Matmul parameters are all but the position table (a lookup); the token embedding is
        counted once, as the output projection. The second term is attention's score and
        value products (PaLM's accounting, without the causal half-saving)."""
        m = self.model
        matmul = self.parameter_count(vocab_size) - (m.context_length + 2) * m.hidden_size
        return 6.0 * matmul + 12.0 * m.num_layers * m.hidden_size * m.context_length

    def stage_tokens(self, stage: str) -> int:
        spec = self.stage(stage)
        tokens = spec.max_steps * spec.batch_tokens
        return min(tokens, spec.max_tokens) if spec.max_tokens else tokens

    def stage(self, stage: str) -> TrainSpec:
        if stage not in ("pretrain", "finetune"):
            raise ValueError(f"stage must be pretrain or finetune, not {stage!r}")
        return self.pretrain if stage == "pretrain" else self.finetune

    def training_memory_bytes(self, vocab_size: int | None = None) -> int:
        """Weights, gradients and AdamW's two moments in fp32 (16 bytes per parameter), the
        floor before activations; mixed precision keeps fp32 master weights, so the same."""
        return 16 * self.parameter_count(vocab_size)

    def describe(self, vocab_size: int | None = None, flops_per_second: float | None = None) -> str:
        """A human summary: shape, parameters, tokens and FLOPs per stage, time estimates.

        ``flops_per_second``: the achieved training throughput of the machine at hand (for
        example the measured matmul rate x the utilisation the loop reaches); without it
        only the stated GPU reference line is given."""
        m = self.model
        v = vocab_size if vocab_size is not None else self.vocab_size
        params = self.parameter_count(v)
        fpt = self.flops_per_token(v)
        lines = [
            f"preset {self.name}: {self.description}" if self.description else f"preset {self.name}",
            f"  model      {m.architecture.upper()} {m.num_layers} layers x {m.hidden_size} hidden, "
            f"{m.num_heads} heads, ffn {m.ffn_dim}, context {m.context_length}"
            + (f", initialised from {m.init_from}" if m.init_from else ""),
            f"  vocabulary {v:,} ({self.tokenizer.bpe_vocab_size:,} BPE + {len(PROTEIN_TOKENS)} protein tokens)",
            f"  parameters {params:,} ({_human(params)}); training state >= {_human_bytes(self.training_memory_bytes(v))}",
            f"  compute    {_human(fpt)}FLOP per training token",
        ]
        for stage in ("pretrain", "finetune"):
            spec = self.stage(stage)
            tokens = self.stage_tokens(stage)
            total = tokens * fpt
            line = (
                f"  {stage:<10} {spec.max_steps:,} steps x {spec.batch_tokens:,} tokens = {_human(tokens)} tokens, "
                f"{total:.2e} FLOP; lr {spec.lr:g}, warm-up {spec.warmup_steps:,}, {spec.decay} decay, "
                f"{spec.precision}, loss on {spec.loss_on} ({spec.loss_weighting}-weighted)"
            )
            estimates = []
            if flops_per_second:
                estimates.append(f"{_human_time(total / flops_per_second)} at {_human(flops_per_second)}FLOP/s")
            estimates.append(f"{_human_time(total / GPU_REFERENCE[1])} on {GPU_REFERENCE[0]}")
            if spec.max_minutes:
                estimates.append(f"capped at {spec.max_minutes:g} min wall")
            lines.append(line)
            lines.append(f"  {'':<10} time: " + "; ".join(estimates))
        if self.source:
            lines.append(f"  from       {self.source}")
        return "\n".join(lines)

    # ------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the same keys as the YAML file (``source`` left out)."""
        out = dataclasses.asdict(self)
        out.pop("source")
        for stage in ("pretrain", "finetune"):
            out[stage]["betas"] = list(out[stage]["betas"])
        return out

    def to_yaml(self) -> str:
        """The effective configuration (overrides applied), to store beside a trained model."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------- loading

_SECTIONS: dict[str, type] = {
    "model": ModelSpec,
    "tokenizer": TokenizerSpec,
    "pretrain": TrainSpec,
    "finetune": TrainSpec,
}
_TOP_LEVEL = {"name", "description", "seed", "base", *_SECTIONS}


def preset_path(name: str) -> Path:
    """The packaged YAML file of a named preset."""
    return Path(str(resources.files("instructprotein.model") / "presets" / f"{name}.yaml"))


def load_preset(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Preset:
    """A named preset (``tiny``, ``small``, ``paper``) or a YAML file, with ``overrides``.

    ``overrides`` maps dotted keys (``{"pretrain.lr": 3e-4}``, as ``--set pretrain.lr=3e-4``
    gives) or nested dicts (``{"pretrain": {"lr": 3e-4}}``) to values; string values are
    parsed as YAML (``"null"``, ``"[0.9, 0.95]"``, ``"3e-4"`` all work). Unknown keys, wrong
    types and inconsistent values raise :class:`InputError` naming the file (or
    ``overrides``) and the key.
    """
    path = _resolve(name_or_path)
    data, origins = _read_layers(path, seen=())
    if overrides:
        nested = _nest(overrides)
        data = _deep_merge(data, nested)
        origins.update(dict.fromkeys(_leaf_keys(nested), "overrides"))
    return _build_preset(data, path, origins)


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text in PRESET_NAMES and not Path(text).exists():
        return preset_path(text)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml") or "/" in text:
        raise InputError("preset file not found", path)
    raise InputError(f"unknown preset {text!r}; named presets: {', '.join(PRESET_NAMES)}, or give a YAML file")


def _read_layers(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """Read one file and, first, the ``base:`` it names (a preset name or a path relative to
    the file). Returns the merged data and, per dotted key, the file that set it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the preset ({exc})", path) from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError(f"not valid YAML ({exc})", path, line + 1 if line is not None else None) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("a preset file must be a mapping of keys to values", path)
    base = data.pop("base", None)
    origins = dict.fromkeys(_leaf_keys(data), str(path))
    if base is None:
        return data, origins
    base_path = _resolve(base) if str(base) in PRESET_NAMES else (path.parent / str(base)).resolve()
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        raise InputError(f"'base: {base}' refers back to itself", path)
    parent, parent_origins = _read_layers(base_path, seen + (path.resolve(),))
    return _deep_merge(parent, data), parent_origins | origins


def _leaf_keys(data: dict[str, Any]) -> list[str]:
    out = []
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):
            out.extend(f"{key}.{sub}" for sub in value)
        else:
            out.append(key)
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                nested.setdefault(str(key), {})[sub] = inner
            continue
        parts = str(key).split(".")
        if len(parts) > 2:
            raise InputError(f"unknown key {key!r}", "overrides")
        if len(parts) == 2:
            section = nested.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise InputError(f"key {key!r} conflicts with another override", "overrides")
            section[parts[1]] = value
        else:
            nested[key] = value
    return nested


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


_PRESET_SCHEMA = TypeAdapter(Preset)


def _build_preset(data: dict[str, Any], path: Path, origins: dict[str, str]) -> Preset:
    """Validate the merged layers with pydantic (types, choices, unknown and missing keys), then
    the cross-field rules; every error names the key and the file (or ``overrides``) that set it."""

    def where(key: str) -> str:
        return origins.get(key, str(path))

    if "source" in data:
        raise InputError(f"unknown key 'source' (known: {', '.join(sorted(_TOP_LEVEL - {'base'}))})", where("source"))
    values = {key: _from_text(key, value) for key, value in data.items()}
    try:
        preset = _PRESET_SCHEMA.validate_python({"name": path.stem, **values, "source": str(path)})
    except ValidationError as exc:
        raise _input_error(exc, values, path, where) from None
    _check(preset, where)
    return preset


def _from_text(key: str, value: Any) -> Any:
    """A string set for a field that is not text is read as YAML (``--set`` gives strings:
    ``"null"``, ``"[0.9, 0.95]"``, ``"3e-4"``)."""
    if isinstance(value, dict) and key in _SECTIONS:
        return {sub: _from_text(f"{key}.{sub}", inner) for sub, inner in value.items()}
    kind = _field_type(key)
    if not isinstance(value, str) or kind is None or _is_text(kind):
        if isinstance(value, str) and kind is not None and typing.get_origin(kind) in (typing.Union, type(int | None)):
            if value.strip().lower() in ("null", "none", "~"):
                return None
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _field_type(key: str) -> Any:
    """The declared type of a dotted key (``pretrain.lr``), or None for an unknown key."""
    section, _, sub = key.partition(".")
    cls = _SECTIONS.get(section) if sub else Preset
    hints = get_type_hints(cls) if cls else {}
    return hints.get(sub or section)


def _is_text(kind: Any) -> bool:
    args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    return all(a is str or typing.get_origin(a) is Literal for a in args)


def _input_error(
    exc: ValidationError, data: dict[str, Any], path: Path, where: typing.Callable[[str], str]
) -> InputError:
    """pydantic's first complaint as this project's one-line error: the dotted key, what it must be."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    key = ".".join(loc[:2])
    if first["type"] == "unexpected_keyword_argument":
        known = (
            sorted(_TOP_LEVEL - {"base"}) if len(loc) == 1 else [f.name for f in dataclasses.fields(_SECTIONS[loc[0]])]
        )
        return InputError(f"unknown key '{key}' (known: {', '.join(sorted(known))})", where(key))
    if first["type"] == "missing" and len(loc) == 1:
        return InputError(f"missing section {key!r}", path)
    if first["type"] == "missing" and len(loc) == 2:
        missing = [
            e["loc"][1] for e in errors if e["type"] == "missing" and len(e["loc"]) == 2 and e["loc"][0] == loc[0]
        ]
        return InputError(f"section {loc[0]!r} lacks {', '.join(map(str, missing))}", where(key))
    value: Any = data
    for part in loc[:2]:
        value = value.get(part) if isinstance(value, dict) else None
    if len(loc) == 1 and loc[0] in _SECTIONS:
        return InputError(f"section {key!r} must be a mapping", where(key))
    kind = _field_type(key)
    if first["type"] == "literal_error":
        choices = [a for a in typing.get_args(kind) if a is not type(None)]
        choices = list(typing.get_args(choices[0])) if choices and typing.get_origin(choices[0]) is Literal else choices
        return InputError(f"'{key}' must be one of {', '.join(map(str, choices))}, got {value!r}", where(key))
    return InputError(f"'{key}' must be {_type_name(kind)}, got {value!r}", where(key))


def _type_name(kind: Any) -> str:
    args = (
        [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) in (typing.Union, type(int | None))
        else [kind]
    )
    kind = args[0] if args else kind
    if typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) is tuple:
        return f"a list of {len(typing.get_args(kind))} numbers"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(kind, str(kind))


def _check(p: Preset, where: typing.Callable[[str], str]) -> None:
    """Cross-field rules; each error names the key to change and the file (or ``overrides``) that set it."""
    m = p.model
    if m.hidden_size % m.num_heads:
        raise InputError(
            f"model.hidden_size {m.hidden_size} is not divisible by model.num_heads {m.num_heads}",
            where("model.num_heads"),
        )
    for key, value in (
        ("hidden_size", m.hidden_size),
        ("num_layers", m.num_layers),
        ("num_heads", m.num_heads),
        ("ffn_dim", m.ffn_dim),
        ("context_length", m.context_length),
    ):
        if value <= 0:
            raise InputError(f"model.{key} must be positive", where(f"model.{key}"))
    if m.prompt_residues is not None and m.prompt_residues < 8:
        raise InputError(
            "model.prompt_residues must be null or at least 8 (a protein cut shorter says nothing)",
            where("model.prompt_residues"),
        )
    for key, value in (("dropout", m.dropout), ("attention_dropout", m.attention_dropout)):
        if not 0.0 <= value < 1.0:
            raise InputError(f"model.{key} must be in [0, 1)", where(f"model.{key}"))
    if p.tokenizer.bpe_vocab_size < 300:
        raise InputError(
            "tokenizer.bpe_vocab_size must be at least 300 (256 bytes + special tokens + merges)",
            where("tokenizer.bpe_vocab_size"),
        )
    for stage in ("pretrain", "finetune"):
        s = p.stage(stage)
        if s.micro_batch_tokens % m.context_length:
            raise InputError(
                f"{stage}.micro_batch_tokens {s.micro_batch_tokens} is not a multiple of "
                f"model.context_length {m.context_length} (batches are packed rows of the context)",
                where(f"{stage}.micro_batch_tokens"),
            )
        if s.batch_tokens % s.micro_batch_tokens:
            raise InputError(
                f"{stage}.batch_tokens {s.batch_tokens} is not a multiple of {stage}.micro_batch_tokens "
                f"{s.micro_batch_tokens}",
                where(f"{stage}.batch_tokens"),
            )
        if s.lr <= 0 or s.max_steps <= 0:
            raise InputError(f"{stage}.lr and {stage}.max_steps must be positive", where(f"{stage}.lr"))
        if not 0 <= s.warmup_steps < s.max_steps:
            raise InputError(f"{stage}.warmup_steps must be in [0, max_steps)", where(f"{stage}.warmup_steps"))
        if not all(0.0 <= b < 1.0 for b in s.betas):
            raise InputError(f"{stage}.betas must be in [0, 1)", where(f"{stage}.betas"))
        if not 0.0 <= s.final_lr_fraction <= 1.0:
            raise InputError(f"{stage}.final_lr_fraction must be in [0, 1]", where(f"{stage}.final_lr_fraction"))
        for key in ("eval_interval", "checkpoint_interval", "patience", "eval_tokens"):
            if getattr(s, key) <= 0:
                raise InputError(f"{stage}.{key} must be positive", where(f"{stage}.{key}"))
        if s.eval_tokens < m.context_length:
            raise InputError(
                f"{stage}.eval_tokens must be at least model.context_length", where(f"{stage}.eval_tokens")
            )
        if s.max_minutes is not None and s.max_minutes <= 0:
            raise InputError(f"{stage}.max_minutes must be positive (or null)", where(f"{stage}.max_minutes"))
        if s.max_tokens is not None and s.max_tokens <= 0:
            raise InputError(f"{stage}.max_tokens must be positive (or null)", where(f"{stage}.max_tokens"))


def _human(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} "


def _human_bytes(x: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f} B"


def _human_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"
