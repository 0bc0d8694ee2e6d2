"""TimeRoPE: rotate-half rotary embedding driven by continuous time (log-seconds).

Positions are fp32 `tau` values (not integer indices): the rotary angle is `tau * inv_freq`.
`TimeRoPE.cos_sin(tau)` is built once per encoder forward and shared by every layer.
"""

from __future__ import annotations

import torch
from torch import nn


class TimeRoPE(nn.Module):
    """cos/sin tables for rotary attention on fp32 time positions.

    Args:
        head_dim: D, must be even.
        base: frequency base; inv_freq[i] = base ** (-2i / D).
    """

    def __init__(self, head_dim: int, base: float = 10_000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"TimeRoPE needs an even head_dim, got {head_dim}")
        self.head_dim = head_dim
        self.base = float(base)

    def inv_freq(self, device: torch.device) -> torch.Tensor:
        """(D/2,) float32; built on the fly (no buffer, so meta-device builds need no re-init)."""
        i = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=device)
        return self.base ** (-i / self.head_dim)

    def cos_sin(self, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tau (N,) float -> cos, sin each (N, 1, D) float32 (broadcast over heads)."""
        angle = tau.float()[:, None] * self.inv_freq(tau.device)[None, :]  # (N, D/2)
        angle = torch.cat([angle, angle], dim=-1)  # (N, D)
        return angle.cos()[:, None, :], angle.sin()[:, None, :]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (N, H, D), cos/sin (N, 1, D) fp32 -> rotated x (N, H, D) in x's dtype (math in fp32)."""
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)
