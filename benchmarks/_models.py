"""A randomly initialised model of a preset's shape for the inference speed benchmarks.

Speed does not depend on what the weights have learnt, so the benchmarks build a model of
the preset's shape (tiny by default) with random weights and a BPE trained on real GO text
(GO.sqlite's names and definitions from the data cache; the task templates if the cache
lacks it), so prompts and options have realistic token counts.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def bpe_texts(limit: int = 5000) -> list[str]:
    from instructprotein.instruct.templates import TASKS

    texts = []
    try:
        from instructprotein.sources.registry import resource_path

        con = sqlite3.connect(f"file:{resource_path('go-sqlite')}?mode=ro", uri=True)
        rows = con.execute(
            "SELECT term, definition FROM go_term WHERE definition IS NOT NULL ORDER BY go_id LIMIT ?", (limit,)
        ).fetchall()
        con.close()
        texts += [f"{t[0].upper()}{t[1:]} is a term in the Gene Ontology. {d}" for t, d in rows]
    except Exception:  # noqa: BLE001 - no data cache: templates only
        pass
    for task in TASKS.values():
        for p in task.phrasings:
            texts.append(f"Instruction: {p.question}\n\nOutput: {p.answer}")
    return texts


def random_model(preset: str = "tiny", overrides: dict[str, Any] | None = None, vocab: int = 4096):
    """(model, tokenizer, preset) with random weights, in eval mode."""
    from instructprotein.model.factory import create_model
    from instructprotein.model.presets import load_preset
    from instructprotein.model.tokenizer import train_tokenizer

    p = load_preset(preset, overrides or {})
    tok = train_tokenizer(bpe_texts(), min(vocab, p.tokenizer.bpe_vocab_size))
    model = create_model(p, tok).eval()
    return model, tok, p
