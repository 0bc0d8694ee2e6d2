"""`pragmatiq_tokenizer`: `records_json` -> the packed token tensors (python backend).

The vocabulary is `vocab.json` in the version directory. A malformed request gets an error
response naming the record and field; the other requests of the same call are unaffected.
"""

from __future__ import annotations

from pragmatiq.triton_models import runtime
from pragmatiq.triton_models.packed_io import RECORDS, batch_to_arrays
from pragmatiq.triton_models.records_io import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_USERS, parse_records_json


class TokenizerStep:
    """Records -> packed arrays with one vocabulary (no Triton types; used by the models below)."""

    def __init__(self, vocab_path, params: dict[str, str] | None = None):
        from pragmatiq.tokenizer import Vocab

        params = params or {}
        self.vocab = Vocab.load(vocab_path)
        self.max_bytes = int(params.get("max_request_bytes") or DEFAULT_MAX_REQUEST_BYTES)
        self.max_users = int(params.get("max_users") or DEFAULT_MAX_USERS)

    def batch(self, records_tensor):
        from pragmatiq.tokenizer import records_to_batch

        records = parse_records_json(records_tensor, max_bytes=self.max_bytes, max_users=self.max_users)
        return records_to_batch(records, self.vocab)


class TritonPythonModel:
    def initialize(self, args):
        params = runtime.parameters(args)
        self.step = TokenizerStep(runtime.version_dir(args) / "vocab.json", params)

    def execute(self, requests):
        u = runtime.pb()

        def respond(request):
            batch = self.step.batch(u.get_input_tensor_by_name(request, RECORDS).as_numpy())
            return u.InferenceResponse([u.Tensor(k, v) for k, v in batch_to_arrays(batch).items()])

        return runtime.per_request(requests, respond)
