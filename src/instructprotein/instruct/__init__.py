"""The instruction layer: reads a built knowledge graph and writes training datasets.

It never changes the graph. Everything it derives (decontamination against benchmark sets,
sequence clusters, homology-aware train/valid/test splits, and from them the instructions)
is written as plain files next to a JSON summary that records the exact inputs, so a stage
whose inputs did not change is reused instead of recomputed.
"""
