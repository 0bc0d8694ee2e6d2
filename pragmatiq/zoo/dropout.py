"""Dropout with a cheaper mask on CPU.

`nn.Dropout` on CPU draws one float Bernoulli sample per element: 3.3 ms forward and backward for
a (8192, 64) activation on the 2-core machine. Comparing 15 random bits per element with a
threshold takes 2.0 ms (nano pretraining: +3% tokens/s, measured A/B), with a drop probability
within 2^-15 of the configured one and the scale matched to it, so the output stays unbiased.
The bits come four elements to one 63-bit draw: (10509, 64) masks in 1.8 ms instead of 4.6 with
one int16 draw per element (measured on the 2-core AVX2 machine). Other devices use `F.dropout`
(fused there). Identity in eval mode, as `nn.Dropout`.

`with dropout_generator(gen):` makes the masks drawn in this thread come from `gen`: work split
across threads (zoo/parts.py) then draws each share's masks from its own seeded stream, the same
whichever thread runs it and in whatever order.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

_BITS = 15  # each element's draw: 15 uniform bits, in [0, 2^15)
_LOCAL = threading.local()  # .generator: this thread's mask stream, when set


@contextmanager
def dropout_generator(generator: torch.Generator | None):
    """Masks drawn in this thread within the block come from `generator` (None: the default)."""
    before = getattr(_LOCAL, "generator", None)
    _LOCAL.generator = generator
    try:
        yield
    finally:
        _LOCAL.generator = before


def keep_mask(shape: torch.Size, threshold: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A bool mask of `shape`, each element kept when its 15-bit uniform draw is >= threshold.
    int64 `random_()` is uniform in [0, 2^63): all its bits but the top one are fair and
    independent, so each of its four 16-bit lanes, with the lane's top bit cleared, is one draw."""
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(generator=generator)  # (ceil(n/4),)
    draws = bits.view(torch.int16)[:n] & (2**_BITS - 1)  # (n,) in [0, 2^15)
    return (draws >= threshold).view(shape)


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
        if x.device.type != "cpu":  # (threads with their own streams run on CPU only)
            return F.dropout(x, self.p, training=True)
        return x * (keep_mask(x.shape, self.threshold, getattr(_LOCAL, "generator", None)) * self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"
