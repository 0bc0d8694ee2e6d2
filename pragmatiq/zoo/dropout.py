"""Dropout with a cheaper mask on CPU.

`nn.Dropout` on CPU draws one float Bernoulli sample per element: 3.3 ms forward and backward for
a (8192, 64) activation on the 2-core machine. Drawing 16 random bits per element and comparing
them with a threshold takes 2.0 ms (nano pretraining: +3% tokens/s, measured A/B), with a drop
probability within 2^-15 of the configured one and the scale matched to it, so the output stays
unbiased. Other devices use `F.dropout` (fused there). Identity in eval mode, as `nn.Dropout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_BITS = 15  # int16 `random_()` draws uniformly from [0, 2^15)


class Dropout(nn.Module):
    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * 2**_BITS)  # a draw below this drops the element
        self.scale = 1.0 / (1.0 - self.threshold / 2**_BITS)  # 1 / P(keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        keep = torch.empty(x.shape, dtype=torch.int16).random_() >= self.threshold  # (same as x) bool
        return x * (keep * self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"
