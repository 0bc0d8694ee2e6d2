"""The pretraining loss: 3-view head at masked positions, cross-entropy with label smoothing
over the full vocabulary, plus lambda * MSE on masked text sentinels (Nemotron variant)."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from pragmatiq.train.fused_ce import linear_cross_entropy


def mlm_loss_sum(model, batch, masked, *, label_smoothing: float = 0.1, text_weight: float = 1.0,
                 head_workers: int | None = None, head_dtype: torch.dtype | None = None):
    """-> (summed loss over the M targets, number of targets whose logit is the largest). Summed,
    not averaged, so micro-batches and processes can be weighted by their masked-token counts.
    `head_workers`: threads for the fused head (None: `fused_ce.default_workers`); `head_dtype`:
    its matmul dtype (None: the autocast dtype, or fp32)."""
    inputs = replace(batch, value_ids=masked.value_ids)
    texts = batch.text_vectors is not None and batch.text_token_index is not None
    if texts:
        # a masked sentinel must not see its own text vector
        hidden = masked.selected[batch.text_token_index]
        inputs = replace(inputs, text_vectors=batch.text_vectors.masked_fill(hidden[:, None], 0.0))
    # the event encoder's last block runs at the targets' rows alone (the text head reads others)
    out = model(inputs, token_rows=None if texts else masked.target_index)
    core = model.module if hasattr(model, "module") else model
    h = core.mlm_hidden(out, inputs, masked.target_index)  # (M, d)
    # = F.cross_entropy(core.mlm_logits(...), target_ids, label_smoothing, reduction="sum"), fused
    # and chunked over the rows so the (M, V) logits are never materialized
    loss, correct = linear_cross_entropy(h, core.tok_embed.weight, core.head_bias, masked.target_ids,
                                         label_smoothing=label_smoothing, workers=head_workers,
                                         dtype=head_dtype)
    # keep every parameter in the graph even when nothing was masked (DDP needs it)
    loss = loss + 0.0 * out.user_emb.sum()
    if texts:
        idx = batch.text_token_index[masked.selected[batch.text_token_index]]
        if len(idx):
            pred = core.text_prediction(out, inputs, idx)
            target = batch.text_vectors[masked.selected[batch.text_token_index]]
            loss = loss + text_weight * F.mse_loss(pred.float(), target.float(), reduction="sum") / pred.shape[-1]
    return loss, correct
