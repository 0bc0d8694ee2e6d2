"""What every pragmatiq python model needs from its Triton surroundings.

The python backend stub injects `triton_python_backend_utils` (Tensor, InferenceResponse,
TritonError, Logger); this module imports it lazily so the model classes import anywhere and
their logic is tested with a small fake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def pb():
    import triton_python_backend_utils

    return triton_python_backend_utils


def version_dir(args: dict) -> Path:
    """The version directory of the model being initialized (`<repo>/<name>/<version>`)."""
    return Path(args["model_repository"]) / str(args["model_version"])


def parameters(args: dict) -> dict[str, str]:
    """config.pbtxt `parameters` as {key: string_value}."""
    config = json.loads(args["model_config"])
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def device_for(args: dict) -> str:
    """`cuda:<id>` for a KIND_GPU instance, else `cpu`."""
    if args.get("model_instance_kind") == "GPU":
        return f"cuda:{args.get('model_instance_device_id', 0)}"
    return "cpu"


def instance_device(args: dict) -> str:
    """`device_for(args)`, made this process's current CUDA device for a GPU instance: kernels that
    launch on the current device (Triton's), and calls such as `torch.cuda.synchronize()`, then
    use the instance's GPU and not GPU 0."""
    from pragmatiq._hardware import make_current

    device = device_for(args)
    make_current(device)
    return device


def set_threads(params: dict[str, str], instances: int = 1) -> int:
    """torch intra-op threads: the `num_threads` parameter, else the cores shared by instances."""
    import torch

    n = int(params.get("num_threads") or 0)
    if n <= 0:
        n = max(1, (os.cpu_count() or 1) // max(1, instances))
    torch.set_num_threads(n)
    return n


def instance_count(args: dict) -> int:
    config = json.loads(args["model_config"])
    return sum(int(g.get("count", 1)) for g in config.get("instance_group", [])) or 1


def error_response(message: str, *, invalid_input: bool = True):
    """An error answer for one request: INVALID_ARG (HTTP 400) for a bad request, else INTERNAL."""
    u = pb()
    code = getattr(u.TritonError, "INVALID_ARG" if invalid_input else "INTERNAL", None)
    error = u.TritonError(message) if code is None else u.TritonError(message, code)
    return u.InferenceResponse(output_tensors=[], error=error)


def bytes_tensor(name: str, values: list[str]):
    import numpy as np

    return pb().Tensor(name, np.array([v.encode() for v in values], dtype=np.object_))


def per_request(requests, respond) -> list:
    """`respond(request)` for each request; a RecordError (bad input) becomes that request's
    error response and the others are still answered."""
    from pragmatiq.tokenizer.records import RecordError

    out = []
    for request in requests:
        try:
            out.append(respond(request))
        except RecordError as e:
            out.append(error_response(str(e)))
    return out
