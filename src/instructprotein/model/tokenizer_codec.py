"""Encoding and decoding: :class:`ProteinTokenizer` turns the plain notation
``<protein>MKT</protein>`` plus text into token ids and character offsets, and back.

Kept apart from opening folders and from training a tokenizer, which both only hand it a backend
(the design is described in :mod:`instructprotein.model.tokenizer`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from instructprotein.errors import InputError
from instructprotein.model.tokenizer_vocab import (
    _SEGMENT,
    MARKER_FILE,
    MARKER_FORMAT,
    MARKER_VERSION,
    PAPER_PROTEIN_TOKENS,
    RESIDUE_LETTERS,
    RESIDUE_PREFIX,
    UNKNOWN_RESIDUE_TOKEN,
    Layout,
    add_bos_post_processor,
    backend_adds_bos,
)
from instructprotein.prompt.render import (
    PROTEIN_CLOSE,
    PROTEIN_OPEN,
    RESIDUE_MAP,
    STANDARD_RESIDUES,
    UNKNOWN_RESIDUE,
)


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
