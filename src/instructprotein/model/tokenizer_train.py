"""Training a tokenizer: a byte-level BPE learnt on the text of a corpus (proteins cut out), with
the protein tokens added.

Kept apart from encoding because only the pre-training path trains one; every other path opens
a saved folder (:func:`~instructprotein.model.tokenizer.load_tokenizer`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from instructprotein.atomic import atomic_dir
from instructprotein.errors import InputError
from instructprotein.model.tokenizer_codec import ProteinTokenizer
from instructprotein.model.tokenizer_vocab import _SEGMENT, SPECIAL_TOKENS, add_protein_tokens


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
