"""Protein notation and the prompt formats an instruction is written in.

The paper's checkpoint reads ``{protein}Instruction: {question}\\n\\nOutput: {answer}``,
where ``{protein}`` is ``<protein>`` + one token per residue + ``</protein>``. The
benchmark scoring prompts (instructprotein/data/benchmarks/README.md) are this same format cut right
after ``Output: <answer prefix>``, so instructions rendered here put zero-shot evaluation
prompts in-distribution.

Every renderer returns the character span of the answer, so a collator can put the loss
on the response only. The span never includes the separator space after ``Output:``; a
BPE tokenizer whose token `` Based`` covers that space and the first answer character
must count the token as part of the answer (the token that covers ``span[0]``).
"""

from __future__ import annotations

PROTEIN_OPEN = "<protein>"
PROTEIN_CLOSE = "</protein>"
INSTRUCTION_PREFIX = "Instruction: "
OUTPUT_SEPARATOR = "\n\nOutput: "

STANDARD_RESIDUES = frozenset("ACDEFGHIKLMNPQRSTVWY")
UNKNOWN_RESIDUE = "X"

RESIDUE_MAP: dict[str, str] = {
    "U": "C",  # selenocysteine: cysteine with Se for S; same place in the chain, same chemistry class
    "O": "K",  # pyrrolysine: a lysine derivative, encoded where lysine-like residues sit
    "B": "X",  # Asx = D or N, undetermined: guessing D would be wrong about half the time
    "Z": "X",  # Glx = E or Q, undetermined
    "J": "X",  # Xle = L or I, undetermined
    "X": "X",  # unknown stays unknown
}
"""How non-standard residue letters are written in the protein notation.

Why: the paper's checkpoint has residue tokens only for the 20 standard amino acids (no X,
U, B, Z, O, J), and our tokenizer adds exactly one unknown-residue token, ``X``.

- U (selenocysteine) and O (pyrrolysine) are real, *known* residues that are chemically
  derived from C and K; writing their parent keeps the sequence length and puts a real
  residue with the closest chemistry in place (as UniProt's own "U -> C" convention for
  tools that only know 20 letters).
- B, Z and J are ambiguity codes: the lab could not tell D from N, E from Q, L from I.
  Picking one would state something the record does not know; X says "unknown" honestly,
  and the tokenizer has a token for it.
- X stays X.

Lowercase letters are upper-cased first; a trailing ``*`` (stop) is dropped; any other
character is an error, not something to guess about. In Swiss-Prot 2014 (516k entries)
2,099 sequences contain X, 243 U, 136 B, 113 Z, 29 O.
"""

_TRANSLATION = str.maketrans(RESIDUE_MAP)


def normalize_sequence(sequence: str) -> str:
    """Upper-case, drop a trailing stop, and apply :data:`RESIDUE_MAP`; reject anything else."""
    seq = sequence.strip().upper()
    if seq.endswith("*"):
        seq = seq[:-1]
    if not seq:
        raise ValueError("empty protein sequence")
    out = seq.translate(_TRANSLATION)
    bad = set(out) - STANDARD_RESIDUES - {UNKNOWN_RESIDUE}
    if bad:
        raise ValueError(f"not residue letters: {''.join(sorted(bad))!r}")
    return out


def protein_text(sequence: str) -> str:
    """``<protein>`` + the residues + ``</protein>``, residues mapped by :data:`RESIDUE_MAP`.

    The string stays plain residues ("<protein>MKT...</protein>"); splitting into one token
    per residue is the tokenizer's job, so this notation is readable and greppable.
    """
    return f"{PROTEIN_OPEN}{normalize_sequence(sequence)}{PROTEIN_CLOSE}"


def render_paper(protein: str | None, question: str, answer: str) -> tuple[str, tuple[int, int]]:
    """The paper's format ``{protein}Instruction: {question}\\n\\nOutput: {answer}``.

    ``protein`` is the raw residue sequence for protein -> text tasks (it is written with
    :func:`protein_text`; text that :func:`protein_text` already made is taken as is, so a
    generator writes a protein once for all its instructions), and ``None`` or ``""`` for
    design tasks, whose ``answer`` is then the protein text itself. Returns
    ``(text, (start, end))`` with ``text[start:end] == answer``.
    """
    if not protein:
        prefix = ""
    elif protein.startswith(PROTEIN_OPEN) and protein.endswith(PROTEIN_CLOSE):
        prefix = protein
    else:
        prefix = protein_text(protein)
    head = f"{prefix}{INSTRUCTION_PREFIX}{question}{OUTPUT_SEPARATOR}"
    return head + answer, (len(head), len(head) + len(answer))


def render_plain(question: str, answer: str) -> tuple[str, tuple[int, int]]:
    """A scaffold-free alternative: ``{question}\\n\\n{answer}``, no protein prefix.

    Meant for text -> protein pairs written as plain prose (a description followed by the
    sequence), so a model does not depend on the ``Instruction:``/``Output:`` markers to
    design. ``render_paper(None, q, a)`` is the paper's own design format.
    """
    head = f"{question}\n\n"
    return head + answer, (len(head), len(head) + len(answer))
