"""`varlen_attention`: bidirectional attention over packed segments, behind one function.

Layout follows flash-attn: q, k, v are (total, H, D); `cu_seqlens` is (S+1,) int32 with
cu[0] == 0 and cu[-1] == total; `max_seqlen` is a python int. Every backend answers
`refuse_reason(q, cu_seqlens, max_seqlen, dropout_p) -> str | None`; `backend="auto"` takes
the first backend in preference order that does not refuse, and when none fits the error
lists every backend with its reason.
"""

from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from pragmatiq import _optional
from pragmatiq.kernels.dense import segment_ids


class Backend(NamedTuple):
    name: str
    refuse_reason: Callable[[torch.Tensor, torch.Tensor, int, float], str | None]
    run: Callable[..., torch.Tensor]
    availability: Callable[[], str | None]  # None when usable on this machine in principle


def _check_inputs(q, k, v, cu_seqlens):
    if q.dim() != 3 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must all be (total, H, D); got {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1:
        raise ValueError(f"cu_seqlens must be a 1-D int32 tensor, got {cu_seqlens.dtype} "
                         f"with shape {tuple(cu_seqlens.shape)}")


# ---------------------------------------------------------------- reference (tests only)
def _reference(q, k, v, cu_seqlens, max_seqlen, dropout_p=0.0):
    """Per-segment eager loop in fp32: the oracle."""
    out = []
    bounds = cu_seqlens.tolist()
    scale = 1.0 / math.sqrt(q.shape[-1])
    for s, e in zip(bounds[:-1], bounds[1:]):
        if e == s:
            continue
        qs, ks, vs = (t[s:e].float().transpose(0, 1) for t in (q, k, v))  # (H, L, D)
        p = torch.softmax(qs @ ks.transpose(-1, -2) * scale, dim=-1)  # (H, L, L)
        if dropout_p > 0:
            p = F.dropout(p, dropout_p)
        out.append((p @ vs).transpose(0, 1))  # (L, H, D)
    if not out:
        return q.new_zeros(q.shape)
    return torch.cat(out).to(q.dtype)


def _reference_refuse(q, cu_seqlens, max_seqlen, dropout_p):
    return None


# ---------------------------------------------------------------- sdpa (any device)
MIN_BUCKET = 8  # measured on CPU: fewer, masked buckets beat exact-length unmasked ones (2x fwd+bwd)


def _bucket_of(lengths: torch.Tensor) -> torch.Tensor:
    """Power-of-two length buckets (>= MIN_BUCKET): (S,) int64 -> (S,) int64 bucket bound."""
    b = torch.ceil(torch.log2(lengths.clamp(min=1).double())).to(torch.int64)
    return (2 ** b).clamp(min=MIN_BUCKET)


def _padded_buckets(cu_seqlens: torch.Tensor, total: int):
    """Non-empty segments bucketed by length (`_bucket_of`), for one dense call per bucket.
    Yields per bucket (seg (n,) its segments, rows (n, L) their packed rows padded to the
    bucket's longest, valid (n, L) which of those are real)."""
    cu = cu_seqlens.to(torch.int64)
    starts, lengths = cu[:-1], cu[1:] - cu[:-1]  # (S,), (S,)
    buckets = torch.where(lengths > 0, _bucket_of(lengths), torch.zeros_like(lengths))
    uniq = [b for b in torch.unique(buckets).tolist() if b > 0]
    # longest segment per bucket, fetched in one host sync
    maxes = torch.stack([lengths.masked_fill(buckets != b, 0).max() for b in uniq]).tolist() if uniq else []
    for b, L in zip(uniq, maxes):
        seg = torch.nonzero(buckets == b).squeeze(1)  # (n,)
        ar = torch.arange(L, device=cu.device)  # (L,)
        valid = ar[None, :] < lengths[seg][:, None]  # (n, L)
        rows = (starts[seg][:, None] + ar[None, :]).clamp(max=total - 1)  # (n, L)
        yield seg, rows, valid


MAX_RUNS = 32  # at most this many runs of equal-length segments: one dense SDPA call per run


def _equal_length_runs(cu_seqlens: torch.Tensor) -> list[tuple[int, int, int]] | None:
    """The segments as runs of equal length, [(first row, segments, length)], or None when there
    are more than MAX_RUNS (segments not laid out by length, and not few)."""
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).to(torch.int64)  # (S,)
    starts = torch.nonzero(lengths[1:] != lengths[:-1]).squeeze(1) + 1  # (R-1,) first segment of each later run
    if starts.shape[0] + 1 > MAX_RUNS:
        return None
    starts = torch.cat([starts.new_zeros(1), starts])  # (R,)
    counts = torch.diff(starts, append=starts.new_tensor([lengths.shape[0]]))  # (R,)
    return list(zip(cu_seqlens[:-1][starts].tolist(), counts.tolist(), lengths[starts].tolist()))


def _sdpa_runs(q, k, v, runs, dropout_p=0.0):
    """Each run of n segments of length L is a (n, L) block of rows already: one unmasked SDPA
    call on views of it, no gather or padding (measured on the 2-core CPU, a nano batch's events
    laid out by length: forward 7 ms against 16 for length buckets, forward and backward 26
    against 36)."""
    outs = []  # per run (n * L, H, D), in row order
    for row, n, length in runs:
        if length == 0:
            continue
        rows = slice(row, row + n * length)
        qd, kd, vd = (t[rows].view(n, length, *t.shape[1:]).transpose(1, 2) for t in (q, k, v))  # (n, H, L, D)
        od = F.scaled_dot_product_attention(qd, kd, vd, dropout_p=dropout_p)  # (n, H, L, D)
        outs.append(od.transpose(1, 2).reshape(n * length, *q.shape[1:]))
    return torch.cat(outs)


def _sdpa(q, k, v, cu_seqlens, max_seqlen, dropout_p=0.0):
    """Segments in few runs of equal length (events laid out by length, a few histories): one
    dense call per run (`_sdpa_runs`). Otherwise bucket segments by length, pad each bucket
    densely, one SDPA call per bucket, then one gather of every packed row from the buckets'
    concatenated outputs (measured on CPU: 10-20% faster than unpadding each bucket by mask and
    scattering it back)."""
    runs = _equal_length_runs(cu_seqlens)
    if runs is not None:
        return _sdpa_runs(q, k, v, runs, dropout_p)
    outs = []  # per bucket (n * L, H, D)
    where = torch.empty(q.shape[0], dtype=torch.int64, device=q.device)  # (N,) row -> place in cat(outs)
    offset = 0
    for _, rows, valid in _padded_buckets(cu_seqlens, q.shape[0]):
        qd, kd, vd = (t[rows].permute(0, 2, 1, 3) for t in (q, k, v))  # (n, H, L, D)
        mask = valid[:, None, None, :]  # (n, 1, 1, L) key-padding mask
        od = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=mask, dropout_p=dropout_p)  # (n, H, L, D)
        n, L = rows.shape
        outs.append(od.permute(0, 2, 1, 3).reshape(n * L, *q.shape[1:]))
        where[rows[valid]] = torch.arange(offset, offset + n * L, device=q.device).view(n, L)[valid]
        offset += n * L
    if not outs:
        return q.new_zeros(q.shape)
    return torch.cat(outs)[where]  # every row lies in a non-empty segment, so every place is set


def first_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Attention of one query per segment over that whole segment: what `varlen_attention`
    gives at each segment's first row, without the other rows' queries (O(L) per segment, not
    O(L^2)). For encoders whose last layer is read only at the segments' head rows.

    q (S, H, D) the head rows' queries; k, v (N, H, D) packed, segmented by cu_seqlens (S+1,)
    int32, every segment non-empty -> (S, H, D).

    One score per packed row and a softmax within each segment by segment reductions, in fp32:
    nothing is padded, so a long history costs its length, not the next power of two, and the
    many short events need no per-bucket gathers (measured on the 2-core CPU: 2-10x faster than
    padded SDPA buckets for the event and history encoders' heads)."""
    n, h, d = k.shape
    if n == 0:  # no segments (every segment is non-empty)
        return q.new_zeros(q.shape)
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).to(torch.int64)  # (S,)
    seg = segment_ids(cu_seqlens, n)  # (N,) segment of every row
    s = (q.float()[seg] * k.float()).sum(-1) * d ** -0.5  # (N, H) scores
    m = torch.segment_reduce(s, "max", lengths=lengths)  # (S, H)
    e = (s - m[seg]).exp()  # (N, H), at most 1
    z = torch.segment_reduce(e, "sum", lengths=lengths)  # (S, H), at least 1 where non-empty
    out = torch.zeros(lengths.shape[0], h, d, dtype=torch.float32, device=k.device).index_add(
        0, seg, e[..., None] * v.float())  # (S, H, D)
    return (out / z.clamp(min=torch.finfo(torch.float32).tiny)[..., None]).to(v.dtype)


def _sdpa_refuse(q, cu_seqlens, max_seqlen, dropout_p):
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        return f"dtype {q.dtype} unsupported"
    return None


def _cuda_half_refuse(q) -> str | None:
    """Why a CUDA fp16/bf16-only kernel cannot take `q`, or None."""
    if q.device.type != "cuda":
        return f"needs a CUDA tensor, got {q.device.type}"
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"needs fp16/bf16, got {q.dtype}"
    return None


# ---------------------------------------------------------------- torch_varlen (CUDA)
def _torch_varlen_available() -> str | None:
    try:
        from torch.nn.attention import varlen  # noqa: F401
    except ImportError:
        return "torch.nn.attention.varlen not in this torch build"
    if not torch.cuda.is_available():
        return "needs CUDA (none found)"
    return None


def _torch_varlen_refuse(q, cu_seqlens, max_seqlen, dropout_p):
    why = _torch_varlen_available()
    if why:
        return why
    if why := _cuda_half_refuse(q):
        return why
    if dropout_p > 0:
        return "dropout not supported"
    return None


def _torch_varlen(q, k, v, cu_seqlens, max_seqlen, dropout_p=0.0):
    from torch.nn.attention.varlen import varlen_attn
    return varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen)


# ---------------------------------------------------------------- flash_attn (CUDA, optional)
def _flash_available() -> str | None:
    if not _optional.available("flash_attn"):
        return 'flash_attn not installed (pip install "pragmatiq[gpu]")'
    if not torch.cuda.is_available():
        return "needs CUDA (none found)"
    return None


def _flash_refuse(q, cu_seqlens, max_seqlen, dropout_p):
    why = _flash_available()
    if why:
        return why
    if why := _cuda_half_refuse(q):
        return why
    if q.shape[-1] > 256:
        return f"head_dim {q.shape[-1]} > 256"
    return None


def _flash(q, k, v, cu_seqlens, max_seqlen, dropout_p=0.0):
    fa = _optional.require("flash_attn")
    return fa.flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen,
                                     dropout_p=dropout_p, causal=False)


# ---------------------------------------------------------------- triton (own kernel)
def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _triton_available() -> str | None:
    if not _optional.available("triton"):
        return 'triton not installed (pip install "pragmatiq[dev]")'
    if not torch.cuda.is_available() and not _interpreting():
        return "needs CUDA (none found; TRITON_INTERPRET=1 runs it on CPU for tests)"
    return None


def _triton_refuse(q, cu_seqlens, max_seqlen, dropout_p):
    why = _triton_available()
    if why:
        return why
    if q.device.type != "cuda" and not _interpreting():
        return f"needs a CUDA tensor, got {q.device.type}"
    if dropout_p > 0:
        return "dropout not supported"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"dtype {q.dtype} unsupported"
    if q.shape[-1] > 128:
        return f"head_dim {q.shape[-1]} > 128"
    if q.numel() >= 2**31:  # the kernel's row offsets are int32
        return f"{q.numel():,} elements in q: its int32 offsets reach 2^31"
    return None


def _triton(q, k, v, cu_seqlens, max_seqlen, dropout_p=0.0):
    from pragmatiq.kernels.triton_varlen import triton_varlen_attention
    return triton_varlen_attention(q, k, v, cu_seqlens, max_seqlen)


def _always() -> None:
    return None


BACKENDS: dict[str, Backend] = {
    "torch_varlen": Backend("torch_varlen", _torch_varlen_refuse, _torch_varlen, _torch_varlen_available),
    "flash_attn": Backend("flash_attn", _flash_refuse, _flash, _flash_available),
    "triton": Backend("triton", _triton_refuse, _triton, _triton_available),
    "sdpa": Backend("sdpa", _sdpa_refuse, _sdpa, _always),
    "reference": Backend("reference", _reference_refuse, _reference, _always),
}

SHORT_SEGMENTS = 64  # at or below this max_seqlen the packed triton kernel wins (many short events)


def _auto_order(q: torch.Tensor, max_seqlen: int) -> list[str]:
    if q.device.type == "cuda":
        if max_seqlen <= SHORT_SEGMENTS:
            return ["triton", "flash_attn", "torch_varlen", "sdpa"]
        return ["flash_attn", "torch_varlen", "triton", "sdpa"]
    return ["sdpa"]  # CPU: the reference is tests-only, triton only under the interpreter


def refuse_reasons(q, cu_seqlens, max_seqlen, dropout_p=0.0) -> dict[str, str | None]:
    """{backend: reason it refuses this input, or None if it can run it}."""
    return {name: b.refuse_reason(q, cu_seqlens, max_seqlen, dropout_p) for name, b in BACKENDS.items()}


def select_backend(q, cu_seqlens, max_seqlen, dropout_p=0.0) -> str:
    """The backend `auto` would use; raises listing every backend and its reason when none fits."""
    order = _auto_order(q, max_seqlen)
    for name in order:
        if BACKENDS[name].refuse_reason(q, cu_seqlens, max_seqlen, dropout_p) is None:
            return name
    reasons = refuse_reasons(q, cu_seqlens, max_seqlen, dropout_p)
    lines = [f"  {n}: {reasons[n] or ('not used by auto (tests only)' if n == 'reference' else 'ok')}"
             for n in BACKENDS]
    raise RuntimeError(f"no attention backend can run q {tuple(q.shape)} {q.dtype} on {q.device} "
                       f"(max_seqlen={max_seqlen}, dropout_p={dropout_p}):\n" + "\n".join(lines))


def varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_seqlen: int, *, dropout_p: float = 0.0, backend: str = "auto") -> torch.Tensor:
    """Bidirectional attention within each packed segment.

    Args:
        q, k, v: (total, H, D), same dtype and device.
        cu_seqlens: (S+1,) int32 segment offsets, cu[0] == 0, cu[-1] == total.
        max_seqlen: python int, the longest segment.
        dropout_p: attention dropout (only while training).
        backend: "auto" or one of `BACKENDS`.
    Returns:
        (total, H, D) in q's dtype.
    """
    _check_inputs(q, k, v, cu_seqlens)
    if backend == "auto":
        backend = select_backend(q, cu_seqlens, max_seqlen, dropout_p)
    elif backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; valid: auto, {', '.join(BACKENDS)}")
    else:
        why = BACKENDS[backend].refuse_reason(q, cu_seqlens, max_seqlen, dropout_p)
        if why:
            raise RuntimeError(f"attention backend {backend!r} refuses this input: {why}")
    if q.shape[0] == 0:
        return q.new_zeros(q.shape)
    return BACKENDS[backend].run(q, k, v, cu_seqlens, max_seqlen, dropout_p=dropout_p)


def backend_report() -> dict[str, str]:
    """{backend: "available" or why not} on this machine, for `pragmatiq info`."""
    report = {}
    for name, b in BACKENDS.items():
        why = b.availability()
        report[name] = "available" if why is None else f"unavailable: {why}"
    report["reference"] = "available (tests only)"
    return report
