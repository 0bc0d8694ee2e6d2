"""What `pragmatiq info` reports: versions, device, extras and attention backends."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

import pragmatiq
from pragmatiq._optional import extras_status

_DISTRIBUTIONS = (
    "torch", "numpy", "pyarrow", "tokenizers", "safetensors", "scikit-learn",
    "onnx", "onnxruntime", "onnxscript", "tritonclient", "nvidia-pytriton", "boto3",
    "triton", "flash-attn", "tensorrt", "sentence-transformers",
)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _device() -> dict:
    import torch

    info = {"cuda": torch.cuda.is_available(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def _backends() -> dict[str, str]:
    try:
        from pragmatiq.kernels import backend_report
    except ImportError as exc:  # kernels not importable: say why instead of failing
        return {"error": f"pragmatiq.kernels unavailable: {exc}"}
    return backend_report()


def collect_info() -> dict:
    return {
        "pragmatiq": pragmatiq.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {d: v for d in _DISTRIBUTIONS if (v := _version(d)) is not None},
        "device": _device(),
        "extras": extras_status(),
        "attention_backends": _backends(),
    }
