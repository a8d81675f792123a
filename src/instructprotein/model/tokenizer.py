"""One tokenizer for two languages: residues one token each, text by byte-level BPE.

Design (why a thin wrapper around a Hugging Face tokenizer, not a custom Rust pipeline)
-------------------------------------------------------------------------------------
Strings in this project write proteins as ``<protein>MKT...</protein>`` (see
:func:`instructprotein.prompt.render.protein_text`). The model sees ``<protein>``, one
token per residue, ``</protein>``; everything else is text for a byte-level BPE.

The paper's released checkpoint solved this with *added tokens*: its tokenizer is OPT's
GPT-2 BPE plus ``<protein>``, ``</protein>`` and ``Ƥ``+each of the 20 standard residues,
and its users write ``<protein>ƤMƤKƤT</protein>``. We keep exactly that vocabulary
convention for our own tokenizer (plus one token ``ƤX`` for an unknown residue), so that
one code path serves both layouts, and :class:`ProteinTokenizer` does the translation:

- it splits a string on the protein tags; protein segments become token ids by a table
  lookup (validated, normalised by :data:`~instructprotein.prompt.render.RESIDUE_MAP`),
  text segments go to the backend BPE in one Rust batch call;
- offsets are character offsets in the *plain* notation the rest of the project uses, so an
  answer span from :func:`~instructprotein.prompt.render.render_paper` maps to tokens
  directly (:func:`answer_token_mask`).

The alternative, a ``tokenizers`` normalizer that rewrites residues inside tags, needs a
context-sensitive regex per residue letter (look-ahead to ``</protein>``, quadratic in the
sequence length) and would not apply to the paper's tokenizer, which we must read unchanged.
The saved folder stays a standard Hugging Face tokenizer folder (``tokenizer.json`` +
``tokenizer_config.json``, loadable by ``AutoTokenizer``); a third-party tool that opens it
directly writes proteins in the paper's ``Ƥ`` notation (:meth:`ProteinTokenizer.to_backend_notation`),
exactly as it would for the paper's checkpoint. A small ``protein_tokenizer.json`` beside it
records which layout the folder holds.

bos for plain ``transformers``: the model is trained on sequences that start with bos (OPT's
convention), so every saved folder makes the backend add it too: a ``TemplateProcessing``
post-processor in ``tokenizer.json`` (read by every ``tokenizers`` consumer, transformers 4
and 5 alike) and ``add_bos_token: true`` in ``tokenizer_config.json`` (what the paper's own
released tokenizer says). Then ``AutoTokenizer.from_pretrained(folder)(text)`` gives exactly
:meth:`ProteinTokenizer.encode`'s ids for the Ƥ notation of ``text``
(:meth:`ProteinTokenizer.backend_text`). A folder saved before this rule is read as before
(our encoder always added bos itself) and said so once (:func:`load_tokenizer`).

Residues without a token: U -> C, O -> K, B/Z/J -> X (:data:`RESIDUE_MAP`), lower case is
upper-cased, a trailing ``*`` is dropped. ``X`` is ``ƤX`` in our layout; the paper's layout
has no X token, so there X is written as the BPE's own text token ``X`` (a single byte
token every byte-level BPE has) and decodes back to ``X`` inside a protein segment.

The parts: the token contract in :mod:`.tokenizer_vocab`, encoding and decoding in
:mod:`.tokenizer_codec`, training in :mod:`.tokenizer_train`; this module opens saved folders
(:func:`load_tokenizer`) and is where the rest of the project imports them from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructprotein.errors import InputError
from instructprotein.model.tokenizer_codec import Encoded, ProteinTokenizer, answer_token_mask
from instructprotein.model.tokenizer_train import corpus_texts, text_parts, train_tokenizer
from instructprotein.model.tokenizer_vocab import (
    MARKER_FILE,
    MARKER_FORMAT,
    MARKER_VERSION,
    PAPER_PROTEIN_TOKENS,
    PROTEIN_TOKENS,
    RESIDUE_LETTERS,
    RESIDUE_PREFIX,
    SPECIAL_TOKENS,
    UNKNOWN_RESIDUE_TOKEN,
    Layout,
    add_bos_post_processor,
    add_protein_tokens,
    backend_adds_bos,
    missing_protein_tokens,
)

__all__ = [
    "MARKER_FILE",
    "MARKER_FORMAT",
    "MARKER_VERSION",
    "PAPER_PROTEIN_TOKENS",
    "PROTEIN_TOKENS",
    "RESIDUE_LETTERS",
    "RESIDUE_PREFIX",
    "SPECIAL_TOKENS",
    "UNKNOWN_RESIDUE_TOKEN",
    "Encoded",
    "Layout",
    "ProteinTokenizer",
    "add_bos_post_processor",
    "add_protein_tokens",
    "answer_token_mask",
    "backend_adds_bos",
    "corpus_texts",
    "load_tokenizer",
    "missing_protein_tokens",
    "text_parts",
    "train_tokenizer",
]


_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json", "tokenizer.model")


def load_tokenizer(path: str | Path, *, add_missing: bool = False) -> ProteinTokenizer:
    """Open a local tokenizer folder (ours, the paper's checkpoint, or any HF folder).

    A folder without the protein tokens is an error naming the missing tokens, unless
    ``add_missing`` (starting a model from a foreign causal LM: the tokens are added and the
    layout becomes ``adapted``; resize the model's embeddings to match).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError("tokenizer folder not found", folder)
    if not any((folder / name).exists() for name in _TOKENIZER_FILES):
        raise InputError(
            f"no tokenizer files here (expected one of {', '.join(_TOKENIZER_FILES)}); "
            "train one with train_tokenizer or copy the model's tokenizer into the folder",
            folder,
        )
    marker: dict[str, Any] = {}
    if (folder / MARKER_FILE).exists():
        try:
            marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"unreadable {MARKER_FILE} ({exc})", folder / MARKER_FILE) from exc
        if marker.get("format") != MARKER_FORMAT or int(marker.get("version", 0)) > MARKER_VERSION:
            raise InputError(
                f"{MARKER_FILE} is format {marker.get('format')!r} version {marker.get('version')}, "
                f"this code reads {MARKER_FORMAT!r} up to version {MARKER_VERSION}",
                folder / MARKER_FILE,
            )
    from transformers import AutoTokenizer

    try:
        backend = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the tokenizer ({type(exc).__name__}: {exc})", folder) from exc
    missing = missing_protein_tokens(backend)
    layout: Layout
    if missing:
        if not add_missing:
            raise InputError(
                f"tokenizer lacks the protein tokens {' '.join(missing)}; it cannot write proteins one residue "
                "per token. Start a model from this folder with --init-from (adds the tokens and resizes the "
                "embeddings), or use a tokenizer trained by `instructprotein`",
                folder,
            )
        add_protein_tokens(backend)
        layout = "adapted"
    elif marker.get("layout") in ("instructprotein", "paper", "adapted"):
        layout = marker["layout"]
    else:
        layout = "paper"
    tokenizer = ProteinTokenizer(backend, layout, folder)
    if marker and not tokenizer.backend_added_bos:
        _notice_once(
            folder,
            f"note: {folder} was saved before tokenizer folders added <s> for plain transformers; read as before "
            '(this package adds it). To upgrade it: python -c "from instructprotein.model.card import '
            f"upgrade_folder; upgrade_folder('{folder}')\"",
        )
    return tokenizer


_NOTICED: set[str] = set()


def _notice_once(folder: Path, message: str) -> None:
    """One line on stderr per folder and process: a model folder is loaded many times (describe,
    evaluate, serve), and a note repeated on each would bury the output."""
    import sys

    key = str(folder.resolve())
    if key not in _NOTICED:
        _NOTICED.add(key)
        print(message, file=sys.stderr)
