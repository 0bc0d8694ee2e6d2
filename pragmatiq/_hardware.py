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


def check_device(spec: str | int | torch.device) -> torch.device:
    """A device the user named (`--device`, `device=`) -> `torch.device`, checked against this
    machine and torch build: cpu, cuda or cuda:N (N below the GPU count), mps where torch has it.
    Anything else raises a ValueError saying what is wrong and what to pass instead."""
    if isinstance(spec, torch.device):
        device = spec
    else:
        try:
            device = torch.device(spec)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"device {str(spec)!r} is not a device: use cpu, cuda (this process's GPU) or "
                             "cuda:N (GPU N)") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (f"this torch build has no CUDA (torch {torch.__version__})" if torch.version.cuda is None
                   else f"torch {torch.__version__} sees no CUDA GPU (check the driver and CUDA_VISIBLE_DEVICES)")
            raise ValueError(f"device {str(spec)!r}: {why}; use cpu")
        n = torch.cuda.device_count()
        if device.index is not None and device.index >= n:
            raise ValueError(f"device {str(spec)!r}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(spec)!r}: Apple's MPS is not available to this torch build "
                             f"(torch {torch.__version__}) on this machine; use cpu")
        return device
    raise ValueError(f"device {str(spec)!r}: pragmatiq runs on cpu, cuda or cuda:N (and mps on a Mac), "
                     f"not {device.type}")
