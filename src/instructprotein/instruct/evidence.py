"""Moved to :mod:`instructprotein.prompt` (evidence blocks and the cut rule); kept for old imports."""

from instructprotein.prompt.evidence import HEADER, KINDS, NONE_FOUND, HomologFacts, evidence_block, with_evidence  # noqa: F401
from instructprotein.prompt.fit import GAP, answer_room, fit_residues  # noqa: F401
