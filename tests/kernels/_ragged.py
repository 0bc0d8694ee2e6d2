"""Random ragged packed q/k/v for kernel tests."""

from __future__ import annotations

import torch


def ragged(lengths, heads=2, head_dim=32, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32, device=device)
    total = int(cu[-1])
    q, k, v, do = (torch.randn(total, heads, head_dim, generator=g).to(device=device, dtype=dtype)
                   for _ in range(4))
    return q, k, v, do, cu, max(lengths)


EVENT_LENGTHS = [1, 2, 25, 7, 3, 24, 1, 11, 5, 19, 2, 2, 9]  # event-encoder-like: many short segments
HISTORY_LENGTHS = [1, 70, 3, 130, 41]  # history-like: fewer, longer segments
MANY_LENGTHS = [(7 * i) % 23 + 1 for i in range(90)]  # lengths changing at every segment: length buckets
BY_LENGTH = sorted(MANY_LENGTHS)  # the event encoder's layout: runs of equal length
WITH_EMPTY = [0, 3, 3, 0, 5, 5, 5, 0]  # empty segments between and at both ends
