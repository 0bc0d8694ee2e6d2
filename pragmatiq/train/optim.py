"""Optimizers and schedule: Muon for 2-D hidden weights, AdamW for the rest; warmup + cosine."""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

from pragmatiq._hardware import cpu_has_bf16

# modules whose weights stay on AdamW although they are 2-D: the embedding (tied to the output),
# the tiny calendar input layer and the Nemotron text projections
_ADAMW_ONLY = ("tok_embed", "calendar.0", "text_in", "text_out")


def split_parameters(model: nn.Module) -> tuple[list, list]:
    """-> (muon params: 2-D hidden weights, adamw params: everything else)."""
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hidden_matrix = p.ndim == 2 and not any(name.startswith(prefix) for prefix in _ADAMW_ONLY)
        (muon if hidden_matrix else adamw).append(p)
    return muon, adamw


def newton_schulz_dtype(device: torch.device) -> torch.dtype:
    """Muon's orthogonalization dtype: bf16 (torch's choice) where bf16 matmuls are native, fp32
    on a CPU without them."""
    return torch.bfloat16 if device.type != "cpu" or cpu_has_bf16() else torch.float32


def orthogonalize(g: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float,
                  dtype: torch.dtype) -> torch.Tensor:
    """Muon's quintic Newton-Schulz iteration on g (A, B), or on each matrix of a stack (n, A, B),
    in `dtype` -> the same shape, as `torch.optim.Muon` computes it (there always in bf16, one
    matrix at a time)."""
    a, b, c = coefficients
    x = g.to(dtype)
    if x.ndim == 2:
        return orthogonalize(x[None], coefficients, steps, eps, dtype)[0]
    tall = g.shape[-2] > g.shape[-1]
    if tall:
        x = x.mT  # (n, B, A): the Gram matrix is the smaller side's
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm at most 1 (not in place)
    for _ in range(steps):
        gram = x @ x.mT  # (n, A, A)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


class Muon(torch.optim.Muon):
    """`torch.optim.Muon` (same arguments, state and update) with the Newton-Schulz iteration in
    `ns_dtype`, run once per stack of same-shaped matrices. torch runs it in bf16, which a CPU
    without native bf16 (AVX2 only) emulates at under 1 GF/s: the optimizer step took 136 ms of a
    ~700 ms nano step on such a 2-core machine, 20 ms in fp32 (measured); and one matrix at a time,
    where nano's 18 small matrices in 5 shapes took 9.7 ms a step against 4.4 stacked (2-core AVX-512 CPU)."""

    def __init__(self, params, *, ns_dtype: torch.dtype = torch.bfloat16, **kwargs):
        super().__init__(params, **kwargs)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, mom = float(group["lr"]), group["weight_decay"], group["momentum"]
            by_shape: dict[torch.Size, list] = {}  # shape -> [(param, update)]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse or torch.is_complex(p):
                    raise RuntimeError("Muon needs dense real gradients")
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - mom)
                update = p.grad.lerp(buf, mom) if group["nesterov"] else buf
                by_shape.setdefault(p.shape, []).append((p, update))
            for shape, items in by_shape.items():
                ortho = orthogonalize(torch.stack([_whole(u) for _, u in items]), group["ns_coefficients"],
                                      group["ns_steps"], group["eps"], self.ns_dtype)  # (n, A, B)
                scale = -lr * _lr_ratio(group["adjust_lr_fn"], shape)
                for (p, _), update in zip(items, ortho):
                    p.mul_(1 - lr * wd)
                    p.add_(_shard_like(update, p), alpha=scale)
        return loss


def _is_dtensor(t: torch.Tensor) -> bool:
    """Whether t is a DTensor (an FSDP shard). Without FSDP torch.distributed.tensor was never
    imported, and importing it only to find out costs ~0.8 s."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(t, module.DTensor)


def _whole(t: torch.Tensor) -> torch.Tensor:
    """The whole matrix of an FSDP shard (a DTensor: gathered from every rank), else t itself.
    The orthogonalization is of the whole matrix: run on a shard, it is another update."""
    return t.full_tensor() if _is_dtensor(t) else t


def _shard_like(whole: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """`whole` cut as the parameter p is sharded (each rank keeps its own part, no communication:
    every rank computed the same whole update), or whole itself when p is a plain tensor."""
    if not _is_dtensor(p):
        return whole
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(whole, p.device_mesh, p.placements, src_data_rank=None)


def _lr_ratio(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """Muon's per-shape learning-rate scale (torch.optim.Muon's `adjust_lr_fn`)."""
    rows, cols = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


def build_optimizers(model: nn.Module, cfg) -> list[torch.optim.Optimizer]:
    muon, adamw = split_parameters(model)
    # foreach: one kernel per operation over every tensor (nano on the 2-core CPU: 4.5 -> 1.5 ms a step)
    opts = [torch.optim.AdamW(adamw, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95), foreach=True)]
    if muon:
        opts.append(Muon(muon, lr=cfg.muon_lr, weight_decay=cfg.weight_decay,
                         ns_dtype=newton_schulz_dtype(muon[0].device)))
    return opts


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine down to `min_ratio` at `total` steps."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_schedulers(opts, cfg) -> list[torch.optim.lr_scheduler.LambdaLR]:
    f = lambda s: lr_factor(s, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)  # noqa: E731
    return [torch.optim.lr_scheduler.LambdaLR(o, f) for o in opts]
