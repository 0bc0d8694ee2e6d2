"""The exportable (dense, traceable) formulation of packed attention and segment ids.

No data-dependent shapes: segment ids come from `cu_seqlens` by comparison-and-sum, and
attention is one 4-D `scaled_dot_product_attention` over all N packed tokens with a
block-diagonal boolean mask. O(N^2) memory, but the dynamo ONNX exporter, torch.export and
TensorRT trace it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segment_ids_dense(cu_seqlens: torch.Tensor, total: int | torch.Tensor | None = None,
                      like: torch.Tensor | None = None) -> torch.Tensor:
    """cu (S+1,) int32 -> (N,) int64 segment index of every packed row (comparison-and-sum).

    N is taken from `like.shape[0]` when given (traceable), else `total`.
    """
    n = like.shape[0] if like is not None else int(total)
    rows = torch.arange(n, device=cu_seqlens.device, dtype=torch.int64)  # (N,)
    ends = cu_seqlens[1:].to(torch.int64)  # (S,)
    return (rows[:, None] >= ends[None, :]).sum(dim=1)  # (N,)


def segment_ids(cu_seqlens: torch.Tensor, total: int, exportable: bool = False,
                like: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) int64 segment index per row; `repeat_interleave` eagerly, comparison-and-sum for export."""
    if exportable:
        return segment_ids_dense(cu_seqlens, total, like=like)
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).to(torch.int64)  # (S,)
    return torch.repeat_interleave(torch.arange(lengths.shape[0], device=cu_seqlens.device), lengths,
                                   output_size=total)


def dense_masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           cu_seqlens: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """q, k, v (N, H, D) -> (N, H, D): block-diagonal attention as one dense 4-D SDPA call."""
    seg = segment_ids_dense(cu_seqlens, like=q)  # (N,)
    mask = (seg[:, None] == seg[None, :])[None, None]  # (1, 1, N, N)
    q4, k4, v4 = (t.transpose(0, 1)[None] for t in (q, k, v))  # (1, H, N, D)
    o = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask, dropout_p=dropout_p)  # (1, H, N, D)
    return o[0].transpose(0, 1)  # (N, H, D)
