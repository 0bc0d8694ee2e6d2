"""invoke-endpoint against botocore's Stubber: exact request parameters, realistic responses.

AWS is SIMULATED here: the Stubber intercepts the `sagemaker-runtime` client before any
network call (moto does not run models). The response bodies are what the SageMaker Triton
container returns for the pragmatiq ensemble (KServe v2: `embeddings` FP32 [U, d],
`user_ids` BYTES [U]), as JSON and as binary+json.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

boto3 = pytest.importorskip("boto3")
from botocore.response import StreamingBody  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from pragmatiq.serve import sagemaker as smh  # noqa: E402

RECORDS = [
    {"user_id": "u1", "events": [{"ts": 1718200000000000, "source": "transaction",
                                  "fields": {"amount": "42.50", "merchant": "TESCO"}}],
     "attributes": {"country": "GB"}, "lifelong": []},
    {"user_id": "u2", "events": [], "attributes": {"country": "FR"}, "lifelong": []},
]
VECTORS = np.arange(8, dtype=np.float32).reshape(2, 4) / 8  # (U, d)


@pytest.fixture
def runtime():
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _stream(body: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(body), len(body))


def _json_response() -> bytes:
    return json.dumps({
        "model_name": "pragmatiq_embedder", "model_version": "1",
        "outputs": [
            {"name": "embeddings", "datatype": "FP32", "shape": [2, 4],
             "data": VECTORS.reshape(-1).tolist()},
            {"name": "user_ids", "datatype": "BYTES", "shape": [2], "data": ["u1", "u2"]},
        ],
    }).encode()


def _binary_response() -> tuple[bytes, str]:
    """A binary+json response as Triton writes it: JSON header, then raw tensors."""
    emb = VECTORS.tobytes()
    ids = b"".join(struct.pack("<I", len(u)) + u for u in (b"u1", b"u2"))
    header = json.dumps({
        "model_name": "pragmatiq_embedder", "model_version": "1",
        "outputs": [
            {"name": "embeddings", "datatype": "FP32", "shape": [2, 4],
             "parameters": {"binary_data_size": len(emb)}},
            {"name": "user_ids", "datatype": "BYTES", "shape": [2],
             "parameters": {"binary_data_size": len(ids)}},
        ],
    }).encode()
    ct = f"application/vnd.sagemaker-triton.binary+json;json-header-size={len(header)}"
    return header + emb + ids, ct


def test_tutorial_body_exact():
    body = smh.json_body(RECORDS[:1])
    doc = json.loads(body)
    assert doc == {"inputs": [{"name": "records_json", "shape": [1], "datatype": "BYTES",
                               "data": [json.dumps(RECORDS[:1])]}]}
    assert json.loads(doc["inputs"][0]["data"][0]) == RECORDS[:1]


def test_invoke_json_with_target_model(runtime):
    client, stub = runtime
    stub.add_response(
        "invoke_endpoint",
        {"Body": _stream(_json_response()), "ContentType": "application/json",
         "InvokedProductionVariant": "main"},
        expected_params={
            "EndpointName": "pragmatiq-mme",
            "Body": smh.json_body(RECORDS),
            "ContentType": "application/json",
            "TargetModel": "run-a.tar.gz",
        },
    )
    emb = smh.invoke("pragmatiq-mme", RECORDS, target_model="run-a.tar.gz", runtime=client)
    assert emb.user_ids == ["u1", "u2"]
    assert emb.vectors.dtype == np.float32 and emb.vectors.shape == (2, 4)
    np.testing.assert_array_equal(emb.vectors, VECTORS)


def test_invoke_single_model_sends_no_target(runtime):
    client, stub = runtime
    stub.add_response(
        "invoke_endpoint",
        {"Body": _stream(_json_response()), "ContentType": "application/json"},
        expected_params={"EndpointName": "pragmatiq-embedder", "Body": smh.json_body(RECORDS),
                         "ContentType": "application/json"},
    )
    emb = smh.invoke("pragmatiq-embedder", RECORDS, runtime=client)
    assert emb.vectors.shape == (2, 4)


def test_invoke_binary_json(runtime):
    pytest.importorskip("tritonclient.http")
    client, stub = runtime
    body, content_type = smh.binary_body(RECORDS)
    assert content_type.startswith("application/vnd.sagemaker-triton.binary+json;json-header-size=")
    header_size = int(content_type.rsplit("=", 1)[1])
    header = json.loads(body[:header_size])
    assert header["inputs"][0]["name"] == "records_json"
    assert header["inputs"][0]["datatype"] == "BYTES"
    payload = body[header_size:]
    (n,) = struct.unpack("<I", payload[:4])  # BYTES element: 4-byte length + raw bytes
    assert json.loads(payload[4:4 + n]) == RECORDS

    resp_body, resp_ct = _binary_response()
    stub.add_response(
        "invoke_endpoint",
        {"Body": _stream(resp_body), "ContentType": resp_ct},
        expected_params={"EndpointName": "ep", "Body": body, "ContentType": content_type,
                         "TargetModel": "run-b.tar.gz"},
    )
    emb = smh.invoke("ep", RECORDS, target_model="run-b.tar.gz", binary=True, runtime=client)
    assert emb.user_ids == ["u1", "u2"]
    np.testing.assert_array_equal(emb.vectors, VECTORS)


def test_error_response_raises_clearly():
    with pytest.raises(ValueError, match="malformed"):
        smh.parse_response(json.dumps({"error": "records_json: malformed JSON"}).encode())
    with pytest.raises(ValueError, match="no 'embeddings'"):
        smh.parse_response(json.dumps({"outputs": [{"name": "x", "datatype": "FP32",
                                                    "shape": [1], "data": [0]}]}).encode())


def test_endpoint_error_propagates(runtime):
    client, stub = runtime
    stub.add_client_error("invoke_endpoint", service_error_code="ModelError",
                          service_message="Received server error (500) from primary",
                          http_status_code=424)
    with pytest.raises(Exception, match="ModelError"):
        smh.invoke("ep", RECORDS, runtime=client)
