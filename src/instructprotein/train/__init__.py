"""Training: tokenised and packed data, and one training loop for both stages.

- :mod:`~instructprotein.train.data`: the pre-training corpus packed into rows of the
  context length (documents cut and concatenated, no padding), instruction examples
  packed several per row with labels on the answer only (or on every token) and
  attention that does not cross examples; both cached as flat token files in the run folder.
- :mod:`~instructprotein.train.loop`: :func:`~instructprotein.train.loop.pretrain` and
  :func:`~instructprotein.train.loop.finetune`, thin set-ups around one loop
  (:func:`~instructprotein.train.loop.train_loop`) that runs through ``accelerate``: one
  CPU, one GPU, or ``accelerate launch`` on many (DDP, FSDP, DeepSpeed).

Heavy modules (torch, transformers, accelerate) are imported by the submodules only.
"""
