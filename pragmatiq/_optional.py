"""Optional dependencies, detected in one place.

Each capability that needs an extra goes through `require(name)`, which imports the module
lazily and, when it is missing, raises `MissingExtraError` naming the exact `pip install`
to run. `available(name)` answers without importing anything heavy twice.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType

# import name -> (pip extra, what it is for)
_EXTRAS: dict[str, tuple[str, str]] = {
    "onnx": ("serve", "ONNX export"),
    "onnxscript": ("serve", "ONNX export"),
    "onnxruntime": ("serve", "ONNX parity checks and the ONNX encoder variant"),
    "tritonclient": ("serve", "Triton clients"),
    "tritonclient.http": ("serve", "Triton HTTP client"),
    "tritonclient.grpc": ("serve", "Triton gRPC client"),
    "pytriton": ("serve", "the bundled Triton server"),
    "requests": ("serve", "HTTP requests to a Triton server"),
    "boto3": ("sagemaker", "SageMaker and S3 helpers"),
    "botocore": ("sagemaker", "SageMaker and S3 helpers"),
    "sentence_transformers": ("text", "frozen text encoders (Nemotron variant)"),
    "flash_attn": ("gpu", "the flash_attn attention backend"),
    "tensorrt": ("gpu", "TensorRT engines"),
    "triton": ("dev", "the triton attention kernel"),
    "sklearn": ("", "probes"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the pip command."""


@cache
def available(name: str) -> bool:
    """True when `name` can be imported (checked once, without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require(name: str) -> ModuleType:
    """Import an optional module or raise `MissingExtraError` with the install command."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra, purpose = _EXTRAS.get(name, ("", name))
        target = f'"pragmatiq[{extra}]"' if extra else "pragmatiq"
        raise MissingExtraError(
            f"{name} is needed for {purpose} but is not installed: pip install {target}"
        ) from exc


def extras_status() -> dict[str, bool]:
    """Which optional modules are importable, for `pragmatiq info`."""
    return {name: available(name) for name in _EXTRAS if "." not in name}
