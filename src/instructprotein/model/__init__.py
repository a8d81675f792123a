"""The language model: a joint protein + text tokenizer, presets, and model folders.

- :mod:`~instructprotein.model.tokenizer`: one token per residue inside
  ``<protein>`` ... ``</protein>``, byte-level BPE for text; reads our own tokenizer folders
  and the paper's released layout (OPT's GPT-2 BPE plus ``<protein>``, ``</protein>`` and
  ``Ƥ``+residue tokens).
- :mod:`~instructprotein.model.presets`: ``tiny`` / ``small`` / ``paper`` as plain YAML files
  (model shape, tokenizer size, pre-training and instruction-tuning hyper-parameters).
- :mod:`~instructprotein.model.factory`: create, load and save ``transformers`` causal LMs
  (OPT architecture, safetensors, written atomically).

Nothing here trains; the training loop (``instructprotein.train``) builds on these. This
package imports no heavy module itself, so ``import instructprotein.model.presets`` stays
cheap for the CLI's ``--help`` and for config validation.
"""
