"""Masked-value selection, vectorized and seeded per step.

15% of event tokens, 10% of whole events and 10% of (user, key) groups are selected; of the
selected, 90% become `[MASK]` with a target and 10% `[UNK]` with none. Profile tokens are never
masked. Shapes: T event tokens, E events, M targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pragmatiq.tokenizer.vocab import MASK, UNK


@dataclass
class Masked:
    value_ids: torch.Tensor  # (T,) int64 input values with [MASK]/[UNK] applied
    target_index: torch.Tensor  # (M,) int64 positions in the T event tokens that carry a target
    target_ids: torch.Tensor  # (M,) int64 original value ids there
    selected: torch.Tensor  # (T,) bool every selected token ([MASK] or [UNK])

    def to(self, device: torch.device | str) -> "Masked":
        """The same masks on `device` (drawn on the CPU, where the seeded generator lives)."""
        return Masked(*(t.to(device) for t in (self.value_ids, self.target_index, self.target_ids, self.selected)))


def step_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """The masking RNG of one micro-batch: a pure function of (seed, step, global micro index),
    so a resumed run and any number of processes draw the same masks."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + micro)


def mask_batch(batch, gen: torch.Generator, *, token_rate=0.15, event_rate=0.10, group_rate=0.10,
               unk_share=0.10) -> Masked:
    T, E = batch.n_tokens, batch.n_events
    device = batch.value_ids.device
    ntok = (batch.cu_tokens[1:] - batch.cu_tokens[:-1]).long().cpu()  # (E,)
    nev = (batch.cu_events[1:] - batch.cu_events[:-1]).long().cpu()  # (U,)
    event_of_tok = torch.repeat_interleave(torch.arange(E), ntok)  # (T,)
    user_of_tok = torch.repeat_interleave(torch.repeat_interleave(torch.arange(len(nev)), nev), ntok)
    sel = torch.rand(T, generator=gen) < token_rate
    sel |= (torch.rand(E, generator=gen) < event_rate)[event_of_tok]
    group = user_of_tok * (int(batch.key_ids.max()) + 1 if T else 1) + batch.key_ids.cpu()
    uniq, inverse = torch.unique(group, return_inverse=True)
    sel |= (torch.rand(len(uniq), generator=gen) < group_rate)[inverse]
    as_unk = sel & (torch.rand(T, generator=gen) < unk_share)
    as_mask = sel & ~as_unk
    values = batch.value_ids.clone()
    target_index = as_mask.nonzero().squeeze(1).to(device)
    target_ids = values[target_index].clone()
    values[as_mask.to(device)] = MASK
    values[as_unk.to(device)] = UNK
    return Masked(values, target_index, target_ids, sel.to(device))
