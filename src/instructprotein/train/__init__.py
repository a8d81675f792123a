"""Training: tokenised and packed data, and one training loop for both stages.

- :mod:`~instructprotein.train.data`: packed rows and their cache (flat token files in the
  run folder); the pre-training corpus packed into rows of the context length (documents
  cut and concatenated, no padding);
- :mod:`~instructprotein.train.instruction_data`: instruction examples fitted by the prompt
  contract and packed several per row with labels on the answer only (or on every token)
  and attention that does not cross examples;
- :mod:`~instructprotein.train.stages`: :func:`~instructprotein.train.stages.pretrain` and
  :func:`~instructprotein.train.stages.finetune`, thin set-ups around one loop
  (:func:`~instructprotein.train.loop.train_loop`) that runs through ``accelerate``: one
  CPU, one GPU, or ``accelerate launch`` on many (DDP, FSDP, DeepSpeed); beside it
  :mod:`~instructprotein.train.loss` (the loss of a batch of packed rows),
  :mod:`~instructprotein.train.distributed` (processes and precision),
  :mod:`~instructprotein.train.runfolder` (checkpoints, the best model, the run folder) and
  :mod:`~instructprotein.train.logs` (log.csv, TensorBoard, the console bar, the loss plot).

Heavy modules (torch, transformers, accelerate) are imported by the submodules only.
"""
