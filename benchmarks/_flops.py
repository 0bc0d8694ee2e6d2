"""Analytic model FLOPs (a multiply-add is 2 FLOPs), shared by the forward and training benchmarks.

Per encoder with N packed rows, width d, n layers and segments of lengths L_s:

    FLOPs = n * (24 * N * d^2  +  4 * d * sum_s L_s^2)

(24 N d^2: the qkv, output and 4d-FFN projections; 4 d sum L^2: QK^T and PV within segments).
A batch adds the calendar MLP, 2 E (6 d + d^2). A training step is three forward passes' worth
(the backward pass costs two), plus the MLM head at the M masked rows, 2 M V d forward, and the
user-view head at the U users when the model has it, 2 U V d forward. Embedding lookups,
LayerNorms, softmax and GELU are not counted. These are model FLOPs: the training step skips some
of them (the event encoder's last block runs at the masked rows only), so MFU computed from them
is the usual "model FLOPs utilization", not the hardware's count.
"""

from __future__ import annotations

import numpy as np


def encoder_flops(n_layers: int, d: int, lengths: np.ndarray) -> float:
    """Forward FLOPs of `n_layers` blocks of width d over segments of `lengths` (S,) rows."""
    n = float(lengths.sum())
    return n_layers * (24 * n * d * d + 4 * d * float((lengths.astype(np.float64) ** 2).sum()))


def batch_flops(cfg, b) -> dict[str, float]:
    """Forward FLOPs of the three encoders (and the calendar MLP in "total") on a PackedBatch."""
    d = cfg.d_model
    ev = np.diff(b.cu_tokens.numpy()) + 1  # [EVT] + tokens
    pr = np.diff(b.cu_profile.numpy()) + 1  # [USR] + profile tokens
    hi = np.diff(b.cu_events.numpy()) + 1  # profile slot + events
    f = {"event": encoder_flops(cfg.n_layers_event, d, ev), "profile": encoder_flops(cfg.n_layers_profile, d, pr),
         "history": encoder_flops(cfg.n_layers_history, d, hi)}
    f["total"] = sum(f.values()) + 2 * b.n_events * (6 * d + d * d)
    return f


def train_step_flops(cfg, b, masked: int, vocab_size: int, user_head: bool) -> float:
    """Model FLOPs of one training step (forward and backward) on PackedBatch b with `masked`
    MLM targets."""
    head = 2 * masked * vocab_size * cfg.d_model
    if user_head:
        head += 2 * b.n_users * vocab_size * cfg.d_model
    return 3 * (batch_flops(cfg, b)["total"] + head)


# dense bf16 tensor-core peaks (TFLOP/s, no sparsity), by a substring of torch.cuda.get_device_name()
BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0,
                    "H100 NVL": 835.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a known GPU (the longest matching name), or None."""
    hits = [k for k in BF16_PEAK_TFLOPS if k in device_name]
    return BF16_PEAK_TFLOPS[max(hits, key=len)] if hits else None
