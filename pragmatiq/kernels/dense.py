"""The exportable (traceable) formulation of packed attention and segment ids.

Segment ids come from `cu_seqlens` by a cumulative sum of boundary marks, and attention runs
on a padded (segments x longest segment) grid in one 4-D `scaled_dot_product_attention` call.
The grid size is the one data-dependent size (an unbacked symbol under torch.export, a scripted
int under torch.jit.trace); the dynamo ONNX exporter, torch.export / AOTInductor and
TorchScript all keep it dynamic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segment_ids_dense(cu_seqlens: torch.Tensor, total: int | torch.Tensor | None = None,
                      like: torch.Tensor | None = None) -> torch.Tensor:
    """cu (S+1,) int32 -> (N,) int64 segment index of every packed row, O(N + S).

    A 1 is added at every inner boundary (an empty segment adds twice at the same row, so its id
    is skipped) and the marks are summed cumulatively. N is `like.shape[0]` when given
    (traceable), else `total`.
    """
    return _segments(cu_seqlens, like.shape[0] if like is not None else int(total))


def _segments(cu_seqlens: torch.Tensor, n: int) -> torch.Tensor:
    inner = cu_seqlens[1:-1].to(torch.int64)  # (S-1,) values in [0, N]
    marks = torch.zeros(n + 1, dtype=torch.int64, device=cu_seqlens.device).index_add(
        0, inner, torch.ones_like(inner))  # (N+1,)
    return marks.cumsum(0)[:n]  # (N,)


def segment_ids(cu_seqlens: torch.Tensor, total: int, exportable: bool = False,
                like: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) int64 segment index per row; `repeat_interleave` eagerly, comparison-and-sum for export."""
    if exportable:
        return segment_ids_dense(cu_seqlens, total, like=like)
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).to(torch.int64)  # (S,)
    return torch.repeat_interleave(torch.arange(lengths.shape[0], device=cu_seqlens.device), lengths,
                                   output_size=total)


def _grid_len(lengths: torch.Tensor) -> int:
    """Longest segment (at least 2, so no size-1 broadcasting is ever in question), as a symbolic
    size under torch.export and a plain int in TorchScript."""
    if torch.jit.is_scripting():
        return max(int(lengths.max()), 2)
    n = lengths.max().clamp(min=2).item()
    torch._check(n >= 2)
    return n


def padded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """q, k, v (N, H, D) -> (N, H, D): attention within each segment, traceable.

    Rows are scattered into a (S, L) grid (L the longest segment), attended with a key-padding
    mask in one 4-D SDPA call and gathered back: O(S * L^2), not O(N^2). Indices are unique,
    so the scatter exports cleanly."""
    n, h, d = q.shape
    cu = cu_seqlens.to(torch.int64)
    lengths = cu[1:] - cu[:-1]  # (S,)
    s = lengths.shape[0]
    L = _grid_len(lengths)
    seg = _segments(cu_seqlens, n)  # (N,)
    slot = seg * L + (torch.arange(n, device=q.device) - cu[:-1][seg])  # (N,) row in the grid
    zeros = q.new_zeros(s * L, h, d)
    q4 = zeros.index_copy(0, slot, q).view(s, L, h, d).transpose(1, 2)  # (S, H, L, D)
    k4 = zeros.index_copy(0, slot, k).view(s, L, h, d).transpose(1, 2)
    v4 = zeros.index_copy(0, slot, v).view(s, L, h, d).transpose(1, 2)
    mask = (torch.arange(L, device=q.device)[None, :] < lengths[:, None])[:, None, None, :]  # (S, 1, 1, L)
    o = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask, dropout_p=dropout_p)  # (S, H, L, D)
    return o.transpose(1, 2).reshape(s * L, h, d)[slot]  # (N, H, D)


_scripted = None


def exportable_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                         dropout_p: float = 0.0) -> torch.Tensor:
    """`padded_attention`; under `torch.jit.trace` its scripted form, so the grid size stays dynamic."""
    global _scripted
    if torch.jit.is_tracing():
        if _scripted is None:
            _scripted = torch.jit.script(padded_attention)
        return _scripted(q, k, v, cu_seqlens, dropout_p)
    return padded_attention(q, k, v, cu_seqlens, dropout_p)
