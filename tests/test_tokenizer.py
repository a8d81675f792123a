"""The joint tokenizer: one token per residue, exact round trips, offsets for answer masks,
our own layout and the paper's (OPT BPE + 22 added tokens), built locally, never downloaded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from instructprotein.errors import InputError
from instructprotein.instruct.render import protein_text, render_paper
from instructprotein.model.tokenizer import (
    MARKER_FILE,
    PAPER_PROTEIN_TOKENS,
    PROTEIN_TOKENS,
    RESIDUE_LETTERS,
    ProteinTokenizer,
    answer_token_mask,
    corpus_texts,
    load_tokenizer,
    train_tokenizer,
)

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUOBZJX"


def go_texts(go_sqlite: Path, limit: int = 2000) -> list[str]:
    """GO term names and definitions (real text, GO 2022) written as short documents."""
    con = sqlite3.connect(f"file:{go_sqlite}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT term, ontology, definition FROM go_term WHERE definition IS NOT NULL ORDER BY go_id LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        con.close()
    return [f"{t[0].upper()}{t[1:]} is a {o} term in the Gene Ontology. {d}" for t, o, d in rows]


def gpt2_style_folder(texts: list[str], folder: Path, added: tuple[str, ...] = PAPER_PROTEIN_TOKENS) -> Path:
    """A folder laid out like facebook/opt-* plus the paper's added tokens (legacy slow-tokenizer
    files: vocab.json, merges.txt, added_tokens.json), from a small byte-level BPE trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],  # OPT's ids 0..3
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    folder.mkdir(parents=True)
    bpe.model.save(str(folder))  # vocab.json + merges.txt
    size = bpe.get_vocab_size()
    (folder / "added_tokens.json").write_text(
        json.dumps({t: size + i for i, t in enumerate(added)}, ensure_ascii=False), encoding="utf-8"
    )
    specials = {"bos_token": "</s>", "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials), encoding="utf-8")
    config = {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": True, "add_prefix_space": False, **specials}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def texts(resource) -> list[str]:
    return go_texts(resource("go-sqlite"))


@pytest.fixture(scope="module")
def tok_dir(texts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(texts + [protein_text("MKTAYIAKQR" * 50)], 1000, out)
    return out


@pytest.fixture(scope="module")
def tok(tok_dir) -> ProteinTokenizer:
    return load_tokenizer(tok_dir)


@pytest.fixture(scope="module")
def paper_tok(texts, tmp_path_factory) -> ProteinTokenizer:
    return load_tokenizer(gpt2_style_folder(texts[:500], tmp_path_factory.mktemp("paper") / "opt"))


MIXED = [
    "Plain text only, with punctuation; numbers 1,234 and unicode: α-helix, β-sheet, Ca²⁺ → ✓.",
    protein_text(SEQ),
    f"{protein_text('MKT')}Instruction: Where is this protein located?\n\nOutput: In the nucleus.",
    "Design one: <protein>ACDEFGHIKLMNPQRSTVWYX</protein> and another <protein>MM</protein>.",
    "Instruction: Write a zinc-binding protein.\n\nOutput: <protein>MKVLA",  # unclosed: a generation prompt
    "<protein></protein>empty segment, then  two spaces\tand a tab\n",
    "  leading spaces and a stray </protein> tag",
    "",
]


# ---------------------------------------------------------------- residues


def test_one_token_per_residue(tok):
    enc = tok.encode_with_offsets(protein_text("MKTAYIAK"))
    tokens = tok.convert_ids_to_tokens(enc.input_ids)
    assert tokens == ["<s>", "<protein>", *("Ƥ" + a for a in "MKTAYIAK"), "</protein>"]
    long = tok.encode(protein_text(SEQ), add_bos=False)
    assert len(long) == len(SEQ) + 2


def test_residue_tokens_are_distinct_from_text(tok):
    vocab = tok.get_vocab()
    assert all(t in vocab for t in PROTEIN_TOKENS)
    residue_ids = {tok.residue_ids[a] for a in RESIDUE_LETTERS + "X"}
    assert len(residue_ids) == 21
    # the text "MK" never uses residue tokens, the protein MK never uses text tokens
    text_ids = tok.encode("MK AYIAK", add_bos=False)
    assert not residue_ids & set(text_ids)
    assert tok.encode("<protein>MK</protein>", add_bos=False)[1:3] == [tok.residue_ids["M"], tok.residue_ids["K"]]
    assert tok.layout == "instructprotein"
    assert len(tok) == 1000 + len(PROTEIN_TOKENS)


def test_nonstandard_residues_follow_render_rules(tok):
    ids = tok.encode("<protein>mkUOBZJX*</protein>")
    assert tok.decode(ids) == "<protein>MKCKXXXX</protein>"
    assert tok.decode(ids) == protein_text("mkUOBZJX*")


@pytest.mark.parametrize("bad", ["1", " ", "é", "-", "<"])
def test_invalid_residue_names_the_character(tok, bad):
    with pytest.raises(ValueError, match=repr(bad)[1:-1] if bad != " " else "' '"):
        tok.encode(f"<protein>MK{bad}T</protein>")


def test_invalid_residue_in_a_batch_names_the_text(tok):
    with pytest.raises(ValueError, match="text 1 of the batch"):
        tok.encode_batch(["ok", "<protein>MK1</protein>"])


# ---------------------------------------------------------------- round trips and offsets


@pytest.mark.parametrize("text", MIXED)
def test_round_trip(tok, text):
    enc = tok.encode_with_offsets(text, add_eos=True)
    assert tok.decode(enc.input_ids) == text
    assert len(enc.offsets) == len(enc.input_ids)


def test_offsets_point_at_the_plain_notation(tok):
    text = MIXED[2]
    enc = tok.encode_with_offsets(text, add_eos=True)
    assert enc.offsets[0] == (0, 0) and enc.offsets[-1] == (len(text), len(text))
    for tid, (s, e) in zip(enc.input_ids, enc.offsets):
        if tid in tok._id_to_residue:
            assert text[s:e] == tok._id_to_residue[tid]
        elif tid == tok.protein_open_id:
            assert text[s:e] == "<protein>"
        elif tid == tok.protein_close_id:
            assert text[s:e] == "</protein>"
    # every character is covered, in order, without gaps
    spans = [o for o in enc.offsets if o[0] != o[1]]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize(
    "protein, question, answer",
    [
        ("MKTAYIAKQR", "What is the function of this protein?", "It binds zinc ions."),
        ("MKTAYIAKQR", "Is this protein located in the nucleus?", "Yes"),
        (None, "Design a protein that binds ATP.", protein_text("MKVLAAGIVGAG")),
    ],
)
def test_answer_mask_selects_the_answer(tok, protein, question, answer):
    text, span = render_paper(protein, question, answer)
    enc = tok.encode_with_offsets(text, add_eos=True)
    mask = answer_token_mask(enc.offsets, span)
    answer_ids = [i for i, m in zip(enc.input_ids, mask) if m]
    assert answer_ids[-1] == tok.eos_token_id  # the model learns to stop
    # the masked tokens decode to the answer, with at most the separator space in front
    assert tok.decode(answer_ids).lstrip(" ") == answer
    # and nothing of the prompt: the last unmasked token ends before the answer starts
    last_prompt = max(k for k, m in enumerate(mask) if not m)
    assert enc.offsets[last_prompt][1] <= span[0]
    assert not mask[0]  # bos


def test_answer_mask_on_padded_batch(tok):
    text, span = render_paper("MKT", "Where?", "Nucleus.")
    batch = tok([text, "short"], padding=True, return_offsets_mapping=True, add_eos=True)
    mask = answer_token_mask(batch["offset_mapping"][1], (0, 5))
    pads = [m for m, a in zip(mask, batch["attention_mask"][1]) if a == 0]
    assert pads and not any(pads)


# ---------------------------------------------------------------- batches


def test_batch_padding_and_tensors(tok):
    texts = [MIXED[2], "hi", protein_text("MKT")]
    single = [tok.encode(t) for t in texts]
    batch = tok(texts, padding=True, return_offsets_mapping=True, return_tensors="pt")
    width = max(len(s) for s in single)
    assert tuple(batch["input_ids"].shape) == (3, width)
    assert tuple(batch["offset_mapping"].shape) == (3, width, 2)
    for row, ids in enumerate(single):
        assert batch["input_ids"][row, : len(ids)].tolist() == ids
        assert batch["attention_mask"][row].sum().item() == len(ids)
        assert set(batch["input_ids"][row, len(ids) :].tolist()) <= {tok.pad_token_id}
    left = tok(texts, padding=True, padding_side="left")
    assert left["input_ids"][1][-len(single[1]) :] == single[1]
    assert left["attention_mask"][1][0] == 0
    fixed = tok(texts, padding="max_length", max_length=64, truncation=True)
    assert all(len(r) == 64 for r in fixed["input_ids"])
    cut = tok(protein_text(SEQ), max_length=10, truncation=True)
    assert len(cut["input_ids"]) == 10 and cut["input_ids"][0] == tok.bos_token_id
    assert tok.batch_decode(batch["input_ids"]) == texts


def test_no_bos_no_eos(tok):
    ids = tok.encode("hello", add_bos=False)
    assert tok.bos_token_id not in ids
    assert tok.encode("hello", add_eos=True)[-1] == tok.eos_token_id


# ---------------------------------------------------------------- folders


def test_folder_is_a_hugging_face_tokenizer(tok, tok_dir):
    from transformers import AutoTokenizer

    assert (tok_dir / "tokenizer.json").exists()
    assert json.loads((tok_dir / MARKER_FILE).read_text())["layout"] == "instructprotein"
    config = json.loads((tok_dir / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"  # loadable by transformers 4 and 5
    plain = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    text = MIXED[2]
    ours = tok.encode(text, add_bos=False)
    theirs = plain(ProteinTokenizer.to_backend_notation(text), add_special_tokens=False)["input_ids"]
    assert ours == theirs


def test_save_and_reload_gives_identical_encodings(tok, tmp_path):
    tok.save_pretrained(tmp_path / "again")
    again = load_tokenizer(tmp_path / "again")
    for text in MIXED:
        assert again.encode(text) == tok.encode(text)
    assert len(again) == len(tok)


def test_train_skips_protein_documents(texts, tmp_path):
    tok = train_tokenizer(texts[:300] + [protein_text("MKTAYIAKQR" * 50)] * 20, 600)
    bpe_tokens = [t for t in tok.get_vocab() if not t.startswith(("Ƥ", "<"))]
    assert not any("KTAY" in t or "AKQR" in t for t in bpe_tokens)
    with pytest.raises(InputError, match="no text documents"):
        train_tokenizer([protein_text("MKT")] * 5, 600, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_corpus_texts_reads_shards(tmp_path):
    shard = tmp_path / "shard-00000.jsonl"
    records = [
        {"text": protein_text("MKT"), "source": "protein"},
        {"text": "Zinc ion binding is a term.", "source": "go"},
        {"text": "User paragraph.", "source": "user"},
    ]
    shard.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert list(corpus_texts(tmp_path)) == ["Zinc ion binding is a term.", "User paragraph."]
    assert list(corpus_texts(tmp_path, limit=1)) == ["Zinc ion binding is a term."]
    with pytest.raises(InputError, match="shard"):
        list(corpus_texts(tmp_path / "missing"))


# ---------------------------------------------------------------- the paper's layout


def test_paper_layout_reads_and_writes_protein_notation(paper_tok):
    assert paper_tok.layout == "paper"
    assert paper_tok.bos_token_id == paper_tok.eos_token_id == 2  # OPT: </s> starts every sequence
    assert paper_tok.pad_token_id == 1
    text = MIXED[2]
    enc = paper_tok.encode_with_offsets(text)
    tokens = paper_tok.convert_ids_to_tokens(enc.input_ids)
    assert tokens[:6] == ["</s>", "<protein>", "ƤM", "ƤK", "ƤT", "</protein>"]
    # how the paper's users encoded: "<protein>Ƥ" + "Ƥ".join(seq) + "</protein>" through the OPT tokenizer
    theirs = paper_tok.backend(ProteinTokenizer.to_backend_notation(text), add_special_tokens=False)["input_ids"]
    assert enc.input_ids[1:] == theirs
    for text in MIXED[:-1]:
        assert paper_tok.decode(paper_tok.encode(text)) == text


def test_paper_layout_writes_x_as_text_x(paper_tok):
    ids = paper_tok.encode("<protein>MXB</protein>", add_bos=False)
    assert paper_tok.convert_ids_to_tokens(ids) == ["<protein>", "ƤM", "X", "X", "</protein>"]
    assert paper_tok.decode(ids) == "<protein>MXX</protein>"


def test_paper_layout_saved_by_transformers(texts, tmp_path):
    """The same layout saved the modern way (tokenizer.json) by a GPT2 tokenizer with added tokens."""
    from transformers import GPT2Tokenizer

    legacy = gpt2_style_folder(texts[:300], tmp_path / "legacy", added=())
    gpt2 = GPT2Tokenizer(
        vocab=str(legacy / "vocab.json"),
        merges=str(legacy / "merges.txt"),
        bos_token="</s>",
        eos_token="</s>",
        unk_token="</s>",
        pad_token="<pad>",
    )
    gpt2.add_tokens(list(PAPER_PROTEIN_TOKENS))
    gpt2.save_pretrained(str(tmp_path / "modern"))
    tok = load_tokenizer(tmp_path / "modern")
    assert tok.layout == "paper"
    assert tok.decode(tok.encode(MIXED[3])) == MIXED[3]


# ---------------------------------------------------------------- bad input


def test_missing_protein_tokens_is_an_input_error(texts, tmp_path):
    folder = gpt2_style_folder(texts[:300], tmp_path / "gpt2", added=())
    with pytest.raises(InputError) as err:
        load_tokenizer(folder)
    message = str(err.value)
    assert str(folder) in message
    assert "<protein>" in message and "</protein>" in message and "ƤM" in message
    adapted = load_tokenizer(folder, add_missing=True)
    assert adapted.layout == "adapted"
    assert adapted.decode(adapted.encode(MIXED[3])) == MIXED[3]
    assert "ƤX" in adapted.get_vocab()


def test_partly_missing_tokens_are_listed(texts, tmp_path):
    folder = gpt2_style_folder(texts[:300], tmp_path / "half", added=("<protein>", "</protein>", "ƤA"))
    with pytest.raises(InputError) as err:
        load_tokenizer(folder)
    listed = str(err.value).split("lacks the protein tokens ", 1)[1].split(";")[0].split()
    assert listed == ["Ƥ" + a for a in RESIDUE_LETTERS if a != "A"]


def test_folder_without_tokenizer_files(tmp_path):
    with pytest.raises(InputError, match="no tokenizer files"):
        load_tokenizer(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_tokenizer(tmp_path / "absent")
