"""Moved to :mod:`instructprotein.prompt.render` (the prompt contract); kept for old imports."""

from instructprotein.prompt.render import (  # noqa: F401
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
