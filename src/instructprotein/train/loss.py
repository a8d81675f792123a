"""The loss of a batch of packed rows: summed token losses, each example kept apart by its mask and
positions; training and the validation loss both take it.

Apart from the loop (:mod:`~instructprotein.train.loop`): what a step computes, not how steps run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instructprotein.train.data import block_causal_mask

if TYPE_CHECKING:
    import torch


def token_loss_sum(model: Any, batch: dict[str, Any], device: Any, attn_impl: str = "sdpa") -> torch.Tensor:
    """Sum of the token losses of a batch from :meth:`PackedRows.batch`, each times its ``weights``
    when the batch has them (labels shifted: token ``i`` is predicted from tokens ``< i``); packed
    examples get their block-diagonal mask and own positions."""
    import torch.nn.functional as F

    ids = batch["input_ids"].to(device)
    labels = batch["labels"].to(device)
    pos = batch["position_ids"]
    mask = None
    if pos is not None:
        pos = pos.to(device)
        if attn_impl.startswith("flash"):
            # flash-attention finds example boundaries in position_ids only for one flattened row
            # (transformers' DataCollatorWithFlattening layout); every row starts an example, whose
            # first token (bos) has no label, so flattening pairs no token with another row's.
            # Not exercised by the tests here (no GPU).
            ids, labels, pos = ids.reshape(1, -1), labels.reshape(1, -1), pos.reshape(1, -1)
        else:
            mask = _attention_mask(pos, attn_impl)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    # shift the labels, not the logits: slicing [B, T, V] logits would copy them (as transformers' own loss does)
    shifted = F.pad(labels, (0, 1), value=-100)[:, 1:]
    weights = batch.get("weights")
    if weights is None:
        return F.cross_entropy(logits.flatten(0, 1).float(), shifted.flatten(), ignore_index=-100, reduction="sum")
    losses = F.cross_entropy(logits.flatten(0, 1).float(), shifted.flatten(), ignore_index=-100, reduction="none")
    w = F.pad(weights.to(device), (0, 1))[:, 1:]  # shifted as the labels are
    return (losses * w.flatten()).sum()


def _attention_mask(position_ids: torch.Tensor, attn_impl: str) -> torch.Tensor:
    """The mask that keeps packed examples apart, in the form the model's attention takes."""
    import torch

    mask = block_causal_mask(position_ids)
    if attn_impl == "eager":  # added to the scores
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(
            ~mask, torch.finfo(torch.float32).min
        )
    return mask  # sdpa, flex: boolean, True = attend
