"""Fused, chunked `linear -> cross-entropy` for the tied full-vocabulary MLM head.

    loss, correct = linear_cross_entropy(h, weight, bias, target, label_smoothing=0.1)

is, to fp32 rounding, `F.cross_entropy(F.linear(h, weight, bias), target, label_smoothing=...,
reduction="sum")`, without ever holding the (M, V) logits. `correct` counts the rows whose target
logit is the largest (the reference `argmax == target`, except that a tie counts as correct).

Shapes: M target rows, V vocabulary, d width. With label smoothing eps, row i's loss is

    lse_i - (1 - eps) * z_iy - (eps / V) * sum_j z_ij,     lse_i = logsumexp_j z_ij

and its gradient in the logits is softmax(z_i) - (1 - eps) * onehot(y_i) - eps / V.

Rows are taken `chunk` at a time into one reused fp32 logits block that stays in cache: the
logits are written once, softmaxed in place and fed straight to the two gradient matmuls, so the
forward pass also forms the gradients (the loss is a sum: backward only scales them). That is
three (M, V, d) matmuls in all, the minimum, and no (M, V) tensor is allocated, filled or copied.
`sum_j z_ij = h_i . sum_j w_j + sum_j b_j` is computed in closed form, and the one-hot and
uniform parts of the gradient are rank-one or scatter updates applied after the loop.
"""

from __future__ import annotations

import torch

from pragmatiq._hardware import cpu_has_bf16
from pragmatiq._threads import cpu_workers, map_on_threads

# rows per chunk: a (64, V) fp32 block is 3 MB at V = 12k, about the per-core L2 here, and the
# matmuls are as fast as with larger blocks (measured on the 2-core CPU, V = 11.8k, d = 64)
DEFAULT_CHUNK = 64
# on an accelerator the block lives in device memory, not cache: fewer, larger launches win
# (a (4096, 28k) fp32 block is 460 MB)
ACCELERATOR_CHUNK = 4096
# in a lower compute dtype, rows whose probabilities are gathered before one dL/dw product
# (measured on the 2-core CPU in bf16, M = 3,261, V = 11.8k: 70 ms per chunk, 59 ms at 128 rows,
# 63 at 256: a transposed left operand slows the product as its rows grow)
FLUSH_ROWS = 128


def default_chunk(device: torch.device) -> int:
    """Rows per logits block: DEFAULT_CHUNK on CPU, ACCELERATOR_CHUNK elsewhere."""
    return DEFAULT_CHUNK if device.type == "cpu" else ACCELERATOR_CHUNK


def _compute_dtype(h: torch.Tensor) -> torch.dtype:
    """The matmul dtype: the autocast dtype when autocast is on for h's device, else fp32."""
    dev = h.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return torch.float32


HEAD_PRECISIONS = ("auto", "fp32", "bf16")


def head_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The fused head's matmul dtype for a `head_precision` setting: "fp32", "bf16", or "auto" =
    bf16 on a CPU that multiplies bf16 natively, else None (the autocast dtype, or fp32)."""
    if precision not in HEAD_PRECISIONS:
        raise ValueError(f"head_precision must be one of {list(HEAD_PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else None
    return torch.float32 if precision == "fp32" else torch.bfloat16


def _softmax_(z: torch.Tensor) -> torch.Tensor:
    """z (c, V) fp32 -> the same storage holding softmax(z) over V (rows are independent, and
    the kernel reads each element before writing it)."""
    return torch.ops.aten._softmax.out(z, -1, False, out=z)


def _wb_sums(x: torch.Tensor, lo: int, hi: int, v: int, ones: bool, want: bool) -> tuple:
    """-> (rows [lo, hi) of x, with a ones column when `ones`; the fp32 dL/dw (V, d) [| dL/db]
    sums (V, d[+1]) when `want`, else None). The ones column makes dL/db the last column of the
    dL/dw product (and, in fp32, the bias a last column of the logits product)."""
    xa = x[lo:hi]
    if ones:
        xa = torch.cat([xa, torch.ones(hi - lo, 1, dtype=x.dtype, device=x.device)], 1)
    return xa, (torch.zeros(v, xa.shape[1], dtype=torch.float32, device=x.device) if want else None)


def _split_wb(g_wb: torch.Tensor | None, d: int, need) -> tuple:
    if g_wb is None:
        return None, None
    return (g_wb[:, :d] if need[1] else None), (g_wb[:, d] if need[2] else None)


# A row block: rows [lo, hi) of the fused head, `chunk` rows at a time. It writes out["z_y"],
# out["lse"], out["hit"] (M,) and out["g_x"] (M, d) at those rows and returns its (softmax part of
# dL/dw (V, d) or None, of dL/db (V,) or None), fp32.


def _row_block_fp32(x, w, wb, target, lo: int, hi: int, chunk: int, out: dict, need) -> tuple:
    """A row block in fp32, through one reused logits block laid out transposed, (V, c): the
    product w @ x^T, tall and thin, runs at ~90 GF/s on the 2-core AVX2 machine where x @ w^T
    into a (c, V) block runs at 25 (measured, V = 11.8k, d = 64). The bias rides in the product:
    wb is [w | b] (V, d+1) against a ones column of x (or w itself, without a bias). The softmax's
    normalization is applied to the (c, d)-sized operands of the gradient products, not to the
    (V, c) block."""
    (v, d), g_x = w.shape, out["g_x"]
    xa, g_wb = _wb_sums(x, lo, hi, v, wb.shape[1] > d, need[1] or need[2])  # (n, d[+1]), (V, d[+1])
    buf = torch.empty(v * min(chunk, hi - lo), dtype=torch.float32, device=x.device)
    for i in range(lo, hi, chunk):
        j = min(i + chunk, hi)
        xc = xa[i - lo:j - lo]  # (c, d[+1])
        zt = torch.mm(wb, xc.t(), out=buf[: v * (j - i)].view(v, j - i))  # (V, c) logits
        zy = zt.gather(0, target[None, i:j]).squeeze(0)  # (c,)
        zmax = zt.amax(dim=0)  # (c,)
        out["z_y"][i:j], out["hit"][i:j] = zy, zy >= zmax
        total = zt.sub_(zmax).exp_().sum(dim=0)  # (c,) at least 1: the largest term is exp(0)
        out["lse"][i:j] = zmax + total.log()
        # zt now holds exp(z - zmax); softmax = zt / total, column by column
        if g_x is not None:
            torch.mm(zt.t(), w, out=g_x[i:j]).div_(total[:, None])  # (c, d) softmax part of dL/dx
        if g_wb is not None:
            g_wb.addmm_(zt, xc / total[:, None])  # (V, d[+1])
    return _split_wb(g_wb, d, need)


def _row_block_lowp(x, w, b, target, lo: int, hi: int, chunk: int, out: dict, need) -> tuple:
    """A row block with bf16/fp16 products, through one reused (c, V) fp32 logits block: the
    softmax stays fp32, and the probabilities of up to FLUSH_ROWS rows are gathered in the compute
    dtype first, so the dL/dw product runs over many rows at once and is added to the fp32 sums
    once per flush."""
    (v, d), g_x = w.shape, out["g_x"]
    xa, g_wb = _wb_sums(x, lo, hi, v, need[2], need[1] or need[2])
    kw = dict(dtype=torch.float32, device=x.device)
    z = torch.empty(min(chunk, hi - lo), v, **kw)  # the reused logits block
    flush = min(max(FLUSH_ROWS, chunk), hi - lo)
    pb = torch.empty(flush, v, dtype=x.dtype, device=x.device)  # (F, V) gathered p
    f0 = lo  # first row held in pb
    for i in range(lo, hi, chunk):
        j = min(i + chunk, hi)
        zc = z[: j - i].copy_(x[i:j] @ w.t())  # (c, V)
        if b is not None:
            zc.add_(b)
        zy = zc.gather(1, target[i:j, None]).squeeze(1)  # (c,)
        zmax = zc.amax(dim=1)  # (c,)
        out["z_y"][i:j], out["hit"][i:j] = zy, zy >= zmax
        p = _softmax_(zc)  # (c, V) in place
        # lse = zmax - log p_max, and p_max >= 1/V: the log never sees an underflow
        out["lse"][i:j] = zmax - p.amax(dim=1).log()
        if g_x is None and g_wb is None:  # loss only: no products
            continue
        pc = pb[i - f0:j - f0]
        pc.copy_(p)  # (c, V) in the compute dtype
        if g_x is not None:
            g_x[i:j] = pc @ w
        if j - f0 + chunk > flush or j == hi:  # pb full, or the last chunk
            if g_wb is not None:
                g_wb += pb[: j - f0].t() @ xa[f0 - lo:j - lo]  # (V, d[+1])
            f0 = j
    return _split_wb(g_wb, d, need)


# rows are cut into at most this many blocks, each with its own dL/dw, dL/db partial sums added
# in block order; on CPU every block runs with one intra-op thread, so the result is bitwise the
# same for any number of worker threads and any torch thread count
BLOCKS = 8


def _bounds(m: int, chunk: int, blocks: int = BLOCKS) -> list[tuple[int, int]]:
    """Split rows [0, m) into at most `blocks` contiguous runs of whole chunks."""
    n_chunks = -(-m // chunk)
    per = -(-n_chunks // max(1, min(blocks, n_chunks)))
    return [(lo, min(lo + per * chunk, m)) for lo in range(0, m, per * chunk)]


def _map_blocks(fn, bounds, workers: int, cpu: bool) -> list:
    """[fn(lo, hi) for each block], in block order, on up to `workers` threads. On CPU each block
    runs with one intra-op thread (`pragmatiq._threads`: measured on the 2-core machine, 2 workers
    of 1 thread ~10% faster than 1 of 2), and a block's rounding never depends on how many
    threads there are."""
    if not cpu:
        return [fn(lo, hi) for lo, hi in bounds]
    return map_on_threads(lambda b: fn(*b), bounds, workers)


def default_workers(device: torch.device) -> int:
    """Row blocks run side by side: on CPU, one per core of this process's share, at most
    BLOCKS; elsewhere 1."""
    return min(BLOCKS, cpu_workers(device))


def _chunked_forward(x, w, b, target, eps: float, chunk: int, workers: int, need: tuple[bool, bool, bool]):
    """x (M, d), w (V, d) in the compute dtype, b (V,) fp32 or None, target (M,) int64 ->
    (loss 0-d fp32, correct 0-d int64, dL/dx (M, d), dL/dw (V, d), dL/db (V,)), gradients fp32 or
    None where `need` says so. Bitwise deterministic for a given (M, chunk), whatever `workers`."""
    m, d = x.shape
    v = w.shape[0]
    kw = dict(dtype=torch.float32, device=x.device)
    out = {"z_y": torch.empty(m, **kw),  # (M,) target logit
           "lse": torch.empty(m, **kw),  # (M,) logsumexp of the row
           "hit": torch.empty(m, dtype=torch.bool, device=x.device),  # (M,) target logit is the largest
           "g_x": torch.empty(m, d, **kw) if need[0] else None}  # (M, d)
    if x.dtype == torch.float32:
        wb = torch.cat([w, b[:, None]], 1) if b is not None else w  # (V, d[+1]), once for every block
        block = lambda lo, hi: _row_block_fp32(x, w, wb, target, lo, hi, chunk, out, need)  # noqa: E731
    else:
        block = lambda lo, hi: _row_block_lowp(x, w, b, target, lo, hi, chunk, out, need)  # noqa: E731
    parts = _map_blocks(block, _bounds(m, chunk), workers, x.device.type == "cpu") if m else []
    g_x = out["g_x"]
    g_w = torch.zeros(v, d, **kw) if need[1] else None
    g_b = torch.zeros(v, **kw) if need[2] else None
    for pw, pb in parts:  # block order, whatever the threads: deterministic sums
        if g_w is not None:
            g_w += pw
        if g_b is not None:
            g_b += pb
    xf, wf = x.float(), w.float()
    w_sum = wf.sum(dim=0)  # (d,)
    z_sum = xf @ w_sum + (b.sum() if b is not None else 0.0)  # (M,) sum_j z_ij in closed form
    loss = (out["lse"] - (1.0 - eps) * out["z_y"] - (eps / v) * z_sum).sum()
    # the -(1 - eps) * onehot(y) - eps / V part of dL/dz, folded into the products
    if g_x is not None:
        g_x -= (1.0 - eps) * wf[target] + (eps / v) * w_sum
    if g_w is not None:
        g_w.index_add_(0, target, xf, alpha=-(1.0 - eps))
        g_w -= (eps / v) * xf.sum(dim=0)
    if g_b is not None:
        g_b.index_add_(0, target, torch.ones(m, **kw), alpha=-(1.0 - eps))
        g_b -= eps * m / v
    return loss, out["hit"].sum(), g_x, g_w, g_b


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, label_smoothing: float, chunk: int, workers: int,
                want_grad: bool, dtype: torch.dtype | None):
        need = (want_grad and h.requires_grad, want_grad and weight.requires_grad,
                want_grad and bias is not None and bias.requires_grad)
        cdt = _compute_dtype(h) if dtype is None else dtype
        with torch.autocast(h.device.type, enabled=False):
            loss, correct, g_h, g_w, g_b = _chunked_forward(
                h.detach().to(cdt), weight.detach().to(cdt),  # detached: worker threads run with grad on
                bias.detach().float() if bias is not None else None, target,
                float(label_smoothing), max(1, int(chunk)), max(1, int(workers)), need)
        ctx.mark_non_differentiable(correct)
        ctx.grads = (g_h, g_w, g_b)
        ctx.dtypes = (h.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, grad_correct):
        grads = tuple(None if g is None else (g * grad_loss).to(dt) for g, dt in zip(ctx.grads, ctx.dtypes))
        return grads + (None, None, None, None, None, None)


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         target: torch.Tensor, *, label_smoothing: float = 0.0,
                         chunk: int | None = None, workers: int | None = None,
                         dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """h (M, d), weight (V, d), bias (V,) or None, target (M,) int64 in [0, V) ->
    (summed label-smoothed cross-entropy of the logits h @ weight^T + bias over the M rows, a 0-d
    fp32 tensor; 0-d int64 count of rows whose target logit is the largest).

    Differentiable in h, weight and bias (first order: the gradients are formed in the forward
    pass and only scaled by backward); no (M, V) tensor is kept. The matmuls run in `dtype`
    (None: the autocast dtype under autocast, else fp32), the softmax always in fp32. `workers` row blocks
    run in parallel threads (None: `default_workers(h.device)`); `chunk` rows go through one
    logits block at a time (None: `default_chunk(h.device)`)."""
    if h.ndim != 2 or weight.ndim != 2 or h.shape[1] != weight.shape[1]:
        raise ValueError(f"linear_cross_entropy: h {tuple(h.shape)} and weight {tuple(weight.shape)} "
                         "must be (M, d) and (V, d)")
    if target.shape != (h.shape[0],):
        raise ValueError(f"linear_cross_entropy: target {tuple(target.shape)} must be ({h.shape[0]},)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear_cross_entropy: bias {tuple(bias.shape)} must be ({weight.shape[0]},)")
    workers = default_workers(h.device) if workers is None else workers
    chunk = default_chunk(h.device) if chunk is None else chunk
    return _LinearCrossEntropy.apply(h, weight, bias, target.long(), float(label_smoothing), int(chunk),
                                     int(workers), torch.is_grad_enabled(), dtype)
