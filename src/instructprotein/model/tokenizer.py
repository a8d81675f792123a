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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from instructprotein.atomic import atomic_dir
from instructprotein.errors import InputError
from instructprotein.prompt.render import (
    PROTEIN_CLOSE,
    PROTEIN_OPEN,
    RESIDUE_MAP,
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


@dataclass(frozen=True)
class Encoded:
    """Token ids of one string and, per token, its ``(start, end)`` character span.

    bos has span ``(0, 0)``, eos ``(n, n)`` with ``n = len(text)``; padding ``(0, 0)``.
    """

    input_ids: list[int]
    offsets: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.input_ids)


class ProteinTokenizer:
    """Joint protein + text tokenizer around a Hugging Face tokenizer (the *backend*).

    Use :func:`load_tokenizer` or :func:`train_tokenizer` to get one. Offsets, ids and
    decoding all speak the plain notation ``<protein>MKT</protein>``.
    """

    def __init__(self, backend: Any, layout: Layout, source: Path | None = None):
        self.backend = backend
        self.layout: Layout = layout
        self.source = source
        vocab: dict[str, int] = backend.get_vocab()
        missing = [t for t in PAPER_PROTEIN_TOKENS if t not in vocab]
        if missing:
            raise InputError(f"tokenizer lacks the protein tokens {' '.join(missing)}", source)
        self.protein_open_id = vocab[PROTEIN_OPEN]
        self.protein_close_id = vocab[PROTEIN_CLOSE]
        self.residue_ids: dict[str, int] = {a: vocab[RESIDUE_PREFIX + a] for a in RESIDUE_LETTERS}
        if UNKNOWN_RESIDUE_TOKEN in vocab:
            self.unknown_residue_id = vocab[UNKNOWN_RESIDUE_TOKEN]
            self.residue_ids[UNKNOWN_RESIDUE] = self.unknown_residue_id
        elif UNKNOWN_RESIDUE in vocab:  # paper layout: the byte-level BPE's own "X"
            self.unknown_residue_id = vocab[UNKNOWN_RESIDUE]
        else:
            raise InputError(
                f"tokenizer has neither {UNKNOWN_RESIDUE_TOKEN} nor a text token {UNKNOWN_RESIDUE!r} "
                "to write an unknown residue with",
                source,
            )
        self._id_to_residue = {i: a for a, i in self.residue_ids.items()}
        if backend.eos_token_id is None:
            raise InputError("tokenizer has no eos token", source)
        if backend.pad_token_id is None:
            # GPT-2 style tokenizers have no pad token; padding is masked anyway, so eos serves.
            backend.pad_token = backend.eos_token
        self.backend_added_bos = backend_adds_bos(backend, self.bos_token_id)
        if not self.backend_added_bos:
            add_bos_post_processor(backend, self.bos_token_id)
        self._lut = self._residue_table()

    def _residue_table(self) -> np.ndarray:
        """ASCII code -> token id (-1: not a residue letter), lower case and RESIDUE_MAP included."""
        lut = np.full(128, -1, dtype=np.int64)
        for letter in STANDARD_RESIDUES | {UNKNOWN_RESIDUE}:
            tid = self.residue_ids.get(letter, self.unknown_residue_id)
            lut[ord(letter)] = lut[ord(letter.lower())] = tid
        for letter, target in RESIDUE_MAP.items():
            tid = self.residue_ids.get(target, self.unknown_residue_id)
            lut[ord(letter)] = lut[ord(letter.lower())] = tid
        return lut

    # ---------------------------------------------------------------- properties

    def __len__(self) -> int:
        """Number of token ids (BPE + special + added); the model's embedding needs this many rows."""
        return len(self.backend)

    @property
    def bos_token_id(self) -> int:
        bos = self.backend.bos_token_id
        return int(bos if bos is not None else self.backend.eos_token_id)

    @property
    def eos_token_id(self) -> int:
        return int(self.backend.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        return int(self.backend.pad_token_id)

    @property
    def unk_token_id(self) -> int | None:
        return self.backend.unk_token_id

    @property
    def special_ids(self) -> frozenset[int]:
        """bos, eos and pad: tokens without characters, dropped by ``decode(skip_special_tokens=True)``."""
        return frozenset({self.bos_token_id, self.eos_token_id, self.pad_token_id})

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab()

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return list(self.backend.convert_ids_to_tokens(list(ids)))

    def __repr__(self) -> str:
        return f"ProteinTokenizer(layout={self.layout!r}, size={len(self)}, source={str(self.source)!r})"

    # ---------------------------------------------------------------- encoding

    def _protein_ids(self, segment: str, start: int) -> list[int]:
        if segment.endswith("*"):
            segment = segment[:-1]
        if not segment:
            return []
        if not segment.isascii():
            i, ch = next((i, c) for i, c in enumerate(segment) if not c.isascii())
            raise ValueError(f"invalid residue {ch!r} at character {start + i} inside {PROTEIN_OPEN}")
        ids = self._lut[np.frombuffer(segment.encode("ascii"), dtype=np.uint8)]
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"invalid residue {segment[i]!r} at character {start + i} inside {PROTEIN_OPEN}")
        return ids.tolist()

    def encode_batch(self, texts: Sequence[str], *, add_bos: bool = True, add_eos: bool = False) -> list[Encoded]:
        """Encode many strings; all their text parts go through the BPE in one batch call.

        ``add_bos`` follows OPT (every sequence starts with bos); ``add_eos`` marks the end of a
        document, which packing for pre-training and answers for instruction tuning want.
        Raises ``ValueError`` naming the character for an invalid residue.
        """
        plans: list[list[tuple]] = []
        pieces: list[str] = []
        for number, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"expected str, got {type(text).__name__}")
            plan: list[tuple] = []
            pos = 0
            for m in _SEGMENT.finditer(text):
                if m.start() > pos:
                    plan.append(("text", len(pieces), pos))
                    pieces.append(text[pos : m.start()])
                open_end = m.start() + len(PROTEIN_OPEN)
                close_start = m.start(2) if m.group(2) else None
                try:
                    residues = self._protein_ids(m.group(1), open_end)
                except ValueError as exc:
                    raise ValueError(f"{exc} (text {number} of the batch)" if len(texts) > 1 else str(exc)) from None
                plan.append(("protein", m.start(), open_end, residues, close_start))
                pos = m.end()
            if pos < len(text):
                plan.append(("text", len(pieces), pos))
                pieces.append(text[pos:])
            plans.append(plan)
        encoded_pieces = self.backend(pieces, add_special_tokens=False, return_offsets_mapping=True) if pieces else None
        out: list[Encoded] = []
        for text, plan in zip(texts, plans):
            ids: list[int] = []
            offsets: list[tuple[int, int]] = []
            if add_bos:
                ids.append(self.bos_token_id)
                offsets.append((0, 0))
            for part in plan:
                if part[0] == "text":
                    _, k, base = part
                    assert encoded_pieces is not None
                    ids.extend(encoded_pieces["input_ids"][k])
                    offsets.extend((base + s, base + e) for s, e in encoded_pieces["offset_mapping"][k])
                else:
                    _, tag_start, open_end, residues, close_start = part
                    ids.append(self.protein_open_id)
                    offsets.append((tag_start, open_end))
                    ids.extend(residues)
                    offsets.extend((open_end + i, open_end + i + 1) for i in range(len(residues)))
                    if close_start is not None:
                        ids.append(self.protein_close_id)
                        offsets.append((close_start, close_start + len(PROTEIN_CLOSE)))
            if add_eos:
                ids.append(self.eos_token_id)
                offsets.append((len(text), len(text)))
            out.append(Encoded(ids, offsets))
        return out

    def encode_with_offsets(self, text: str, *, add_bos: bool = True, add_eos: bool = False) -> Encoded:
        return self.encode_batch([text], add_bos=add_bos, add_eos=add_eos)[0]

    def encode(self, text: str, *, add_bos: bool = True, add_eos: bool = False) -> list[int]:
        return self.encode_with_offsets(text, add_bos=add_bos, add_eos=add_eos).input_ids

    def __call__(
        self,
        text: str | Sequence[str],
        *,
        add_bos: bool = True,
        add_eos: bool = False,
        padding: bool | Literal["longest", "max_length", "do_not_pad"] = False,
        max_length: int | None = None,
        truncation: bool = False,
        padding_side: Literal["right", "left"] = "right",
        return_offsets_mapping: bool = False,
        return_tensors: str | None = None,
    ) -> Any:
        """Hugging Face style call: a ``BatchEncoding`` with ``input_ids``, ``attention_mask``
        and, on request, ``offset_mapping``; a single string gives unbatched lists.

        ``truncation`` cuts to ``max_length`` from the right (the training loop should rather
        refuse over-long examples: a cut answer teaches a wrong answer). Left padding is for
        batched generation.
        """
        from transformers import BatchEncoding

        single = isinstance(text, str)
        batch = self.encode_batch([text] if single else list(text), add_bos=add_bos, add_eos=add_eos)
        ids = [e.input_ids for e in batch]
        offs = [e.offsets for e in batch]
        if truncation:
            if max_length is None:
                raise ValueError("truncation needs max_length")
            ids = [x[:max_length] for x in ids]
            offs = [x[:max_length] for x in offs]
        mask = [[1] * len(x) for x in ids]
        if padding and padding != "do_not_pad":
            if padding == "max_length":
                if max_length is None:
                    raise ValueError("padding='max_length' needs max_length")
                width = max_length
            else:
                width = max(len(x) for x in ids) if ids else 0
            for i in range(len(ids)):
                n = width - len(ids[i])
                if n <= 0:
                    continue
                if padding_side == "left":
                    ids[i] = [self.pad_token_id] * n + ids[i]
                    mask[i] = [0] * n + mask[i]
                    offs[i] = [(0, 0)] * n + offs[i]
                else:
                    ids[i] = ids[i] + [self.pad_token_id] * n
                    mask[i] = mask[i] + [0] * n
                    offs[i] = offs[i] + [(0, 0)] * n
        data: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if return_offsets_mapping:
            data["offset_mapping"] = offs
        if single:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, tensor_type=return_tensors)

    # ---------------------------------------------------------------- decoding

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = True) -> str:
        """Ids back to the plain notation; ``decode(encode(s)) == s`` for normalised ``s``.

        Inside ``<protein>`` a residue token is its letter; any other token decodes as text
        (the paper layout's ``X``, or whatever a model generated). A residue token *outside*
        a protein segment keeps its ``Ƥ`` spelling, so such a generation error stays visible.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        skip = self.special_ids if skip_special_tokens else frozenset()
        out: list[str] = []
        run: list[int] = []
        inside = False

        def flush() -> None:
            if run:
                out.append(self.backend.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False))
                run.clear()

        for tid in ids:
            tid = int(tid)
            if tid in skip:
                continue
            if tid == self.protein_open_id:
                flush()
                out.append(PROTEIN_OPEN)
                inside = True
            elif tid == self.protein_close_id:
                flush()
                out.append(PROTEIN_CLOSE)
                inside = False
            elif inside and tid in self._id_to_residue:
                flush()
                out.append(self._id_to_residue[tid])
            else:
                run.append(tid)
        flush()
        return "".join(out)

    def batch_decode(self, batch: Iterable[Iterable[int]], *, skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    @staticmethod
    def to_backend_notation(text: str) -> str:
        """``<protein>MK</protein>`` -> ``<protein>ƤMƤK</protein>``: what the folder's backend
        (or the paper's checkpoint opened with plain ``AutoTokenizer``) expects."""

        def sub(m: re.Match[str]) -> str:
            return PROTEIN_OPEN + "".join(RESIDUE_PREFIX + c for c in m.group(1)) + m.group(2)

        return _SEGMENT.sub(sub, text)

    def backend_text(self, text: str) -> str:
        """``text`` as plain ``transformers`` must be given it to get :meth:`encode`'s ids: each
        protein segment in the Ƥ notation, residues normalised as :meth:`encode` does (``u`` ->
        ``ƤC``; in the paper layout an unknown residue is the text token ``X``, which has no ``Ƥ``).
        Raises ``ValueError`` for an invalid residue, like :meth:`encode`."""

        def sub(m: re.Match[str]) -> str:
            ids = self._protein_ids(m.group(1), m.start(1))
            return PROTEIN_OPEN + "".join(self.backend.convert_ids_to_tokens(ids)) + m.group(2)

        return _SEGMENT.sub(sub, text)

    def definition(self) -> str:
        """The backend's ``tokenizer.json`` with its post-processor set to the plain ``$A`` template:
        everything that decides :meth:`encode`'s ids (which never runs the post-processor), so a
        hash of it (the training data caches') is the same for a folder saved with or without
        the bos template (the two serialisations of a folder saved before that rule are identical)."""
        from tokenizers import Tokenizer, processors

        copy = Tokenizer.from_str(self.backend.backend_tokenizer.to_str())
        copy.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1", special_tokens=[])
        return copy.to_str()

    # ---------------------------------------------------------------- saving

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the backend's Hugging Face files and the layout marker into ``path``.

        Files are written in place (like ``transformers``); callers who need the folder to
        appear atomically write into an :func:`~instructprotein.atomic.atomic_dir`
        (:func:`~instructprotein.model.factory.save_model` and :func:`train_tokenizer` do).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.backend.save_pretrained(str(path))
        _portable_tokenizer_class(path)
        marker = {
            "format": MARKER_FORMAT,
            "version": MARKER_VERSION,
            "layout": self.layout,
            "protein_open": PROTEIN_OPEN,
            "protein_close": PROTEIN_CLOSE,
            "residue_prefix": RESIDUE_PREFIX,
            "unknown_residue_token": self.backend.convert_ids_to_tokens(self.unknown_residue_id),
            "residue_map": RESIDUE_MAP,
            "notation": "the backend reads proteins as <protein>ƤMƤK...</protein>; "
            "instructprotein.model.tokenizer.load_tokenizer reads <protein>MK...</protein>",
        }
        (path / MARKER_FILE).write_text(json.dumps(marker, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def _portable_tokenizer_class(path: Path) -> None:
    """transformers 5 writes ``TokenizersBackend``, a class name transformers 4 does not know;
    ``PreTrainedTokenizerFast`` loads the same ``tokenizer.json`` in both. ``add_bos_token``
    is written out (transformers 5 leaves it out): readers that go by the config rather than
    ``tokenizer.json`` (and transformers 5 itself, which rebuilds its post-processor from it)
    then add bos as the model was trained."""
    config = path / "tokenizer_config.json"
    if not config.exists():
        return
    data = json.loads(config.read_text(encoding="utf-8"))
    if data.get("tokenizer_class") == "TokenizersBackend":
        data["tokenizer_class"] = "PreTrainedTokenizerFast"
    data["add_bos_token"] = True
    data["add_eos_token"] = False
    config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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


# -------------------------------------------------------------------- answer masks


def answer_token_mask(offsets: Sequence[Sequence[int]], span: tuple[int, int]) -> list[bool]:
    """Which tokens belong to the answer ``text[span[0]:span[1]]``.

    A token counts when its characters overlap the span: the BPE token `` Based`` that
    carries the separator space and the answer's first letter is an answer token, the ``:``
    before it is not. A zero-width token exactly at ``span[1]`` counts too: that is the eos
    appended after an answer that ends the text (the model must learn to stop). bos and
    padding, ``(0, 0)``, never count (unless the answer is empty and starts at 0).

    For causal-LM labels, token ``i`` is *predicted* from tokens ``< i``: set
    ``labels[i] = input_ids[i] if mask[i] else -100`` and let the model shift.
    """
    start, end = span
    mask: list[bool] = []
    for s, e in offsets:
        if s == e:
            mask.append(s == end and end > start)
        else:
            mask.append(e > start and s < end)
    return mask


# -------------------------------------------------------------------- loading


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


# -------------------------------------------------------------------- training


def text_parts(document: str) -> Iterator[str]:
    """The text outside protein segments of a document (a protein-only document yields nothing)."""
    pos = 0
    for m in _SEGMENT.finditer(document):
        if m.start() > pos:
            yield document[pos : m.start()]
        pos = m.end()
    if pos < len(document):
        yield document[pos:]


def corpus_texts(corpus_dir: str | Path, *, limit: int | None = None) -> Iterator[str]:
    """Text documents of a pre-training corpus folder (``shard-*.jsonl``), protein records skipped."""
    shards = sorted(Path(corpus_dir).glob("shard-*.jsonl"))
    if not shards:
        raise InputError("no shard-*.jsonl files; build the corpus first", corpus_dir)
    n = 0
    for shard in shards:
        with open(shard, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text, source = record["text"], record.get("source")
                except (ValueError, KeyError, TypeError) as exc:
                    raise InputError(f"expected a JSON object with 'text' ({exc})", shard, number) from exc
                if source == "protein":
                    continue
                yield text
                n += 1
                if limit is not None and n >= limit:
                    return


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | Path | None = None,
    *,
    min_frequency: int = 2,
) -> ProteinTokenizer:
    """Train a byte-level BPE on the text of ``texts`` and add the 23 protein tokens.

    Protein segments are cut out of every document first (protein-only documents
    contribute nothing): residues have their own tokens, and BPE merges learnt on sequences
    would only waste vocabulary. ``vocab_size`` counts the BPE tokens including the four
    special ones; the tokenizer's length is ``vocab_size + 23`` (fewer BPE tokens if the
    text cannot support that many merges). Byte-level, no normaliser: any text round-trips
    exactly, and no character is ever unknown. Saved to ``out_dir`` atomically when given.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise ValueError(f"vocab_size {vocab_size} is below the 256 byte tokens + specials a byte-level BPE needs")
    seen = 0

    def parts() -> Iterator[str]:
        nonlocal seen
        for doc in texts:
            for part in text_parts(doc):
                if part.strip():
                    seen += 1
                    yield part

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[SPECIAL_TOKENS[k] for k in ("bos_token", "pad_token", "eos_token", "unk_token")],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(parts(), trainer)
    if seen == 0:
        raise InputError("no text documents to train the tokenizer on (only proteins or nothing)", out_dir)
    backend = PreTrainedTokenizerFast(tokenizer_object=bpe, **SPECIAL_TOKENS)
    add_protein_tokens(backend)
    tokenizer = ProteinTokenizer(backend, "instructprotein", Path(out_dir) if out_dir is not None else None)
    if out_dir is not None:
        with atomic_dir(out_dir) as tmp:
            tokenizer.save_pretrained(tmp)
    return tokenizer
