"""Thin wrappers of external programs (MMseqs2) that the pipeline runs as subprocesses.

They locate the binary, write its input files, run it and parse its output into plain
Python values; no pipeline logic lives here, so the instruction layer and the evaluation's
homology baseline share one tested way of calling each tool.
"""
