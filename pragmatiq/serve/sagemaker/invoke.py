"""Invoke a pragmatiq endpoint with user records; get `[n_users, dim]` embeddings back.

The body is the KServe v2 request the SageMaker Triton container adapts to `/invocations`:
one BYTES input `records_json` of shape `[1]` holding the JSON array of user records; the
ensemble answers with `embeddings` (FP32 `[U, d]`) and `user_ids` (BYTES `[U]`). Two content
types: plain JSON (`application/json`) and Triton's binary+json
(`application/vnd.sagemaker-triton.binary+json;json-header-size=N`, built and parsed with
tritonclient.http's helpers: tensors travel as raw bytes after the JSON header).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pragmatiq._optional import require
from pragmatiq.serve.sagemaker._aws import client as _client

JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/vnd.sagemaker-triton.binary+json"
INPUT_NAME = "records_json"
OUTPUTS = ("embeddings", "user_ids")


@dataclass
class Embeddings:
    """An endpoint's answer: `vectors` float32 `[U, d]`, `user_ids` in the same order."""

    vectors: np.ndarray
    user_ids: list[str]


def json_body(records: list[dict[str, Any]]) -> bytes:
    """The tutorial's request body: `records_json` = `json.dumps(records)`, shape `[1]`, BYTES."""
    payload = {"inputs": [{
        "name": INPUT_NAME, "shape": [1], "datatype": "BYTES", "data": [json.dumps(records)],
    }]}
    return json.dumps(payload).encode()


def binary_body(records: list[dict[str, Any]]) -> tuple[bytes, str]:
    """A binary+json request body and its content type (with `json-header-size`)."""
    http = require("tritonclient.http")
    inp = http.InferInput(INPUT_NAME, [1], "BYTES")
    inp.set_data_from_numpy(np.array([json.dumps(records).encode()], dtype=np.object_),
                            binary_data=True)
    outputs = [http.InferRequestedOutput(name, binary_data=True) for name in OUTPUTS]
    body, json_size = http.InferenceServerClient.generate_request_body([inp], outputs=outputs)
    if json_size is None:  # no binary part: the body is plain JSON
        return body, JSON_CONTENT_TYPE
    return body, f"{BINARY_CONTENT_TYPE};json-header-size={json_size}"


def _header_size(content_type: str) -> int | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key == "json-header-size":
            return int(value)
    return None


def parse_response(body: bytes, content_type: str = JSON_CONTENT_TYPE) -> Embeddings:
    """KServe v2 response (JSON or binary+json) -> `Embeddings`.

    Raises ValueError naming the outputs present when `embeddings` is missing, or with the
    server's `error` message.
    """
    if content_type.startswith(BINARY_CONTENT_TYPE):
        http = require("tritonclient.http")
        result = http.InferenceServerClient.parse_response_body(
            body, header_length=_header_size(content_type)
        )
        vectors = result.as_numpy("embeddings")
        ids = result.as_numpy("user_ids")
        if vectors is None:
            raise ValueError(f"response has no 'embeddings' output: {result.get_response()}")
        user_ids = [] if ids is None else [
            u.decode() if isinstance(u, bytes) else str(u) for u in ids.reshape(-1)
        ]
        return Embeddings(np.asarray(vectors, dtype=np.float32), user_ids)
    doc = json.loads(body)
    if "error" in doc:
        raise ValueError(f"endpoint returned an error: {doc['error']}")
    outputs = {o["name"]: o for o in doc.get("outputs", [])}
    if "embeddings" not in outputs:
        raise ValueError(f"response has no 'embeddings' output (got {sorted(outputs)})")
    emb = outputs["embeddings"]
    vectors = np.asarray(emb["data"], dtype=np.float32).reshape(emb["shape"])  # (U, d)
    user_ids = [str(u) for u in outputs.get("user_ids", {}).get("data", [])]
    return Embeddings(vectors, user_ids)


def invoke_request(
    endpoint_name: str,
    records: list[dict[str, Any]],
    *,
    target_model: str | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """The exact `InvokeEndpoint` parameters (pure: no AWS call)."""
    if binary:
        body, content_type = binary_body(records)
    else:
        body, content_type = json_body(records), JSON_CONTENT_TYPE
    request: dict[str, Any] = {
        "EndpointName": endpoint_name, "Body": body, "ContentType": content_type,
    }
    if target_model:
        request["TargetModel"] = target_model
    return request


def invoke(
    endpoint_name: str,
    records: list[dict[str, Any]],
    *,
    target_model: str | None = None,
    binary: bool = False,
    region: str | None = None,
    runtime: Any = None,
) -> Embeddings:
    """POST records to the endpoint (optionally one `TargetModel` of a multi-model endpoint)."""
    runtime = runtime or _client("sagemaker-runtime", region)
    response = runtime.invoke_endpoint(
        **invoke_request(endpoint_name, records, target_model=target_model, binary=binary)
    )
    return parse_response(response["Body"].read(), response.get("ContentType", JSON_CONTENT_TYPE))
