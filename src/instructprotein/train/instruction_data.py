"""Instruction-tuning data: every example tokenised with its answer's label mask, fitted to the
context by the prompt contract, and packed several per row (cached in the run folder).

Every example is ``bos + text + eos`` with the character offsets of its tokens; labels
are the tokens that overlap the answer span (:func:`~instructprotein.model.tokenizer.answer_token_mask`,
the closing ``eos`` included, so the model learns to stop) or, with ``loss_on="all"``
(the paper's whole-sequence loss), every token but ``bos``. Examples are packed several per
row (best fit over a window of 64 open rows, in a seeded order) and each keeps its own
positions ``0..L-1`` (see :mod:`~instructprotein.train.data` for the rows and the cache).
An example longer than the context (``long``): ``crop`` (default) fits its prompt the way
inference does (:func:`~instructprotein.prompt.fit`); ``drop`` leaves every over-long example
out (counted); ``error`` stops before any training step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructprotein.atomic import atomic_dir
from instructprotein.errors import InputError
from instructprotein.model.tokenizer import ProteinTokenizer, answer_token_mask
from instructprotein.progress import Progress
from instructprotein.train.data import (
    CHUNK,
    OPEN_ROWS,
    VERSION,
    StageData,
    _cached,
    _fingerprint,
    _id_dtype,
    _RowWriter,
    _write_meta,
    files_fingerprint,
    load_packed,
    tokenizer_fingerprint,
)

REQUIRED_COLUMNS = ("text", "answer_start", "answer_end")


@dataclass
class _Example:
    ids: np.ndarray
    mask: np.ndarray
    prompt_tokens: int = 0  # tokens before the answer (bos included)


class _RowPacker:
    """Best fit over a window of open rows; each example keeps positions ``0..L-1``."""

    def __init__(self, writer: _RowWriter, pad_id: int, pack: bool):
        self.writer = writer
        self.pad_id = pad_id
        self.window = OPEN_ROWS if pack else 1
        t = writer.context
        self.ids = np.full((self.window, t), pad_id, dtype=np.int64)
        self.mask = np.zeros((self.window, t), dtype=bool)
        self.pos = np.zeros((self.window, t), dtype=np.int64)
        self.fill = np.zeros(self.window, dtype=np.int64)
        self.used = np.zeros(self.window, dtype=bool)
        self.pack = pack
        self.out_ids: list[np.ndarray] = []
        self.out_mask: list[np.ndarray] = []
        self.out_pos: list[np.ndarray] = []
        self.tokens = 0
        self.labels = 0
        self.examples = 0

    def add(self, ex: _Example) -> None:
        n = len(ex.ids)
        t = self.writer.context
        free = np.where(self.used, t - self.fill, -1)
        fits = np.flatnonzero(free >= n) if self.pack else np.empty(0, dtype=np.int64)
        if fits.size:  # best fit: the open row this example fills the most
            r = int(fits[np.argmin(free[fits])])
        else:
            empty = np.flatnonzero(~self.used)
            if empty.size:
                r = int(empty[0])
            else:  # window full: emit the fullest row, reuse its slot
                r = int(np.argmax(self.fill))
                self._emit(r)
        f = int(self.fill[r])
        self.ids[r, f : f + n] = ex.ids
        self.mask[r, f : f + n] = ex.mask
        self.pos[r, f : f + n] = np.arange(n)
        self.fill[r] += n
        self.used[r] = True
        self.tokens += n
        self.labels += int(ex.mask.sum())  # mask[0] is bos, never a label
        self.examples += 1
        if not self.pack:
            self._emit(r)

    def _emit(self, r: int) -> None:
        t = self.writer.context
        f = int(self.fill[r])
        pos = self.pos[r].copy()
        pos[f:] = np.arange(t - f)  # padding: a segment of its own, never a label
        self.out_ids.append(self.ids[r].copy())
        self.out_mask.append(self.mask[r].copy())
        self.out_pos.append(pos)
        self.ids[r] = self.pad_id
        self.mask[r] = False
        self.pos[r] = 0
        self.fill[r] = 0
        self.used[r] = False
        if len(self.out_ids) >= 1024:
            self._flush()

    def _flush(self) -> None:
        if self.out_ids:
            self.writer.add(np.stack(self.out_ids), np.stack(self.out_mask), np.stack(self.out_pos))
            self.out_ids, self.out_mask, self.out_pos = [], [], []

    def close(self) -> int:
        for r in np.flatnonzero(self.used):
            self._emit(int(r))
        self._flush()
        return self.writer.close()


def encode_examples(
    tokenizer: ProteinTokenizer,
    texts: Sequence[str],
    spans: Sequence[tuple[int, int]],
    loss_on: str,
) -> list[_Example]:
    """``bos + text + eos`` with the label mask: answer tokens (and eos) or every token but bos."""
    if loss_on not in ("answer", "all"):
        raise ValueError(f"loss_on must be 'answer' or 'all', not {loss_on!r}")
    out = []
    for enc, span in zip(tokenizer.encode_batch(texts, add_bos=True, add_eos=True), spans):
        ids = np.asarray(enc.input_ids, dtype=np.int64)
        answer = np.asarray(answer_token_mask(enc.offsets, span), dtype=bool)
        mask = answer.copy() if loss_on == "answer" else np.ones(len(ids), dtype=bool)
        mask[0] = False  # bos
        first = np.flatnonzero(answer)
        out.append(_Example(ids, mask, int(first[0]) if len(first) else len(ids)))
    return out


LONG_MODES = ("crop", "drop", "error")


def _prompt_over(ex: _Example, n: int, context: int) -> int:
    """Tokens the example's prompt must lose: the rule of inference, where a prompt longer than
    ``context - answer_room`` has its protein cut to that (:func:`~instructprotein.prompt.prompt_budget`:
    here ``context - max(answer_room, answer)``, so the whole example fits and a cut prompt
    ends at the same place whatever its answer's length)."""
    from instructprotein.prompt import prompt_budget

    prompt = int(ex.prompt_tokens)
    return max(0, prompt - prompt_budget(context, n - prompt))


def fit_prompt_protein(text: str, span: tuple[int, int], max_residues: int) -> tuple[str, tuple[int, int]]:
    """The example with its prompt's protein capped at ``max_residues`` (the model's own cut,
    :func:`~instructprotein.prompt.cap_protein`) and its answer span moved with it; unchanged
    when it is shorter or absent (design: the protein is the answer)."""
    from dataclasses import replace

    from instructprotein.prompt import Prompt, cap_protein

    parsed = Prompt.parse(text, span)
    if parsed is None or len(parsed.protein or "") <= max_residues:
        return text, span
    return replace(
        parsed, protein=cap_protein(parsed.protein or "", cut_above=None, max_residues=max_residues)
    ).render()


def _crop_protein(
    tokenizer: ProteinTokenizer, text: str, span: tuple[int, int], ex: _Example, n: int, loss_on: str, context: int
) -> _Example | None:
    """The example fitted as inference fits its prompts (:func:`~instructprotein.prompt.fit`:
    the protein of its prompt cut, never below :func:`~instructprotein.prompt.shortest_kept`),
    or None when it cannot be: no protein in its prompt (design: the protein is the answer),
    or a protein that would be cut to a few residues. The evidence block is kept whole: an
    example whose prompt does not fit with it is left out rather than taught on less evidence
    than its answer was written from."""
    from instructprotein.prompt import Prompt, fit

    parsed = Prompt.parse(text, span)
    if parsed is None:
        return None
    prompt = int(ex.prompt_tokens)
    fitted = fit(
        parsed,
        lambda _p: prompt,
        context_len=context,
        answer_tokens=n - prompt,
        tokens=prompt,
        evidence_gives_way=False,
    )
    if not fitted.fits:
        return None
    new_text, new_span = fitted.prompt.render()
    return encode_examples(tokenizer, [new_text], [new_span], loss_on)[0]


def load_instruction_splits(instructions_dir: str | Path) -> dict[str, Any]:
    """The ``train`` and ``valid`` splits of a built instruction dataset (``hf/``), columns checked.

    A split saved with no rows has no Arrow file, and ``datasets`` cannot load such a
    ``DatasetDict`` at all; its splits are read one by one here, an empty one as empty.
    """
    import datasets

    folder = Path(instructions_dir)
    hf = folder / "hf"
    if not folder.is_dir():
        raise InputError(
            "instruction dataset folder not found; build it with `instructprotein instructions build`", folder
        )
    if not (hf / "dataset_dict.json").exists():
        raise InputError(
            "no instruction dataset here (no hf/dataset_dict.json); run `instructprotein instructions build`", folder
        )
    try:
        names = json.loads((hf / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable dataset_dict.json ({exc})", hf) from exc
    if "train" not in names:
        raise InputError(f"the dataset has no train split (splits: {', '.join(names)})", hf)
    out: dict[str, Any] = {}
    for name in ("train", "valid"):
        if name not in names:
            continue
        try:
            state = json.loads((hf / name / "state.json").read_text(encoding="utf-8"))
            if not state.get("_data_files"):
                out[name] = []  # saved with no rows
                continue
            ds = datasets.load_from_disk(str(hf / name))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise InputError(f"cannot open the {name} split ({type(exc).__name__}: {exc})", hf / name) from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
        if missing:
            raise InputError(f"split {name!r} lacks the column(s) {', '.join(missing)}", hf / name)
        out[name] = ds
    return out


def prepare_instruction_data(
    instructions_dir: str | Path,
    tokenizer: ProteinTokenizer,
    context_length: int,
    cache_dir: str | Path,
    *,
    loss_on: str = "answer",
    pack: bool = True,
    long: str = "crop",
    seed: int = 0,
    val_fraction: float = 0.02,
    progress: Progress | None = None,
    max_residues: int | None = None,
) -> StageData:
    """Tokenise, label and pack the instruction dataset's train and valid splits (or reuse the cache).

    ``max_residues`` (the preset's ``model.prompt_residues``) cuts every prompt's protein to
    that many residues first (:func:`fit_prompt_protein`), as inference will.

    Raises :class:`InputError` before anything is trained: an empty train split, missing
    columns, an answer span outside its text, and (``long="error"``) examples longer than
    ``context_length`` (how many, and the longest). A dataset without a valid split
    holds out ``val_fraction`` of the train examples instead.
    """
    if long not in LONG_MODES:
        raise InputError(f"long must be one of {', '.join(LONG_MODES)}, not {long!r}")
    progress = progress or Progress()
    cache = Path(cache_dir)
    splits = load_instruction_splits(instructions_dir)
    hf = Path(instructions_dir) / "hf"
    data_files = sorted(p for p in hf.rglob("*") if p.is_file())
    fingerprint = _fingerprint(
        kind="instructions",
        files=[[str(p.relative_to(hf)), *files_fingerprint([p])[0][1:]] for p in data_files],
        tokenizer=tokenizer_fingerprint(tokenizer),
        context=context_length,
        loss_on=loss_on,
        pack=pack,
        long=long,
        seed=seed,
        val_fraction=val_fraction,
        version=VERSION,
        max_residues=max_residues,
    )
    hit = _cached(cache, fingerprint)
    if hit is not None:
        return hit
    train = splits["train"]
    if len(train) == 0:
        raise InputError("the instruction dataset's train split is empty", hf)
    rng = np.random.default_rng(seed)
    order = {"train": rng.permutation(len(train))}
    sources = {"train": train}
    valid = splits.get("valid")
    held_out = valid is None or len(valid) == 0
    if held_out:
        if len(train) < 2:
            raise InputError("the train split has one example and there is no valid split to validate on", hf)
        n_val = max(1, round(len(train) * val_fraction))
        order = {"train": order["train"][n_val:], "valid": order["train"][:n_val]}
        sources["valid"] = train
    else:
        order["valid"] = np.arange(len(valid))
        sources["valid"] = valid

    id_dtype = _id_dtype(tokenizer)
    stats: dict[str, Any] = {
        "loss_on": loss_on,
        "pack": pack,
        "valid_from_train": held_out,
        "examples": {},
        "too_long": {},
        "longest": {},
        "cropped": {},
        "dropped_long": {},
        "without_answer_tokens": {},
        "tokens": {},
        "label_tokens": {},
        "rows": {},
        "padding_fraction": {},
        "examples_per_row": {},
    }
    too_long_examples: dict[str, list[tuple[int, int, str]]] = {}
    with atomic_dir(cache) as tmp:
        rows: dict[str, int] = {}
        for split in ("train", "valid"):
            ds, idx = sources[split], order[split]
            packer = _RowPacker(
                _RowWriter(tmp, split, context_length, id_dtype, positions=True), tokenizer.pad_token_id, pack
            )
            too_long: list[tuple[int, int, str]] = []
            cropped = over_context = 0
            no_answer = 0
            longest = 0
            with progress.step(f"tokenising and packing {split} instructions", total=len(idx)) as bar:
                for start in range(0, len(idx), CHUNK):
                    chunk = [int(i) for i in idx[start : start + CHUNK]]
                    part = ds.select(chunk)
                    texts = list(part["text"])
                    spans = list(zip(part["answer_start"], part["answer_end"]))
                    accessions = list(part["accession"]) if "accession" in part.column_names else [""] * len(chunk)
                    for k, (text, (a, b)) in enumerate(zip(texts, spans)):
                        if not isinstance(text, str) or a is None or b is None or not 0 <= a <= b <= len(text):
                            raise InputError(
                                f"{split} example {chunk[k]}: answer span ({a}, {b}) is not inside its text "
                                f"of {len(text) if isinstance(text, str) else 0} characters",
                                hf,
                            )
                    if max_residues is not None:
                        for k, (text, (a, b)) in enumerate(zip(texts, spans)):
                            texts[k], spans[k] = fit_prompt_protein(text, (int(a), int(b)), max_residues)
                    try:
                        examples = encode_examples(tokenizer, texts, [(int(a), int(b)) for a, b in spans], loss_on)
                    except ValueError as exc:
                        raise InputError(f"cannot tokenise a {split} example ({exc})", hf) from exc
                    for k, ex in enumerate(examples):
                        n = len(ex.ids)
                        longest = max(longest, n)
                        over_context += n > context_length
                        over = _prompt_over(ex, n, context_length) if long == "crop" else 0
                        if over > 0:
                            fitted = _crop_protein(tokenizer, texts[k], spans[k], ex, n, loss_on, context_length)
                            if fitted is not None and len(fitted.ids) <= context_length:
                                ex, n = fitted, len(fitted.ids)
                                cropped += 1
                        if n > context_length:
                            too_long.append((n, chunk[k], accessions[k] or ""))
                            continue
                        if not ex.mask.any():
                            no_answer += 1
                        packer.add(ex)
                    bar.advance(len(chunk))
            rows[split] = packer.close()
            stats["examples"][split] = packer.examples
            stats["too_long"][split] = over_context
            stats["cropped"][split] = cropped
            stats["dropped_long"][split] = len(too_long) if long != "error" else 0
            stats["longest"][split] = longest
            stats["without_answer_tokens"][split] = no_answer
            stats["tokens"][split] = packer.tokens
            stats["label_tokens"][split] = packer.labels
            stats["rows"][split] = rows[split]
            stats["padding_fraction"][split] = round(1 - packer.tokens / max(1, rows[split] * context_length), 6)
            stats["examples_per_row"][split] = round(packer.examples / max(1, rows[split]), 3)
            too_long_examples[split] = too_long
        total_long = sum(len(v) for v in too_long_examples.values())
        if total_long and long == "error":
            parts = []
            for split, items in too_long_examples.items():
                if items:
                    n, index, acc = max(items)
                    parts.append(
                        f"{len(items):,} of {len(order[split]):,} {split} examples (longest: {n:,} tokens, "
                        f"example {index}{' ' + acc if acc else ''})"
                    )
            raise InputError(
                f"examples longer than the context of {context_length} tokens: {'; '.join(parts)}. "
                "Pass --long crop to fit their proteins, --long drop to leave them out (they are counted), "
                "raise model.context_length, or build the instructions with a lower --max-residues",
                hf,
            )
        for split in ("train", "valid"):
            if stats["examples"][split] == 0:
                why = " (every example is longer than the context)" if too_long_examples[split] else ""
                raise InputError(f"no {split} instruction left to train on{why}", hf)
        stats["attention"] = "block-diagonal: examples packed in one row do not attend to each other"
        _write_meta(tmp, fingerprint, context_length, id_dtype, True, rows, stats)
    return load_packed(cache)
