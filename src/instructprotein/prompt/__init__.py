"""The prompt contract: everything that decides what the model reads.

The residue alphabet and protein notation, the paper's layout (:mod:`.render`), the homolog
evidence block (:mod:`.evidence`), and how a prompt is cut to the model's context (:mod:`.fit`:
the paper's cut, the model's own, the answer room, the shortest protein kept, one ``fit``).
Training (instruct, train) and asking (infer, evaluate, serve) import it, and nothing else
cuts or renders a protein, so a model is asked in exactly the form it was trained on.

It sits below every other layer (it imports nothing of the project): formats < prompt < kg <
instruct < model < train < infer < evaluate < serve < cli.
"""

from instructprotein.prompt.evidence import (
    HEADER,
    KINDS,
    NONE_FOUND,
    HomologFacts,
    block_parts,
    evidence_block,
    shorter_block,
    with_evidence,
)
from instructprotein.prompt.fit import (
    CUT_ABOVE,
    GAP,
    KEEP_LAST,
    MIN_RESIDUES,
    Fitted,
    Prompt,
    answer_room,
    build_prompt,
    cap_protein,
    cut_sequence,
    design_prompt,
    fit,
    fit_prompt,
    fit_residues,
    fit_shared,
    option_text,
    prompt_budget,
    shortest_kept,
)
from instructprotein.prompt.render import (
    INSTRUCTION_PREFIX,
    OUTPUT_SEPARATOR,
    PROTEIN_CLOSE,
    PROTEIN_OPEN,
    RESIDUE_MAP,
    STANDARD_RESIDUES,
    UNKNOWN_RESIDUE,
    normalize_sequence,
    protein_text,
    render_paper,
    render_plain,
)

__all__ = [
    "CUT_ABOVE",
    "GAP",
    "HEADER",
    "INSTRUCTION_PREFIX",
    "KEEP_LAST",
    "KINDS",
    "MIN_RESIDUES",
    "NONE_FOUND",
    "OUTPUT_SEPARATOR",
    "PROTEIN_CLOSE",
    "PROTEIN_OPEN",
    "RESIDUE_MAP",
    "STANDARD_RESIDUES",
    "UNKNOWN_RESIDUE",
    "Fitted",
    "HomologFacts",
    "Prompt",
    "answer_room",
    "block_parts",
    "build_prompt",
    "cap_protein",
    "cut_sequence",
    "design_prompt",
    "evidence_block",
    "fit",
    "fit_prompt",
    "fit_residues",
    "fit_shared",
    "normalize_sequence",
    "option_text",
    "prompt_budget",
    "protein_text",
    "render_paper",
    "render_plain",
    "shorter_block",
    "shortest_kept",
    "with_evidence",
]
