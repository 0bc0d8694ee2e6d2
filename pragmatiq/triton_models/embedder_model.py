"""The tutorial's one-model layout: `pragmatiq_embedder` as a single python model.

`records_json` -> `embeddings` (FP32 [n_users, d]) and `user_ids`, the same request and response
as the ensemble. The trained run (`model.safetensors`, `model.json`, `vocab.json`) is read from
`PRAGMATIQ_RUN` (environment, or a config parameter); a relative path is taken from the model
directory, and the default is `1/run`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pragmatiq.triton_models import runtime
from pragmatiq.triton_models.packed_io import EMBEDDINGS, RECORDS, USER_IDS
from pragmatiq.triton_models.tokenizer_model import TokenizerStep

DEFAULT_RUN = "1/run"


def resolve_run(args: dict, params: dict[str, str]) -> Path:
    """The run directory: $PRAGMATIQ_RUN, else the `PRAGMATIQ_RUN` parameter, else `1/run`."""
    value = os.environ.get("PRAGMATIQ_RUN") or params.get("PRAGMATIQ_RUN") or DEFAULT_RUN
    path = Path(value)
    if not path.is_absolute():
        path = Path(args["model_repository"]) / path
    for name in ("model.safetensors", "model.json", "vocab.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"pragmatiq_embedder: {path / name} is missing; PRAGMATIQ_RUN must point at a trained run"
                " (the directory holding model.safetensors, model.json and vocab.json)")
    return path


class TritonPythonModel:
    def initialize(self, args):
        from pragmatiq.export.runners import make_runner

        params = runtime.parameters(args)
        run = resolve_run(args, params)
        threads = runtime.set_threads(params, runtime.instance_count(args))
        self.step = TokenizerStep(run / "vocab.json", params)
        self.runner = make_runner("torch", run, device=runtime.instance_device(args),
                                  precision=params.get("precision", "fp32"), threads=threads)

    def execute(self, requests):
        u = runtime.pb()

        def respond(request):
            batch = self.step.batch(u.get_input_tensor_by_name(request, RECORDS).as_numpy())
            emb = self.runner(batch)  # (U, d) float32
            return u.InferenceResponse([u.Tensor(EMBEDDINGS, emb), runtime.bytes_tensor(USER_IDS, batch.user_ids)])

        return runtime.per_request(requests, respond)
