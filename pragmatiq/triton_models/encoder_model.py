"""`pragmatiq_encoder` / `pragmatiq_encoder_onnx`: packed token tensors -> embeddings.

Every request of one `execute` call is packed into a single varlen forward (no padding) and
the embeddings are split back per request. A request whose tensors are inconsistent gets an
error; the others are answered. The weights are in the version directory: `model.safetensors`
+ `model.json` for the native encoder, `model.onnx` for the ONNX one.
"""

from __future__ import annotations

import numpy as np

from pragmatiq.triton_models import runtime
from pragmatiq.triton_models.packed_io import (
    EMBEDDINGS, TENSOR_NAMES, arrays_to_batch, check_arrays, concat_arrays)


class TritonPythonModel:
    runner_kind = "torch"

    def initialize(self, args):
        from pragmatiq.export.runners import make_runner

        params = runtime.parameters(args)
        threads = runtime.set_threads(params, runtime.instance_count(args))
        self.runner = make_runner(self.runner_kind, runtime.version_dir(args), device=runtime.instance_device(args),
                                  precision=params.get("precision", "fp32"), threads=threads)

    def execute(self, requests):
        u = runtime.pb()
        responses: list = [None] * len(requests)
        parts, where = [], []
        for i, request in enumerate(requests):
            arrays = {name: u.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)
                      for name in TENSOR_NAMES}
            try:
                check_arrays(arrays)
            except ValueError as e:
                responses[i] = runtime.error_response(f"packed tensors: {e}")
                continue
            parts.append(arrays)
            where.append(i)
        if parts:
            packed, counts = concat_arrays(parts)
            emb = self.runner(arrays_to_batch(packed))  # (U, d) float32
            for i, chunk in zip(where, np.split(emb, np.cumsum(counts)[:-1])):
                responses[i] = u.InferenceResponse([u.Tensor(EMBEDDINGS, np.ascontiguousarray(chunk))])
        return responses


class OnnxEncoderModel(TritonPythonModel):
    runner_kind = "onnx"
