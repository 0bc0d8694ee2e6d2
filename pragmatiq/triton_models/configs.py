"""`config.pbtxt` text for the pragmatiq models (pure functions, protobuf text format).

    pragmatiq_tokenizer   records_json BYTES [-1]      -> packed tensors + user_ids
    pragmatiq_encoder     packed tensors                -> embeddings FP32 [-1, d]
    pragmatiq_embedder    ensemble of the two: records_json -> embeddings, user_ids
    pragmatiq_embedder    (tutorial layout) one python model doing both steps
"""

from __future__ import annotations

from pragmatiq.triton_models.packed_io import EMBEDDINGS, PACKED_TENSORS, RECORDS, USER_IDS

TOKENIZER = "pragmatiq_tokenizer"
ENCODER = "pragmatiq_encoder"
EMBEDDER = "pragmatiq_embedder"


def _tensor(name: str, dtype: str, dims: str) -> str:
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {dims} ] }}'


def _block(kind: str, tensors: list[str]) -> str:
    return f"{kind} [\n" + ",\n".join(tensors) + "\n]\n"


def _params(params: dict[str, str]) -> str:
    return "".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n'
                   for k, v in sorted(params.items()))


def _kind(device: str) -> str:
    return "gpu" if device.startswith("cuda") else "auto" if device == "auto" else "cpu"


def _instances(kind: str, count: int) -> str:
    """An instance_group; kind "auto" leaves it to Triton: one instance per GPU, else one on CPU."""
    if kind == "auto":
        return ""
    return f"instance_group [ {{ kind: KIND_{kind.upper()} count: {count} }} ]\n"


PACKED = [_tensor(n, t, "-1") for n, _, t, _ in PACKED_TENSORS]
IDS = _tensor(USER_IDS, "TYPE_STRING", "-1")


def _header(name: str, backend: str) -> str:
    return f'name: "{name}"\nbackend: "{backend}"\nmax_batch_size: 0\n'


def tokenizer_config(name: str = TOKENIZER, *, instances: int = 1, params: dict | None = None) -> str:
    return (_header(name, "python") + _block("input", [_tensor(RECORDS, "TYPE_STRING", "-1")])
            + _block("output", PACKED + [IDS]) + _instances("cpu", instances) + _params(params or {}))


def encoder_config(name: str = ENCODER, *, dim: int, device: str = "cpu", instances: int = 1,
                   params: dict | None = None, dynamic_batching: bool = True, max_queue_delay_us: int = 1000) -> str:
    """With dynamic batching, concurrent requests reach one `execute` call (ragged inputs, flat
    per request) and the encoder packs all their users into one varlen forward."""
    if not dynamic_batching:
        return (_header(name, "python") + _block("input", PACKED)
                + _block("output", [_tensor(EMBEDDINGS, "TYPE_FP32", f"-1, {dim}")])
                + _instances(_kind(device), instances) + _params(params or {}))
    ragged = [t.replace(" }", " allow_ragged_batch: true }") for t in PACKED]
    return (f'name: "{name}"\nbackend: "python"\nmax_batch_size: 64\n'
            f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}\n"
            + _block("input", ragged) + _block("output", [_tensor(EMBEDDINGS, "TYPE_FP32", str(dim))])
            + _instances(_kind(device), instances) + _params(params or {}))


def ensemble_config(name: str = EMBEDDER, *, dim: int, tokenizer: str = TOKENIZER, encoder: str = ENCODER) -> str:
    names = [n for n, _, _, _ in PACKED_TENSORS]
    tok_out = "".join(f'      output_map {{ key: "{n}" value: "{n}" }}\n' for n in names + [USER_IDS])
    enc_in = "".join(f'      input_map {{ key: "{n}" value: "{n}" }}\n' for n in names)
    return (f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: 0\n'
            + _block("input", [_tensor(RECORDS, "TYPE_STRING", "-1")])
            + _block("output", [_tensor(EMBEDDINGS, "TYPE_FP32", f"-1, {dim}"),
                                _tensor(USER_IDS, "TYPE_STRING", "-1")])
            + "ensemble_scheduling {\n  step [\n"
            + f'    {{\n      model_name: "{tokenizer}"\n      model_version: -1\n'
            + f'      input_map {{ key: "{RECORDS}" value: "{RECORDS}" }}\n' + tok_out + "    },\n"
            + f'    {{\n      model_name: "{encoder}"\n      model_version: -1\n' + enc_in
            + f'      output_map {{ key: "{EMBEDDINGS}" value: "{EMBEDDINGS}" }}\n' + "    }\n  ]\n}\n")


def embedder_config(name: str = EMBEDDER, *, instances: int = 1, device: str = "auto",
                    params: dict | None = None) -> str:
    """The tutorial's single python model; `dims: [-1, -1]` so any run's width is served. With
    device "auto" (no instance_group) it runs on every GPU of the host, or on the CPU."""
    return (_header(name, "python") + _block("input", [_tensor(RECORDS, "TYPE_STRING", "-1")])
            + _block("output", [_tensor(EMBEDDINGS, "TYPE_FP32", "-1, -1"), IDS])
            + _instances(_kind(device), instances) + _params(params or {}))
