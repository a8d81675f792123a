"""Training data: tokenised once, packed into rows of the context length, cached in the run folder.

Pre-training (:func:`prepare_pretrain_data`)
    Every corpus document becomes ``bos + document + eos``; documents are concatenated and
    the stream is cut into rows of ``context_length`` tokens: no padding (only the very last
    row of a split is padded), and a long document simply continues in the next row.
    Attention runs over the whole row (positions ``0..T-1``), across document boundaries,
    as OPT, GPT-2/3 and Llama were pre-trained: the ``eos``/``bos`` pair tells the model a
    new document began, and the plain causal mask keeps the fastest attention kernels.
    Labels: every token except each document's ``bos`` (nothing predicts where a document
    begins) and padding. A held-out slice of *documents* (``val_fraction``, at least one)
    is packed the same way for the validation loss, so no validation text is ever trained on.

Instruction tuning (:func:`~instructprotein.train.instruction_data.prepare_instruction_data`, in its own module)
    Every example is ``bos + text + eos`` with the character offsets of its tokens; labels
    are the tokens that overlap the answer span (:func:`~instructprotein.model.tokenizer.answer_token_mask`,
    the closing ``eos`` included, so the model learns to stop) or, with ``loss_on="all"``
    (the paper's whole-sequence loss), every token but ``bos``. Examples are packed
    several per row (best fit over a window of 64 open rows, in a seeded order) and each
    keeps its own positions ``0..L-1``; the loop turns the positions into a block-diagonal
    causal mask, so attention never crosses from one example into another and a packed
    row trains exactly as its examples would one by one (a test checks it). ``pack=False``
    gives one example per padded row instead. An example longer than the context
    (``long``): ``crop`` (default) shortens the protein in its prompt the way inference
    fits a long protein into the model (:func:`~instructprotein.prompt.fit_residues`:
    its first residues, one ``X``, its last residues), so training sees what the model will
    be asked; an example whose protein is its answer (design) cannot be cut without teaching
    a wrong answer and is left out and counted. ``drop`` leaves every over-long example
    out (counted); ``error`` stops before any training step, listing how many and the longest.

Cache layout (``run_dir/data/<stage>/``): ``meta.json`` (format, fingerprint of the
inputs, tokenizer and settings; row counts; statistics) and per split raw little-endian
arrays ``<split>.ids`` (uint16 when the vocabulary fits, else int32), ``<split>.mask``
(uint8 label mask) and, for instruction data, ``<split>.pos`` (uint16 positions), each
``rows x context_length``, opened with ``numpy.memmap``. The folder is written aside and
renamed, so it is complete or absent; a changed input, tokenizer or setting changes the
fingerprint and the data are rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from instructprotein.atomic import atomic_dir
from instructprotein.errors import InputError
from instructprotein.model.tokenizer import ProteinTokenizer
from instructprotein.progress import Progress

if TYPE_CHECKING:
    import torch

FORMAT = "instructprotein-packed"
VERSION = 1
CHUNK = 2048
"""Documents / examples tokenised per batch call (the Rust BPE parallelises inside a call)."""
OPEN_ROWS = 64
"""Rows kept open by the instruction packer; a larger window packs tighter, a smaller one keeps the order closer."""
LOSS_WEIGHTINGS = ("token", "example")
"""How label tokens share a step's loss. ``token``: the mean over label tokens (pre-training,
and the usual choice). ``example``: the mean over examples of each example's mean token loss.
Why the second exists: answers differ in length by a factor of ten (a GO-term list or a
design protein against "No."), so under ``token`` weighting the long answers set the
gradient. Measured on the tiny default's instructions: yes/no questions are 32 % of the
examples but 15 % of the answer tokens, GO-term lists 16 % and 29 %; the one word that
decides a yes/no answer carries about 1 % of the loss."""


# --------------------------------------------------------------------------- packed rows


@dataclass
class PackedRows:
    """Rows of ``context_length`` tokens: ids, label mask and (instruction data) per-example positions."""

    input_ids: np.ndarray
    loss_mask: np.ndarray
    position_ids: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def context_length(self) -> int:
        return int(self.input_ids.shape[1])

    def label_count(self, rows: np.ndarray) -> int:
        """Tokens of ``rows`` that carry a label after the causal shift (position 0 never does)."""
        return int(self.loss_mask[np.sort(rows), 1:].sum())

    def label_weights(self, rows: np.ndarray, weighting: str = "token") -> np.ndarray:
        """``[len(rows), T]`` float32 weight of each label token (0 where there is none).

        ``token``: 1 per label token, so a 300-residue design answer weighs 300 times a
        one-word one. ``example``: 1 / (label tokens of its example), so every example weighs
        the same whatever its answer's length (see :data:`LOSS_WEIGHTINGS`).
        """
        if weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss weighting must be one of {', '.join(LOSS_WEIGHTINGS)}, not {weighting!r}")
        mask = np.asarray(self.loss_mask[rows], dtype=bool).copy()
        mask[:, 0] = False  # no token predicts position 0
        if weighting == "token":
            return mask.astype(np.float32)
        if self.position_ids is None:
            raise ValueError("example weighting needs rows of whole examples (instruction data), not a text stream")
        t = mask.shape[1]
        segment = np.cumsum(np.asarray(self.position_ids[rows]) == 0, axis=1) + np.arange(len(mask))[:, None] * (t + 1)
        counts = np.bincount(segment.ravel(), weights=mask.ravel())
        return np.where(mask, 1.0 / np.maximum(counts[segment], 1.0), 0.0).astype(np.float32)

    def label_total(self, rows: np.ndarray, weighting: str = "token") -> float:
        """What the loss of ``rows`` is divided by: label tokens (``token``) or examples with a label (``example``)."""
        if weighting == "token":
            return float(self.label_count(rows))
        return float(self.label_weights(np.sort(rows), weighting).sum(dtype=np.float64))

    def batch(self, rows: np.ndarray, weighting: str = "token") -> dict[str, torch.Tensor | None]:
        """``input_ids``, ``labels`` (-100 where no loss), ``position_ids`` (None: one causal row) and
        ``weights`` (None for ``token`` weighting: every label counts 1)."""
        import torch

        ids = torch.from_numpy(np.asarray(self.input_ids[rows], dtype=np.int64))
        mask = torch.from_numpy(np.asarray(self.loss_mask[rows], dtype=bool))
        labels = ids.masked_fill(~mask, -100)
        pos = None
        if self.position_ids is not None:
            pos = torch.from_numpy(np.asarray(self.position_ids[rows], dtype=np.int64))
        weights = None if weighting == "token" else torch.from_numpy(self.label_weights(rows, weighting))
        return {"input_ids": ids, "labels": labels, "position_ids": pos, "weights": weights}


@dataclass
class StageData:
    """What one training stage reads: packed train and validation rows and how they were made."""

    train: PackedRows
    valid: PackedRows
    stats: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def attention(self) -> str:
        """``causal`` (one causal sequence per row) or ``document`` (examples do not see each other)."""
        return "document" if self.train.position_ids is not None else "causal"


def block_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """``[B, 1, T, T]`` boolean mask (True = may attend): causal, and only inside one example.

    An example starts where its position restarts at 0; padding at the end of a row forms
    its own segment. ``transformers`` passes a 4-D mask to the attention unchanged.
    """
    import torch

    segment = torch.cumsum((position_ids == 0).to(torch.int32), dim=1)
    same = segment[:, :, None] == segment[:, None, :]
    t = position_ids.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=position_ids.device).tril()
    return (same & causal)[:, None, :, :]


# --------------------------------------------------------------------------- cache files


def _id_dtype(tokenizer: ProteinTokenizer) -> np.dtype:
    return np.dtype("<u2") if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.dtype("<i4")


class _RowWriter:
    """Appends rows of one split to raw files in a folder."""

    def __init__(self, folder: Path, split: str, context: int, id_dtype: np.dtype, positions: bool):
        self.context = context
        self.id_dtype = id_dtype
        self.rows = 0
        # kept open across add() calls and closed by close(): rows stream to disk as they are packed
        self.files = {
            "ids": open(folder / f"{split}.ids", "wb"),  # noqa: SIM115
            "mask": open(folder / f"{split}.mask", "wb"),  # noqa: SIM115
        }
        if positions:
            self.files["pos"] = open(folder / f"{split}.pos", "wb")  # noqa: SIM115

    def add(self, ids: np.ndarray, mask: np.ndarray, pos: np.ndarray | None = None) -> None:
        if not len(ids):
            return
        assert ids.shape[1] == self.context
        self.files["ids"].write(np.ascontiguousarray(ids, dtype=self.id_dtype).tobytes())
        self.files["mask"].write(np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
        if "pos" in self.files:
            assert pos is not None
            self.files["pos"].write(np.ascontiguousarray(pos, dtype="<u2").tobytes())
        self.rows += len(ids)

    def close(self) -> int:
        for fh in self.files.values():
            fh.close()
        return self.rows


def load_packed(folder: str | Path) -> StageData:
    """Open a cache folder written by :func:`prepare_pretrain_data` / :func:`prepare_instruction_data`."""
    folder = Path(folder)
    meta = _read_meta(folder)
    if meta is None:
        raise InputError("no packed training data here", folder)
    context = int(meta["context_length"])
    dtype = np.dtype(meta["id_dtype"])

    def split(name: str) -> PackedRows:
        rows = int(meta["rows"][name])
        shape = (rows, context)
        if rows == 0:
            return PackedRows(
                np.zeros(shape, dtype), np.zeros(shape, bool), np.zeros(shape, "<u2") if meta["positions"] else None
            )
        ids = np.memmap(folder / f"{name}.ids", dtype=dtype, mode="r", shape=shape)
        mask = np.memmap(folder / f"{name}.mask", dtype=np.bool_, mode="r", shape=shape)
        pos = np.memmap(folder / f"{name}.pos", dtype="<u2", mode="r", shape=shape) if meta["positions"] else None
        return PackedRows(ids, mask, pos)

    return StageData(split("train"), split("valid"), meta.get("stats", {}), folder)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    path = folder / "meta.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        return None
    return meta


def _cached(folder: Path, fingerprint: str) -> StageData | None:
    meta = _read_meta(folder)
    if meta is None or meta.get("fingerprint") != fingerprint:
        return None
    return load_packed(folder)


def tokenizer_fingerprint(tokenizer: ProteinTokenizer) -> str:
    """Hash of the complete tokenizer definition (vocabulary, merges, added and special tokens;
    not the post-processor, which only plain ``transformers`` calls run)."""
    h = hashlib.sha256(tokenizer.definition().encode("utf-8"))
    h.update(f"{tokenizer.bos_token_id},{tokenizer.eos_token_id},{tokenizer.pad_token_id}".encode())
    return h.hexdigest()


def files_fingerprint(paths: Sequence[Path]) -> list[list[Any]]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _fingerprint(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _write_meta(
    folder: Path,
    fingerprint: str,
    context: int,
    id_dtype: np.dtype,
    positions: bool,
    rows: dict[str, int],
    stats: dict[str, Any],
) -> None:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": fingerprint,
        "context_length": context,
        "id_dtype": id_dtype.str,
        "positions": positions,
        "rows": rows,
        "stats": stats,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- pre-training corpus


def corpus_shards(corpus_dir: str | Path) -> list[Path]:
    folder = Path(corpus_dir)
    if not folder.is_dir():
        raise InputError("corpus folder not found; build it with `instructprotein corpus build`", folder)
    shards = sorted(folder.glob("shard-*.jsonl"))
    if not shards:
        raise InputError(
            "no shard-*.jsonl files: not a corpus folder (build it with `instructprotein corpus build`)", folder
        )
    return shards


def count_documents(shards: Sequence[Path]) -> int:
    """Non-blank lines of the shards (one document each), counted without parsing."""
    n = 0
    for shard in shards:
        with open(shard, "rb") as fh:
            for line in fh:
                if line.strip():
                    n += 1
    return n


def first_document(shards: Sequence[Path]) -> str | None:
    """The first non-blank line of the shards (cheap emptiness check), or None."""
    for shard in shards:
        with open(shard, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    return line
    return None


def iter_documents(shards: Sequence[Path]) -> Iterator[tuple[str, str | None]]:
    """``(text, source)`` of every corpus record, in shard order."""
    for shard in shards:
        with open(shard, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record["text"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise InputError(f"expected a JSON object with 'text' ({exc})", shard, number) from exc
                if not isinstance(text, str):
                    raise InputError("'text' must be a string", shard, number)
                yield text, record.get("source")


class _StreamPacker:
    """Concatenates token runs and emits full rows; the remainder becomes one padded row at the end."""

    def __init__(self, writer: _RowWriter, pad_id: int):
        self.writer = writer
        self.pad_id = pad_id
        self.ids: list[np.ndarray] = []
        self.mask: list[np.ndarray] = []
        self.pending = 0
        self.tokens = 0
        self.labels = 0

    def add(self, ids: np.ndarray, mask: np.ndarray) -> None:
        self.ids.append(ids)
        self.mask.append(mask)
        self.pending += len(ids)
        self.tokens += len(ids)
        if self.pending >= 64 * self.writer.context:
            self._emit(final=False)

    def _emit(self, final: bool) -> None:
        if not self.ids:
            return
        t = self.writer.context
        ids = np.concatenate(self.ids)
        mask = np.concatenate(self.mask)
        full = len(ids) // t
        self.writer.add(ids[: full * t].reshape(full, t), mask[: full * t].reshape(full, t))
        self.labels += int(mask[: full * t].reshape(full, t)[:, 1:].sum())
        rest_ids, rest_mask = ids[full * t :], mask[full * t :]
        self.ids, self.mask, self.pending = [rest_ids], [rest_mask], len(rest_ids)
        if final and len(rest_ids):
            row = np.full((1, t), self.pad_id, dtype=np.int64)
            row_mask = np.zeros((1, t), dtype=bool)
            row[0, : len(rest_ids)] = rest_ids
            row_mask[0, : len(rest_mask)] = rest_mask
            self.writer.add(row, row_mask)
            self.labels += int(row_mask[:, 1:].sum())
            self.ids, self.mask, self.pending = [], [], 0

    def close(self) -> int:
        self._emit(final=True)
        return self.writer.close()


def prepare_pretrain_data(
    corpus_dir: str | Path,
    tokenizer: ProteinTokenizer,
    context_length: int,
    cache_dir: str | Path,
    *,
    seed: int = 0,
    val_fraction: float = 0.01,
    progress: Progress | None = None,
) -> StageData:
    """Tokenise and pack a corpus folder (``shard-*.jsonl``), or reuse the cache in ``cache_dir``.

    ``val_fraction`` of the documents (at least one; chosen by ``seed``) are held out for the
    validation loss. Raises :class:`InputError` for a missing, unreadable or empty corpus.
    """
    progress = progress or Progress()
    cache = Path(cache_dir)
    shards = corpus_shards(corpus_dir)
    fingerprint = _fingerprint(
        kind="pretrain",
        files=files_fingerprint(shards),
        tokenizer=tokenizer_fingerprint(tokenizer),
        context=context_length,
        seed=seed,
        val_fraction=val_fraction,
        version=VERSION,
    )
    hit = _cached(cache, fingerprint)
    if hit is not None:
        return hit
    n_docs = count_documents(shards)
    if n_docs == 0:
        raise InputError("the corpus is empty (no documents in its shards)", corpus_dir)
    if n_docs < 2:
        raise InputError("the corpus has one document: nothing to hold out for the validation loss", corpus_dir)
    n_val = min(n_docs - 1, max(1, round(n_docs * val_fraction)))
    is_val = np.zeros(n_docs, dtype=bool)
    is_val[np.random.default_rng(seed).choice(n_docs, size=n_val, replace=False)] = True

    id_dtype = _id_dtype(tokenizer)
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    stats: dict[str, Any] = {"documents": {"train": 0, "valid": 0}, "empty_documents": 0, "by_source": {}}
    with atomic_dir(cache) as tmp:
        packers = {
            split: _StreamPacker(_RowWriter(tmp, split, context_length, id_dtype, positions=False), pad)
            for split in ("train", "valid")
        }

        def flush(texts: list[str], splits: list[str]) -> None:
            for enc, split in zip(tokenizer.encode_batch(texts, add_bos=False, add_eos=False), splits):
                ids = np.empty(len(enc.input_ids) + 2, dtype=np.int64)
                ids[0], ids[-1] = bos, eos
                ids[1:-1] = enc.input_ids
                mask = np.ones(len(ids), dtype=bool)
                mask[0] = False  # nothing predicts where a document begins
                packers[split].add(ids, mask)

        with progress.step("tokenising and packing the corpus", total=n_docs) as bar:
            texts: list[str] = []
            splits: list[str] = []
            for number, (text, source) in enumerate(iter_documents(shards)):
                if number >= n_docs:  # a shard grew while we read it
                    break
                if not text.strip():
                    stats["empty_documents"] += 1
                    bar.advance()
                    continue
                split = "valid" if is_val[number] else "train"
                stats["documents"][split] += 1
                key = source or "text"
                stats["by_source"][key] = stats["by_source"].get(key, 0) + 1
                texts.append(text)
                splits.append(split)
                if len(texts) >= CHUNK:
                    try:
                        flush(texts, splits)
                    except ValueError as exc:  # an invalid residue inside <protein>
                        raise InputError(f"cannot tokenise a document ({exc})", corpus_dir) from exc
                    bar.advance(len(texts))
                    texts, splits = [], []
            if texts:
                try:
                    flush(texts, splits)
                except ValueError as exc:
                    raise InputError(f"cannot tokenise a document ({exc})", corpus_dir) from exc
                bar.advance(len(texts))
        for split in ("train", "valid"):
            if stats["documents"][split] == 0:
                raise InputError(f"the corpus has no non-empty document for the {split} split", corpus_dir)
        rows = {split: p.close() for split, p in packers.items()}
        stats["tokens"] = {split: p.tokens for split, p in packers.items()}
        stats["label_tokens"] = {split: p.labels for split, p in packers.items()}
        stats["rows"] = rows
        stats["padding_fraction"] = {
            split: round(1 - packers[split].tokens / max(1, rows[split] * context_length), 6) for split in rows
        }
        stats["attention"] = "causal over the row (documents separated by eos + bos)"
        _write_meta(tmp, fingerprint, context_length, id_dtype, False, rows, stats)
    return load_packed(cache)


# --------------------------------------------------------------------------- data order


def epoch_order(rows: int, epoch: int, seed: int) -> np.ndarray:
    """The permutation of the rows in ``epoch``: a pure function of (rows, epoch, seed)."""
    return np.random.default_rng([seed, epoch]).permutation(rows)


class RowSchedule:
    """Which rows each optimiser step reads: global row ``i`` is ``epoch_order(i // rows)[i % rows]``.

    A run's data position is the number of rows it has read: a resumed run reads exactly
    what the killed one would have read next, and the same global batch is read whatever
    the number of processes (process ``p`` of ``P`` takes the ``p``-th of ``P`` equal
    slices of the batch and cuts it into micro-batches).
    """

    def __init__(self, rows: int, rows_per_batch: int, seed: int):
        if rows <= 0:
            raise InputError("no training rows")
        self.rows = rows
        self.rows_per_batch = rows_per_batch
        self.seed = seed
        self._epoch = -1
        self._order = np.empty(0, dtype=np.int64)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._order = epoch_order(self.rows, epoch, self.seed)
            self._epoch = epoch
        return self._order

    def rows_at(self, rows_seen: int) -> np.ndarray:
        """The global batch that starts after ``rows_seen`` rows."""
        out = np.empty(self.rows_per_batch, dtype=np.int64)
        for k in range(self.rows_per_batch):
            i = rows_seen + k
            out[k] = self._perm(i // self.rows)[i % self.rows]
        return out

    def epoch(self, rows_seen: int) -> float:
        return rows_seen / self.rows

    @staticmethod
    def split(global_rows: np.ndarray, process: int, processes: int, micro_rows: int) -> list[np.ndarray]:
        """This process's micro-batches of a global batch."""
        per = len(global_rows) // processes
        mine = global_rows[process * per : (process + 1) * per]
        return [mine[i : i + micro_rows] for i in range(0, len(mine), micro_rows)]
