"""Per-protein instruction generation, negatives and the in-memory graph view.

Two graphs: the hand-checked tiny one (tests/data/tiny.*) for exact formats, and a
"metal" graph written here whose GO part has real sibling / cousin structure
(zinc / copper / iron under transition metal; potassium / sodium under alkali metal;
calcium beside them), so hard negatives can be checked term by term.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from instructprotein.formats.obo import read_obo
from instructprotein.instruct.generate import GenerateOptions, Instruction, instructions_for_protein
from instructprotein.instruct.kgview import KGView
from instructprotein.instruct.negatives import NegativeSampler
from instructprotein.instruct.render import protein_text
from instructprotein.instruct.templates import TASKS, render
from instructprotein.kg.inputs import build_from_uniprot
from instructprotein.kg.store import KnowledgeGraph

DATA = Path(__file__).parent / "data"

# -- the metal graph ------------------------------------------------------------------------------

TERMS = [  # id, name, namespace, [(relation, parent)]
    ("GO:0003674", "molecular_function", "molecular_function", []),
    ("GO:0005488", "binding", "molecular_function", [("is_a", "GO:0003674")]),
    ("GO:0043167", "ion binding", "molecular_function", [("is_a", "GO:0005488")]),
    ("GO:0046872", "metal ion binding", "molecular_function", [("is_a", "GO:0043167")]),
    ("GO:0046914", "transition metal ion binding", "molecular_function", [("is_a", "GO:0046872")]),
    ("GO:0008270", "zinc ion binding", "molecular_function", [("is_a", "GO:0046914")]),
    ("GO:0005507", "copper ion binding", "molecular_function", [("is_a", "GO:0046914")]),
    ("GO:0005506", "iron ion binding", "molecular_function", [("is_a", "GO:0046914")]),
    ("GO:0031420", "alkali metal ion binding", "molecular_function", [("is_a", "GO:0046872")]),
    ("GO:0030955", "potassium ion binding", "molecular_function", [("is_a", "GO:0031420")]),
    ("GO:0031402", "sodium ion binding", "molecular_function", [("is_a", "GO:0031420")]),
    ("GO:0005509", "calcium ion binding", "molecular_function", [("is_a", "GO:0046872")]),
    ("GO:0043168", "anion binding", "molecular_function", [("is_a", "GO:0043167")]),
    ("GO:0003676", "nucleic acid binding", "molecular_function", [("is_a", "GO:0005488")]),
    ("GO:0003677", "DNA binding", "molecular_function", [("is_a", "GO:0003676")]),
    ("GO:0003723", "RNA binding", "molecular_function", [("is_a", "GO:0003676")]),
    ("GO:0003824", "catalytic activity", "molecular_function", [("is_a", "GO:0003674")]),
    ("GO:0016301", "kinase activity", "molecular_function", [("is_a", "GO:0003824")]),
    ("GO:0004672", "protein kinase activity", "molecular_function", [("is_a", "GO:0016301")]),
    ("GO:0005575", "cellular_component", "cellular_component", []),
    ("GO:0044464", "cell part", "cellular_component", [("is_a", "GO:0005575")]),
    ("GO:0043226", "organelle", "cellular_component", [("is_a", "GO:0005575")]),
    ("GO:0005634", "nucleus", "cellular_component", [("is_a", "GO:0043226")]),
    ("GO:0031981", "nuclear lumen", "cellular_component", [("part_of", "GO:0005634")]),
    ("GO:0005739", "mitochondrion", "cellular_component", [("is_a", "GO:0043226")]),
    ("GO:0005737", "cytoplasm", "cellular_component", [("is_a", "GO:0044464")]),
    ("GO:0005829", "cytosol", "cellular_component", [("part_of", "GO:0005737")]),
    ("GO:0008150", "biological_process", "biological_process", []),
    ("GO:0008152", "metabolic process", "biological_process", [("is_a", "GO:0008150")]),
    ("GO:0006259", "DNA metabolic process", "biological_process", [("is_a", "GO:0008152")]),
    ("GO:0006281", "DNA repair", "biological_process", [("is_a", "GO:0006259")]),
    ("GO:0006260", "DNA replication", "biological_process", [("is_a", "GO:0006259")]),
    ("GO:0006810", "transport", "biological_process", [("is_a", "GO:0008150")]),
    ("GO:0006811", "ion transport", "biological_process", [("is_a", "GO:0006810")]),
]
NAMES = {t[0]: t[1] for t in TERMS}
ASPECT = {t[0]: {"molecular_function": "F", "biological_process": "P", "cellular_component": "C"}[t[2]] for t in TERMS}

PROTEINS = [  # accession, sequence, GO ids, InterPro, FUNCTION
    (
        "P10001",
        "MKCPECGKSFHR",
        ["GO:0008270", "GO:0003677", "GO:0031981", "GO:0006281"],
        [("IPR013087", "Znf_C2H2_type")],
        "Binds zinc and DNA; repairs DNA.",
    ),
    ("P10002", "MKTAYIAKQR" * 4, ["GO:0005507", "GO:0005739"], [], None),
    ("P10003", "MSHHWGYGKH" * 3, ["GO:0005506", "GO:0005737", "GO:0006260"], [], None),
    ("P10004", "MLKKLLPTAA" * 5, ["GO:0030955", "GO:0006811"], [], None),
    ("P10005", "MAEEQLRRSA" * 6, ["GO:0031402", "GO:0005509", "GO:0005829"], [], None),
    ("P10006", "MGSSHHHHHH" * 7, ["GO:0004672", "GO:0043168", "GO:0003723", "GO:0006281"], [], None),
    ("P10007", "MDDKLLNNQE" * 3, ["GO:0046872"], [], None),  # only the general term: nothing below it is "no"
    ("P10008", "MKUBZOJXAA", [], [], None),  # non-standard residues, no annotation at all
    ("P10009", "MPPLLSSTTA" * 2, ["GO:0005634", "GO:0008270"], [], None),
]


def obo_text() -> str:
    out = ["format-version: 1.2", ""]
    for tid, name, ns, parents in TERMS:
        out += ["[Term]", f"id: {tid}", f"name: {name}", f"namespace: {ns}", f'def: "{name}." [GOC:test]']
        for rel, parent in parents:
            out.append(f"is_a: {parent}" if rel == "is_a" else f"relationship: {rel} {parent}")
        out.append("")
    out += ["[Typedef]", "id: part_of", "name: part of", ""]
    return "\n".join(out)


def dat_text() -> str:
    out = []
    for acc, seq, go, interpro, function in PROTEINS:
        out += [
            f"ID   {acc}_TEST              Reviewed;          {len(seq)} AA.",
            f"AC   {acc};",
            f"DE   RecName: Full=Test protein {acc};",
            "OS   Homo sapiens (Human).",
            "OX   NCBI_TaxID=9606;",
        ]
        if function:
            out.append(f"CC   -!- FUNCTION: {function}")
        for g in go:
            out.append(f"DR   GO; {g}; {ASPECT[g]}:{NAMES[g]}; IDA:UniProtKB.")
        for ipr, name in interpro:
            out.append(f"DR   InterPro; {ipr}; {name}.")
        out += [f"SQ   SEQUENCE   {len(seq)} AA;  1000 MW;  0000000000000000 CRC64;", f"     {seq}", "//"]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def metal(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("metal")
    (folder / "go.obo").write_text(obo_text())
    (folder / "metal.dat").write_text(dat_text())
    out = folder / "kg.sqlite"
    build_from_uniprot([folder / "metal.dat"], read_obo(folder / "go.obo"), out)
    return out


@pytest.fixture(scope="module")
def view(metal) -> KGView:
    return KGView(metal)


@pytest.fixture(scope="module")
def kg(metal) -> KnowledgeGraph:
    return KnowledgeGraph(metal)


@pytest.fixture(scope="module")
def sampler(view) -> NegativeSampler:
    return NegativeSampler(view)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kg") / "tiny.sqlite"
    build_from_uniprot([DATA / "tiny.dat"], read_obo(DATA / "tiny.obo"), out)
    return out


def generate_many(view, sampler, seeds=range(40), options=None) -> list[Instruction]:
    out = []
    for seed in seeds:
        for acc, *_ in PROTEINS:
            out += instructions_for_protein(view, acc, random.Random(seed), sampler, options)
    return out


def carried(kg: KnowledgeGraph, acc: str) -> set[str]:
    return {a.entity.id for a in kg.propagated_annotations(acc)}


# -- the view ---------------------------------------------------------------------------------------


def test_view_terms_match_the_store(view, kg):
    for acc, *_ in PROTEINS:
        terms = view.terms(view.pid(acc))
        assert {view.ids[e] for e in terms.carried} == carried(kg, acc)
        assert {view.ids[e] for e in terms.direct_go} == {a.entity.id for a in kg.direct_annotations(acc, kind="go")}
    assert view.frequency[view.eid("GO:0046872")] == 7  # P10001-5, P10007, P10009
    prop = kg.frequencies("go", propagated=True)
    assert {
        view.ids[e]: int(view.frequency[e])
        for e in range(1, view.n_entities + 1)
        if view.frequency[e] and view.kinds[e] == "go"
    } == prop
    assert int(view.depth[view.eid("GO:0008270")]) == 5 and int(view.depth[view.eid("GO:0003674")]) == 0


def test_view_reads_sequences_in_shards_and_at_random(metal, kg):
    v = KGView(metal, shard_size=2)
    order = [1, 2, 3, 9, 4, 1, 7]
    for pid in order:
        info = v.protein_info(pid)
        assert info.sequence == kg.protein(info.accession).sequence
    v.prefetch([5, 8])
    assert v.protein_info(8).sequence == "MKUBZOJXAA" and v.protein_info(6).accession == "P10006"
    with pytest.raises(KeyError):
        v.protein_info(999)


# -- formats ----------------------------------------------------------------------------------------


def test_paper_format_is_exact_on_the_tiny_graph(tiny):
    view = KGView(tiny)
    sampler = NegativeSampler(view)
    opts = GenerateOptions(tasks=("function",), chain_in_answer=0.0)
    (inst,) = instructions_for_protein(view, "Q00001", random.Random(0), sampler, opts)
    question = TASKS["function"].phrasings[inst.phrasing].question
    assert inst.text.startswith(f"<protein>MKCPECGKSFHR</protein>Instruction: {question}\n\nOutput: ")
    assert inst.text == f"<protein>MKCPECGKSFHR</protein>Instruction: {question}\n\nOutput: {inst.answer}"
    assert inst.text[inst.answer_span[0] : inst.answer_span[1]] == inst.answer
    assert inst.answer.endswith("Binds zinc and regulates transcription.")  # the FUNCTION text
    assert "zinc ion" in inst.answer
    assert inst.triples == [("Q00001", "enables", "GO:0008270")]
    assert inst.direction == "protein_to_text"


def test_every_instruction_is_consistent(view, sampler, kg):
    insts = generate_many(view, sampler, range(15))
    assert {i.task for i in insts} == set(TASKS)
    for i in insts:
        assert i.text[i.answer_span[0] : i.answer_span[1]] == i.answer
        assert i.prompt + i.answer == i.text
        assert i.direction == TASKS[i.task].direction
        assert 0 <= i.phrasing < len(TASKS[i.task].phrasings)
        if i.direction == "protein_to_text":
            seq = next(p[1] for p in PROTEINS if p[0] == i.accession)
            assert i.text.startswith(protein_text(seq) + "Instruction: ")
        else:
            assert i.text.startswith("Instruction: ")
        truth = carried(kg, i.accession) | {a.entity.id for a in kg.direct_annotations(i.accession)}
        for acc, rel, term in i.triples:
            assert acc == i.accession and term in truth
            assert rel in {"enables", "involved_in", "located_in", "has_signature", "found_in"}


def test_benchmark_phrasing_answers_start_like_the_benchmark(view, sampler, kg):
    insts = [i for i in generate_many(view, sampler, range(60)) if i.task == "yes_no" and i.phrasing == 0]
    assert insts
    for i in insts:
        term = kg.entity((i.triples or [("", "", i.negatives[0])])[0][2]).name
        assert i.prompt.endswith(f"</protein>Instruction: Does the protein associate with {term}?\n\nOutput: ")
        assert i.answer.startswith(
            ("Based on the record, the answer is yes.", "Based on the record, the answer is no.")
        )


def test_task_paper_phrasing_fixes_one_task_and_leaves_the_others_varied(view, sampler):
    options = GenerateOptions(paper_phrasing=0.0, task_paper_phrasing={"yes_no": 1.0})
    insts = generate_many(view, sampler, range(30), options)
    by_task: dict[str, set[int]] = {}
    for i in insts:
        by_task.setdefault(i.task, set()).add(i.phrasing)
    assert by_task["yes_no"] == {0}
    assert len(by_task["function"]) > 3 and len(by_task["multiple_choice"]) > 3
    # the global 0 still reaches the other tasks: phrasing 0 is one draw among ten, not forced
    plain = generate_many(view, sampler, range(30), GenerateOptions(paper_phrasing=0.0))
    assert len({i.phrasing for i in plain if i.task == "yes_no"}) > 3


# -- negatives ---------------------------------------------------------------------------------------


def test_negatives_are_never_carried_and_never_below_a_direct_term(view, sampler, kg):
    insts = generate_many(view, sampler, range(60))
    seen = 0
    for i in insts:
        if not i.negatives:
            continue
        prop = carried(kg, i.accession)
        direct = {a.entity.id for a in kg.direct_annotations(i.accession, kind="go")}
        for neg in i.negatives:
            seen += 1
            assert neg not in prop, (i.accession, neg)
            assert not ({e.id for e, _ in kg.ancestors(neg)} & direct), (i.accession, neg)
            assert kg.entity(neg).aspect == i.aspect
    assert seen > 100
    # P10007 says only "metal ion binding": zinc, copper, sodium, ... could all be true
    below_metal = {
        "GO:0046914",
        "GO:0008270",
        "GO:0005507",
        "GO:0005506",
        "GO:0031420",
        "GO:0030955",
        "GO:0031402",
        "GO:0005509",
    }
    assert not any(set(i.negatives) & below_metal for i in insts if i.accession == "P10007")


def test_yes_no_answers_both_ways_and_no_means_a_negative(view, sampler):
    insts = [i for i in generate_many(view, sampler, range(60)) if i.task == "yes_no"]
    answers = Counter("yes" if i.triples else "no" for i in insts)
    assert answers["yes"] > 20 and answers["no"] > 20
    for i in insts:
        assert (len(i.triples), len(i.negatives)) in {(1, 0), (0, 1)}
        word = "yes" if i.triples else "no"
        assert word in i.answer.lower().split(".")[0]


def test_hard_negatives_are_siblings_and_cousins(view, sampler):
    zinc = view.eid("GO:0008270")
    sib, cou = sampler.hard_pools(zinc)
    ids = lambda es: {view.ids[e] for e in es}  # noqa: E731
    assert ids(sib) == {"GO:0005507", "GO:0005506"}  # copper, iron
    # children of the grandparent (metal ion binding) and their children, own lineage removed
    assert ids(cou) == {"GO:0031420", "GO:0005509", "GO:0030955", "GO:0031402"}
    terms = view.terms(view.pid("P10009"))  # zinc + nucleus
    got = Counter()
    for seed in range(50):
        for neg in sampler.hard_negatives(random.Random(seed), zinc, terms, k=3):
            assert neg.eid in (sib if neg.kind == "sibling" else cou)
            got[neg.kind] += 1
    assert got["sibling"] and got["cousin"]
    # a protein carrying copper never gets copper as a hard negative
    terms = view.terms(view.pid("P10002"))
    copper = view.eid("GO:0005507")
    for seed in range(50):
        negs = sampler.hard_negatives(random.Random(seed), copper, terms, k=5)
        assert copper not in {n.eid for n in negs} and negs


def test_random_negatives_follow_term_frequency(view, sampler):
    terms = view.terms(view.pid("P10006"))  # kinase, anion, RNA binding: metal terms are all negatives
    rng = random.Random(0)
    counts = Counter(view.ids[e] for _ in range(3000) for e in sampler.random_negatives(rng, "F", terms, 1))
    assert set(counts) <= {view.ids[e] for e in sampler._pool["F"]}
    # metal ion binding annotates 7 proteins (propagated), calcium 1
    assert counts["GO:0046872"] > 3 * counts["GO:0005509"] > 0
    assert "GO:0005488" not in counts  # too general (depth 1), as positives


def test_multiple_choice_has_one_right_option(view, sampler, kg):
    insts = [i for i in generate_many(view, sampler, range(40)) if i.task == "multiple_choice"]
    assert insts
    for i in insts:
        question = i.prompt.split("Instruction: ", 1)[1]
        lines = [ln for ln in question.split("\n") if ln[:3] in ("A. ", "B. ", "C. ", "D. ")]
        assert [ln[0] for ln in lines] == ["A", "B", "C", "D"]
        right = kg.entity(i.triples[0][2]).name
        letter = next(ln[0] for ln in lines if ln[3:] == right)
        _, expected = render(
            "multiple_choice", i.phrasing, {"options": "", "letter": letter, "option": right, "aspect_name": ""}
        )
        assert i.answer.startswith(expected)  # the chain, if any, follows
        assert len(i.negatives) == 3


# -- design ------------------------------------------------------------------------------------------


def test_design_answers_are_the_protein(view, sampler):
    always = GenerateOptions(tasks=("design",), length_hint=1.0)
    never = GenerateOptions(tasks=("design",), length_hint=0.0)
    with_len = generate_many(view, sampler, range(10), always)
    without = generate_many(view, sampler, range(10), never)
    assert with_len and without
    for i in with_len + without:
        seq = next(p[1] for p in PROTEINS if p[0] == i.accession)
        assert i.answer == protein_text(seq)
        assert i.prompt.startswith("Instruction: ") and i.prompt.endswith("\n\nOutput: ")
        assert "<protein>" not in i.prompt and i.text == i.prompt + i.answer
        assert i.triples and i.chain == ""
    assert all("length" in TASKS["design"].phrasings[i.phrasing].slots for i in with_len)
    assert not any("length" in TASKS["design"].phrasings[i.phrasing].slots for i in without)
    assert any("about 50 " in i.prompt or "about 50 aa" in i.prompt for i in with_len if i.accession == "P10004")
    plain = generate_many(view, sampler, range(2), GenerateOptions(tasks=("design",), design_format="plain"))
    assert all(not i.text.startswith("Instruction:") and i.format == "plain" for i in plain)


# -- determinism and edge cases -------------------------------------------------------------------------


def test_same_seed_same_instructions(view, sampler, metal):
    a = [i.to_dict() for i in generate_many(view, sampler, range(5))]
    # a fresh view and sampler: nothing depends on cache state
    v2 = KGView(metal)
    b = [i.to_dict() for i in generate_many(v2, NegativeSampler(v2), range(5))]
    assert a == b
    c = [i.to_dict() for i in generate_many(view, sampler, range(5, 10))]
    assert a != c


def test_protein_without_annotations_yields_nothing(view, sampler, tiny):
    assert instructions_for_protein(view, "P10008", random.Random(0), sampler) == []
    tv = KGView(tiny)
    assert instructions_for_protein(tv, "Q00003", random.Random(0), NegativeSampler(tv)) == []


def test_non_standard_residues_are_mapped(view, sampler):
    # P10008 has no annotation; P10001's design text shows the notation; check the view's record directly
    assert protein_text(view.protein_info(view.pid("P10008")).sequence) == "<protein>MKCXXKXXAA</protein>"


def test_counts_and_unknown_tasks(view, sampler):
    opts = GenerateOptions(tasks=("yes_no", "location"), counts={"yes_no": 3})
    insts = instructions_for_protein(view, "P10001", random.Random(0), sampler, opts)
    assert Counter(i.task for i in insts) == {"yes_no": 3, "location": 1}
    with pytest.raises(ValueError, match="bogus"):
        instructions_for_protein(view, "P10001", random.Random(0), sampler, GenerateOptions(tasks=("bogus",)))
    with pytest.raises(ValueError, match="min_depth"):
        instructions_for_protein(view, "P10001", random.Random(0), sampler, GenerateOptions(min_depth=3))


def test_chains_attach_to_answers(view, sampler):
    opts = GenerateOptions(tasks=("yes_no",), yes_fraction=1.0, direct_positive=0.0, chain_in_answer=1.0)
    insts = [
        i for seed in range(40) for i in instructions_for_protein(view, "P10001", random.Random(seed), sampler, opts)
    ]
    metal_q = [i for i in insts if "metal ion binding?" in i.prompt and "transition" not in i.prompt]
    assert metal_q
    for i in metal_q:
        # why a zinc binder answers yes to metal ion binding
        assert i.chain.startswith("zinc ion binding is a") and i.chain.endswith("metal ion binding")
        assert i.answer.endswith(i.chain[1:] + ".")
