"""What this machine's CPU can do, for the choices that depend on it (the fused head's and
Muon's matmul dtype) and for the benchmarks' machine records; which GPU a process works on."""

from __future__ import annotations

import torch


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): its bf16 matmuls then run
    at about 4x the fp32 rate (measured on the 2-core machine, AVX512-BF16); elsewhere torch
    emulates them at under 1 GF/s (AVX2)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without the probes: assume not
        return False


def make_current(device: str | torch.device) -> None:
    """Make a CUDA `device` (with its index) this process's current GPU: NCCL, Triton launches
    and calls such as `torch.cuda.synchronize()` use the current device, not the tensors'. A
    no-op for any other device."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
