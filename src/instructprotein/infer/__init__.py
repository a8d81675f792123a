"""Inference: what a trained model folder is used for.

- :mod:`~instructprotein.infer.classify`: zero-shot choice among options by likelihood
  (the paper's first-token rule and full-option log-likelihood), the shared prefix run once
  and its key-value cache reused for every option;
- :mod:`~instructprotein.infer.generate`: ``describe`` (function, location and GO terms of a
  sequence, the GO terms mapped to real ids and closed under the ontology) and ``design``
  (sampling constrained to residue tokens between ``<protein>`` and ``</protein>``);
- :mod:`~instructprotein.infer.checks`: what is checked on a designed sequence;
- :mod:`~instructprotein.infer.retrieval`: homologs from the knowledge graph (MMseqs2),
  the prompt block that carries their annotations, homology transfer as a baseline;
- :mod:`~instructprotein.infer.model`: :class:`~instructprotein.infer.model.Model`, the
  Python API; :mod:`~instructprotein.infer.commands`: plain functions behind the CLI.

Importing this package imports nothing heavy; torch and transformers load with the modules
that need them.
"""
