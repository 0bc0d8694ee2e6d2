"""Transformer layers over flat packed rows: attention through `varlen_attention` or, with the
`exportable` switch, the dense masked formulation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pragmatiq.kernels import apply_rope, exportable_attention, first_query_attention, varlen_attention
from pragmatiq.zoo.dropout import Dropout


def sinusoid(positions: torch.Tensor, d: int) -> torch.Tensor:
    """positions (N,) int -> (N, d) float32 sinusoid [sin | cos]."""
    i = torch.arange(0, d, 2, dtype=torch.float32, device=positions.device)  # (d/2,)
    angle = positions.float()[:, None] * torch.exp(-math.log(10_000.0) * i / d)[None, :]  # (N, d/2)
    return torch.cat([angle.sin(), angle.cos()], dim=-1)  # (N, d)


class Attention(nn.Module):
    def __init__(self, d: int, n_heads: int, attn_dropout: float, backend: str):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d // n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.attn_dropout = attn_dropout
        self.backend = backend
        self.exportable = False

    def forward(self, x: torch.Tensor, cu: torch.Tensor, max_seqlen: int,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None, heads_only: bool = False,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, d), cu (S+1,) int32 -> (N, d); attention within each segment only. `heads_only`:
        the output at each segment's first row alone, (S, d), computing those queries alone;
        `rows` (K,) int64: the output at those rows, (K, d), projected there alone (the attention
        itself runs at every row: for short segments in runs that is as fast as any subset)."""
        if heads_only and self.training and self.attn_dropout > 0:
            # attention dropout: the full path, read at the head rows
            return self.forward(x, cu, max_seqlen, rope)[cu[:-1].to(torch.int64)]
        if heads_only:
            return self._forward_heads(x, cu, rope)  # (S, d)
        n = x.shape[0]
        qkv = self.qkv(x).view(n, 3, self.n_heads, self.head_dim)  # (N, 3, H, D)
        q, k, v = qkv.unbind(1)  # each (N, H, D)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        p = self.attn_dropout if self.training else 0.0
        if self.exportable:
            o = exportable_attention(q, k, v, cu, dropout_p=p)  # (N, H, D)
        else:
            o = varlen_attention(q, k, v, cu, max_seqlen, dropout_p=p, backend=self.backend)
        if rows is not None:
            o = o[rows]  # (K, H, D)
        return self.proj(o.reshape(o.shape[0], self.n_heads * self.head_dim))  # (N or K, d)

    def _forward_heads(self, x: torch.Tensor, cu: torch.Tensor,
                       rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x (N, d), cu (S+1,) -> (S, d) at each segment's first row: keys and values for every
        row, queries for the S head rows only."""
        n, d = x.shape
        heads = cu[:-1].to(torch.int64)  # (S,)
        w_q, w_kv = self.qkv.weight.split([d, 2 * d])
        b_q, b_kv = self.qkv.bias.split([d, 2 * d])
        q = F.linear(x[heads], w_q, b_q).view(-1, self.n_heads, self.head_dim)  # (S, H, D)
        k, v = F.linear(x, w_kv, b_kv).view(n, 2, self.n_heads, self.head_dim).unbind(1)  # (N, H, D)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos[heads], sin[heads]), apply_rope(k, cos, sin)
        o = first_query_attention(q, k, v, cu)  # (S, H, D)
        return self.proj(o.reshape(-1, d))  # (S, d)


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), x + MLP(LN(x)), GELU, dropout."""

    def __init__(self, d: int, n_heads: int, ffn_mult: int, dropout: float, attn_dropout: float,
                 backend: str):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, n_heads, attn_dropout, backend)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ffn_mult * d), nn.GELU(), nn.Linear(ffn_mult * d, d))
        self.drop = Dropout(dropout)

    def forward(self, x, cu, max_seqlen, rope=None, heads_only: bool = False, rows=None):
        """x (N, d) -> (N, d), or with `heads_only` (S, d) at each segment's first row, or with
        `rows` (K,) int64 (K, d) at those rows."""
        if heads_only or rows is not None:
            at = cu[:-1].to(torch.int64) if heads_only else rows
            x = x[at] + self.drop(self.attn(self.ln1(x), cu, max_seqlen, rope, heads_only=heads_only,
                                            rows=rows))  # (S or K, d)
        else:
            x = x + self.drop(self.attn(self.ln1(x), cu, max_seqlen, rope))  # (N, d)
        return x + self.drop(self.mlp(self.ln2(x)))


class Encoder(nn.Module):
    """A stack of blocks plus a final LayerNorm, over flat rows segmented by `cu`."""

    def __init__(self, n_layers: int, d: int, n_heads: int, ffn_mult: int, dropout: float,
                 attn_dropout: float, backend: str):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(d, n_heads, ffn_mult, dropout, attn_dropout, backend) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, x, cu, max_seqlen, rope=None, heads_only: bool = False, rows=None):
        """x (N, d) -> (N, d). `heads_only`: the output read only at each segment's first row
        (cu (S+1,), every segment non-empty) -> (S, d); the last block then computes those rows
        alone, so its queries, feed-forward and attention cost O(S) and O(L) per segment instead
        of O(N) and O(L^2). `rows` (K,) int64: the output read only at those rows -> (K, d); the
        last block's projection and feed-forward then run at those rows alone."""
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            x = blk(x, cu, max_seqlen, rope, heads_only=heads_only and i == last, rows=rows if i == last else None)
        return self.ln_f(x)  # (N, d), (S, d) or (K, d)
