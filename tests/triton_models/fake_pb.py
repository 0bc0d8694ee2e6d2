"""A small stand-in for `triton_python_backend_utils` (injected by the python backend stub) so
the model classes run in process: tensors, requests, responses and errors, nothing more."""

from __future__ import annotations

import json
import types

import numpy as np


class Tensor:
    def __init__(self, name: str, array: np.ndarray):
        self._name, self._array = name, np.asarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class TritonError:
    INTERNAL, INVALID_ARG = 13, 3

    def __init__(self, message: str, code: int = INTERNAL):
        self._message, self._code = message, code

    def code(self) -> int:
        return self._code

    def message(self) -> str:
        return self._message


class InferenceResponse:
    def __init__(self, output_tensors=(), error=None):
        self.outputs = {t.name(): t.as_numpy() for t in output_tensors}
        self.error = error

    def has_error(self) -> bool:
        return self.error is not None


class Request:
    def __init__(self, **arrays):
        self.inputs = {k: Tensor(k, v) for k, v in arrays.items()}


def get_input_tensor_by_name(request: Request, name: str):
    return request.inputs.get(name)


def module() -> types.ModuleType:
    m = types.ModuleType("triton_python_backend_utils")
    m.Tensor, m.TritonError, m.InferenceResponse = Tensor, TritonError, InferenceResponse
    m.get_input_tensor_by_name = get_input_tensor_by_name
    return m


def model_args(model_dir, *, parameters: dict | None = None, kind: str = "CPU", instances: int = 1) -> dict:
    """The `args` Triton passes to `initialize` for version 1 of the model in `model_dir`."""
    config = {"parameters": {k: {"string_value": v} for k, v in (parameters or {}).items()},
              "instance_group": [{"count": instances, "kind": f"KIND_{kind}"}]}
    return {"model_repository": str(model_dir), "model_version": "1", "model_config": json.dumps(config),
            "model_instance_kind": kind, "model_instance_device_id": "0"}
