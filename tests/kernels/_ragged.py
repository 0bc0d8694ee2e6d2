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
