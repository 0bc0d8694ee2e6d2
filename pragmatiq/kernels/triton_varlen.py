"""Our own Triton varlen attention kernel (bidirectional), forward and backward.

Specialised for many short segments: a program owns BLOCK_M consecutive *packed rows* (not one
segment), so one 32-row tile holds several 2-25-token events instead of wasting a 64-wide tile on
each. Keys are scanned over the span of the segments the tile touches, and the block-diagonal
mask compares per-row segment ids. Long segments work too (the scan is then a flash-attention
loop over the segment). Online softmax in fp32; the backward recomputes P from the saved
log-sum-exp (FlashAttention-2 style): one kernel for dK/dV per key tile, one for dQ per query tile.

Layout: q, k, v (total, H, D); cu_seqlens (S+1,) int32. Runs on CUDA, or on CPU under the Triton
interpreter (TRITON_INTERPRET=1, set before triton is imported) for correctness tests.
"""

from __future__ import annotations

import contextlib
import math

import torch
import triton
import triton.language as tl


@triton.jit
def _dot(a, b, IEEE: tl.constexpr):
    if IEEE:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b)


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, SEG, RSTART, REND, total, n_heads, scale,
                HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_D: tl.constexpr, IEEE: tl.constexpr):
    pid = tl.program_id(0)
    h = tl.program_id(1)
    stride_t = n_heads * HEAD_DIM
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < total
    d_mask = offs_d < HEAD_DIM
    qm = m_mask[:, None] & d_mask[None, :]
    q = tl.load(Q + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=qm, other=0.0)
    seg_q = tl.load(SEG + offs_m, mask=m_mask, other=-1)
    first = pid * BLOCK_M
    last = tl.minimum(first + BLOCK_M, total) - 1
    k_lo = tl.load(RSTART + first)
    k_hi = tl.load(REND + last)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(k_lo, k_hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_mask = offs_n < k_hi
        km = n_mask[:, None] & d_mask[None, :]
        k = tl.load(K + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=km, other=0.0)
        v = tl.load(V + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=km, other=0.0)
        seg_k = tl.load(SEG + offs_n, mask=n_mask, other=-2)
        s = _dot(q, tl.trans(k), IEEE) * scale  # (BLOCK_M, BLOCK_N) fp32
        s = tl.where(seg_q[:, None] == seg_k[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(s - m_safe[:, None])
        alpha = tl.exp(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, IEEE)
        m_i = m_new
    l_safe = tl.where(l_i > 0, l_i, 1.0)
    o = acc / l_safe[:, None]
    tl.store(O + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], o.to(O.dtype.element_ty), mask=qm)
    tl.store(LSE + offs_m * n_heads + h, m_i + tl.log(l_safe), mask=m_mask)


@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, SEG, RSTART, REND, total, n_heads, scale,
                     HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_D: tl.constexpr, IEEE: tl.constexpr):
    pid = tl.program_id(0)
    h = tl.program_id(1)
    stride_t = n_heads * HEAD_DIM
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_mask = offs_n < total
    d_mask = offs_d < HEAD_DIM
    km = n_mask[:, None] & d_mask[None, :]
    k = tl.load(K + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=km, other=0.0)
    v = tl.load(V + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=km, other=0.0)
    seg_k = tl.load(SEG + offs_n, mask=n_mask, other=-2)
    first = pid * BLOCK_N
    last = tl.minimum(first + BLOCK_N, total) - 1
    q_lo = tl.load(RSTART + first)
    q_hi = tl.load(REND + last)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for start_m in range(q_lo, q_hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        m_mask = offs_m < q_hi
        qm = m_mask[:, None] & d_mask[None, :]
        q = tl.load(Q + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=qm, other=0.0)
        do = tl.load(DO + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=qm, other=0.0)
        lse = tl.load(LSE + offs_m * n_heads + h, mask=m_mask, other=0.0)
        delta = tl.load(DELTA + offs_m * n_heads + h, mask=m_mask, other=0.0)
        seg_q = tl.load(SEG + offs_m, mask=m_mask, other=-1)
        s = _dot(q, tl.trans(k), IEEE) * scale  # (BLOCK_M, BLOCK_N)
        valid = seg_q[:, None] == seg_k[None, :]
        p = tl.where(valid, tl.exp(s - lse[:, None]), 0.0)
        dv += _dot(tl.trans(p.to(do.dtype)), do, IEEE)
        dp = _dot(do, tl.trans(v), IEEE)
        ds = p * (dp - delta[:, None])
        dk += _dot(tl.trans(ds.to(q.dtype)), q, IEEE)
    dk = dk * scale
    tl.store(DK + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], dk.to(DK.dtype.element_ty), mask=km)
    tl.store(DV + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=km)


@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, SEG, RSTART, REND, total, n_heads, scale,
                   HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_D: tl.constexpr, IEEE: tl.constexpr):
    pid = tl.program_id(0)
    h = tl.program_id(1)
    stride_t = n_heads * HEAD_DIM
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < total
    d_mask = offs_d < HEAD_DIM
    qm = m_mask[:, None] & d_mask[None, :]
    q = tl.load(Q + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=qm, other=0.0)
    do = tl.load(DO + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=qm, other=0.0)
    lse = tl.load(LSE + offs_m * n_heads + h, mask=m_mask, other=0.0)
    delta = tl.load(DELTA + offs_m * n_heads + h, mask=m_mask, other=0.0)
    seg_q = tl.load(SEG + offs_m, mask=m_mask, other=-1)
    first = pid * BLOCK_M
    last = tl.minimum(first + BLOCK_M, total) - 1
    k_lo = tl.load(RSTART + first)
    k_hi = tl.load(REND + last)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(k_lo, k_hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_mask = offs_n < k_hi
        km = n_mask[:, None] & d_mask[None, :]
        k = tl.load(K + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=km, other=0.0)
        v = tl.load(V + offs_n[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], mask=km, other=0.0)
        seg_k = tl.load(SEG + offs_n, mask=n_mask, other=-2)
        s = _dot(q, tl.trans(k), IEEE) * scale
        p = tl.where(seg_q[:, None] == seg_k[None, :], tl.exp(s - lse[:, None]), 0.0)
        dp = _dot(do, tl.trans(v), IEEE)
        ds = p * (dp - delta[:, None])
        dq += _dot(ds.to(k.dtype), k, IEEE)
    dq = dq * scale
    tl.store(DQ + offs_m[:, None] * stride_t + h * HEAD_DIM + offs_d[None, :], dq.to(DQ.dtype.element_ty), mask=qm)


def _row_meta(cu_seqlens: torch.Tensor, total: int):
    """(total,) int32 segment id, first row and end row of every packed row's segment."""
    cu = cu_seqlens.to(torch.int64)
    lengths = cu[1:] - cu[:-1]
    seg = torch.repeat_interleave(torch.arange(lengths.shape[0], device=cu.device), lengths, output_size=total)
    return seg.to(torch.int32), cu[:-1][seg].to(torch.int32).contiguous(), cu[1:][seg].to(torch.int32).contiguous()


BLOCK_M = 32
BLOCK_N = 32


def _on_device_of(t: torch.Tensor):
    """Triton launches on the current CUDA device and its stream: make that t's GPU (cuda:1 in
    one process, or a torchrun rank that never called set_device). A no-op for CPU tensors
    (the interpreter, in tests)."""
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


class _TritonVarlen(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, cu_seqlens, max_seqlen):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        total, n_heads, head_dim = q.shape
        seg, rstart, rend = _row_meta(cu_seqlens, total)
        o = torch.empty_like(q)
        lse = torch.empty(total, n_heads, device=q.device, dtype=torch.float32)
        scale = 1.0 / math.sqrt(head_dim)
        meta = dict(HEAD_DIM=head_dim, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N,
                    BLOCK_D=max(16, triton.next_power_of_2(head_dim)), IEEE=q.dtype == torch.float32)
        with _on_device_of(q):
            _fwd_kernel[(triton.cdiv(total, BLOCK_M), n_heads)](q, k, v, o, lse, seg, rstart, rend, total, n_heads,
                                                                  scale, **meta)
        ctx.save_for_backward(q, k, v, o, lse, seg, rstart, rend)
        ctx.scale, ctx.meta = scale, meta
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse, seg, rstart, rend = ctx.saved_tensors
        do = do.contiguous()
        total, n_heads, _ = q.shape
        delta = (do.float() * o.float()).sum(-1).contiguous()  # (total, H)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        args = (total, n_heads, ctx.scale)
        with _on_device_of(q):
            _bwd_dkdv_kernel[(triton.cdiv(total, BLOCK_N), n_heads)](q, k, v, do, lse, delta, dk, dv, seg, rstart,
                                                                      rend, *args, **ctx.meta)
            _bwd_dq_kernel[(triton.cdiv(total, BLOCK_M), n_heads)](q, k, v, do, lse, delta, dq, seg, rstart, rend,
                                                                    *args, **ctx.meta)
        return dq, dk, dv, None, None


def triton_varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                            max_seqlen: int) -> torch.Tensor:
    """q, k, v (total, H, D) fp16/bf16/fp32, cu_seqlens (S+1,) int32 -> (total, H, D). Differentiable."""
    return _TritonVarlen.apply(q, k, v, cu_seqlens, max_seqlen)
