"""The special-token contract: which tokens a tokenizer folder holds for proteins, how they are
spelt, and how a Hugging Face backend is made to start every text with bos.

Kept apart from encoding: these are the promises a saved folder makes (to plain ``transformers``
as much as to :class:`~instructprotein.model.tokenizer_codec.ProteinTokenizer`); the encoder is
only one reader of them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from instructprotein.prompt.render import (
    PROTEIN_CLOSE,
    PROTEIN_OPEN,
    STANDARD_RESIDUES,
    UNKNOWN_RESIDUE,
)

RESIDUE_PREFIX = "Ƥ"
"""Spelling of residue tokens (``ƤM``, ``ƤK``...), as in the paper's checkpoint.

``Ƥ`` (U+01A4) is outside GPT-2's byte-to-unicode alphabet, so no BPE token can collide
with a residue token."""

RESIDUE_LETTERS = "".join(sorted(STANDARD_RESIDUES))
PAPER_PROTEIN_TOKENS: tuple[str, ...] = (
    PROTEIN_OPEN,
    PROTEIN_CLOSE,
    *(RESIDUE_PREFIX + a for a in RESIDUE_LETTERS),
)
"""The 22 tokens the paper's checkpoint added to OPT's tokenizer."""

UNKNOWN_RESIDUE_TOKEN = RESIDUE_PREFIX + UNKNOWN_RESIDUE
PROTEIN_TOKENS: tuple[str, ...] = (*PAPER_PROTEIN_TOKENS, UNKNOWN_RESIDUE_TOKEN)
"""Our layout's 23 added tokens: the paper's 22 plus ``ƤX``."""

SPECIAL_TOKENS = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
"""Ids 0..3 of a tokenizer trained here, in the order RoBERTa/OPT use (``<s>``, ``<pad>``,
``</s>``, ``<unk>``), so a model config reads like OPT's."""

MARKER_FILE = "protein_tokenizer.json"
MARKER_FORMAT = "instructprotein-tokenizer"
MARKER_VERSION = 1

Layout = Literal["instructprotein", "paper", "adapted"]
"""``instructprotein``: trained by :func:`train_tokenizer`. ``paper``: a folder that already
had the paper's 22 tokens (its released checkpoint). ``adapted``: a foreign tokenizer (GPT-2,
OPT, ...) to which :func:`load_tokenizer` added the protein tokens on request."""

_SEGMENT = re.compile(re.escape(PROTEIN_OPEN) + r"(.*?)(" + re.escape(PROTEIN_CLOSE) + r"|\Z)", re.S)
"""A protein segment; an unclosed ``<protein>`` runs to the end of the string, which is what
a design prompt that ends in ``Output: <protein>`` (or a partial generation) looks like."""


def backend_adds_bos(backend: Any, bos_id: int) -> bool:
    """Does the backend, called plainly (``add_special_tokens`` at its default), start with bos?"""
    try:
        ids = backend("", add_special_tokens=True)["input_ids"]
    except (TypeError, ValueError, KeyError):
        return False
    return list(ids) == [bos_id]


def add_bos_post_processor(backend: Any, bos_id: int) -> None:
    """Make ``backend(text)`` start with bos, as :meth:`ProteinTokenizer.encode` does (and the
    model was trained): ``add_bos_token`` where the class has it (transformers 5 rebuilds its
    template from it) and a ``TemplateProcessing`` in the Rust tokenizer, the part every reader
    of ``tokenizer.json`` runs. A backend whose post-processor is not a template (GPT-2's
    ``ByteLevel`` offset trimming) keeps it, followed by the template."""
    from tokenizers import processors

    bos = backend.convert_ids_to_tokens(bos_id)
    if backend.bos_token is None:  # eos serves as bos (ProteinTokenizer.bos_token_id); say so by name
        backend.bos_token = bos
    for key, value in (("add_eos_token", False), ("add_bos_token", True)):
        try:
            setattr(backend, key, value)
        except (AttributeError, TypeError, ValueError):
            pass
    rust = getattr(backend, "backend_tokenizer", None)
    if rust is None:  # a Python-only tokenizer: add_bos_token is all there is
        return
    template = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)]
    )
    current = rust.post_processor
    keep = current is not None and type(current).__name__ not in (
        "TemplateProcessing",
        "BertProcessing",
        "RobertaProcessing",
        "Sequence",
    )
    rust.post_processor = processors.Sequence([current, template]) if keep else template


def missing_protein_tokens(backend: Any) -> list[str]:
    """The paper's 22 protein tokens that ``backend``'s vocabulary lacks."""
    vocab = backend.get_vocab()
    return [t for t in PAPER_PROTEIN_TOKENS if t not in vocab]


def add_protein_tokens(backend: Any) -> list[str]:
    """Add the missing protein tokens (and ``ƤX`` unless the paper's set was complete); return them.

    The embedding matrix of a model using this tokenizer must then grow
    (:func:`instructprotein.model.factory.resize_for_tokenizer`).
    """
    from tokenizers import AddedToken

    vocab = backend.get_vocab()
    wanted = [t for t in PAPER_PROTEIN_TOKENS if t not in vocab]
    if wanted and UNKNOWN_RESIDUE_TOKEN not in vocab:
        wanted.append(UNKNOWN_RESIDUE_TOKEN)
    if wanted:
        backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in wanted])
    return wanted
