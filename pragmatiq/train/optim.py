"""Optimizers and schedule: Muon for 2-D hidden weights, AdamW for the rest; warmup + cosine."""

from __future__ import annotations

import math

import torch
from torch import nn

# modules whose weights stay on AdamW although they are 2-D: the embedding (tied to the output),
# the tiny calendar input layer and the Nemotron text projections
_ADAMW_ONLY = ("tok_embed", "calendar.0", "text_in", "text_out")


def split_parameters(model: nn.Module) -> tuple[list, list]:
    """-> (muon params: 2-D hidden weights, adamw params: everything else)."""
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hidden_matrix = p.ndim == 2 and not any(name.startswith(prefix) for prefix in _ADAMW_ONLY)
        (muon if hidden_matrix else adamw).append(p)
    return muon, adamw


def build_optimizers(model: nn.Module, cfg) -> list[torch.optim.Optimizer]:
    muon, adamw = split_parameters(model)
    opts = [torch.optim.AdamW(adamw, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))]
    if muon:
        opts.append(torch.optim.Muon(muon, lr=cfg.muon_lr, weight_decay=cfg.weight_decay))
    return opts


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine down to `min_ratio` at `total` steps."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_schedulers(opts, cfg) -> list[torch.optim.lr_scheduler.LambdaLR]:
    f = lambda s: lr_factor(s, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)  # noqa: E731
    return [torch.optim.lr_scheduler.LambdaLR(o, f) for o in opts]
