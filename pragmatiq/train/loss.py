"""The pretraining loss: 3-view head at masked positions, cross-entropy with label smoothing
over the full vocabulary, plus lambda * MSE on masked text sentinels (Nemotron variant), plus
(optionally) the user-view term: every masked token predicted from its user's embedding alone."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from pragmatiq.train.fused_ce import linear_cross_entropy


def user_loss_sum(logits: torch.Tensor, owners: torch.Tensor, targets: torch.Tensor, *,
                  label_smoothing: float = 0.1) -> torch.Tensor:
    """logits (U, V) of each user's view, owners (M,) the user of each target, targets (M,) ->
    0-d fp32: sum over the M targets of the label-smoothed cross-entropy of logits[owners[i]],
    = F.cross_entropy(logits[owners], targets, label_smoothing=..., reduction="sum") without
    the (M, V) copy (a user's smoothing term is the same for each of its targets)."""
    logp = logits.float().log_softmax(dim=-1)  # (U, V)
    per_user = torch.bincount(owners, minlength=logits.shape[0]).to(logp.dtype)  # (U,)
    nll = logp[owners, targets].sum()
    uniform = (per_user * logp.mean(dim=-1)).sum()
    return -(1.0 - label_smoothing) * nll - label_smoothing * uniform


def mlm_loss_sum(model, batch, masked, *, label_smoothing: float = 0.1, text_weight: float = 1.0,
                 user_weight: float = 0.0, head_workers: int | None = None,
                 head_dtype: torch.dtype | None = None):
    """-> (summed loss over the M targets, number of targets whose logit is the largest, the
    unweighted user-view sum detached or None when it is off). Summed, not averaged, so
    micro-batches and processes can be weighted by their masked-token counts.
    `user_weight`: weight of the user-view term (`user_loss_sum`; the model needs its user head).
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
    user = None
    if user_weight:
        # U rows of logits: small enough to form whole, in the model's dtype
        logits = F.linear(core.user_hidden(out), core.tok_embed.weight, core.head_bias)  # (U, V)
        owners = core.token_owners(inputs, masked.target_index)[1]  # (M,)
        user = user_loss_sum(logits, owners, masked.target_ids, label_smoothing=label_smoothing)
        loss = loss + user_weight * user
        user = user.detach()
    # keep every parameter in the graph even when nothing was masked (DDP needs it)
    loss = loss + 0.0 * out.user_emb.sum()
    if texts:
        # also with no masked sentinel (then 0, with the text head still in the graph for DDP)
        idx = batch.text_token_index[masked.selected[batch.text_token_index]]
        pred = core.text_prediction(out, inputs, idx)  # (K, d_text)
        target = batch.text_vectors[masked.selected[batch.text_token_index]]
        loss = loss + text_weight * F.mse_loss(pred.float(), target.float(), reduction="sum") / pred.shape[-1]
    return loss, correct, user
