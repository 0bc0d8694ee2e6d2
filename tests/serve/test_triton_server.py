"""The real Triton server (from the nvidia-pytriton wheel) serving an exported repository:
the tutorial's exact request over HTTP, tritonclient HTTP and gRPC, concurrency, per-request
errors, the ONNX variant, and the tutorial's one-model layout."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pragmatiq import api
from pragmatiq.serve.example import TUTORIAL_BODY, tutorial_records

requests = pytest.importorskip("requests")
pytest.importorskip("tritonclient.http")
pytest.importorskip("pytriton")

pytestmark = pytest.mark.triton

DEPLOY = Path(__file__).parents[2] / "deploy/triton/model_repository"


def body(records) -> dict:
    text = records if isinstance(records, str) else json.dumps(records)
    return {"inputs": [{"name": "records_json", "shape": [1], "datatype": "BYTES", "data": [text]}]}


def infer(server, model: str, payload) -> requests.Response:
    data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return requests.post(f"{server.http_url}/v2/models/{model}/infer", data=data, timeout=120)


def outputs(response) -> tuple[np.ndarray, list[str]]:
    assert response.status_code == 200, response.text
    out = {o["name"]: o for o in response.json()["outputs"]}
    emb = np.asarray(out["embeddings"]["data"], np.float32).reshape(out["embeddings"]["shape"])
    return emb, out["user_ids"]["data"]


@pytest.fixture(scope="module")
def server(triton_repo):
    with api.serve(triton_repo) as s:
        yield s


def test_tutorial_request_over_plain_http(server, tiny_run):
    emb, ids = outputs(infer(server, "pragmatiq_embedder", TUTORIAL_BODY))
    want, want_ids = api.embed_records(tiny_run, tutorial_records())
    assert emb.shape == (1, 64) and ids == want_ids == ["u1"]
    np.testing.assert_allclose(emb, want, atol=1e-5)


def _client_inputs(module, records):
    inp = module.InferInput("records_json", [1], "BYTES")
    inp.set_data_from_numpy(np.array([json.dumps(records).encode()], dtype=np.object_))
    return [inp]


def test_tritonclient_http_and_grpc(server, tiny_run, tiny_records):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    want, want_ids = api.embed_records(tiny_run, tiny_records)
    for module, url in ((httpclient, server.http_url.removeprefix("http://")), (grpcclient, server.grpc_url)):
        client = module.InferenceServerClient(url)
        result = client.infer("pragmatiq_embedder", _client_inputs(module, tiny_records))
        np.testing.assert_allclose(result.as_numpy("embeddings"), want, atol=1e-5)
        assert [u.decode() for u in result.as_numpy("user_ids")] == want_ids
        client.close()


def test_fifty_concurrent_requests_are_all_correct(server, tiny_run, tiny_records):
    subsets = [tiny_records[i % 5: i % 5 + 1 + i % 3] for i in range(50)]
    want = {r["user_id"]: e for r, e in zip(tiny_records, api.embed_records(tiny_run, tiny_records)[0])}
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda recs: outputs(infer(server, "pragmatiq_embedder", body(recs))), subsets))
    for recs, (emb, ids) in zip(subsets, results):
        assert ids == [r["user_id"] for r in recs]
        np.testing.assert_allclose(emb, np.stack([want[u] for u in ids]), atol=1e-5)


def test_more_users_than_the_encoder_batch_size(server, tiny_run, tiny_book):
    from pragmatiq.data.records import records_from_data

    records = records_from_data(tiny_book)
    many = [dict(r, user_id=f"{r['user_id']}-{k}") for k in range(3) for r in records]  # 72 users
    emb, ids = outputs(infer(server, "pragmatiq_embedder", body(many)))
    assert emb.shape == (72, 64) and ids == [r["user_id"] for r in many]
    np.testing.assert_allclose(emb, api.embed_records(tiny_run, many)[0], atol=1e-5)


@pytest.mark.parametrize("payload, message", [
    (body("[{oops"), "not valid JSON"),
    (body('{"user_id": "u1"}'), "expected a JSON array of user records"),
    (body('[{"events": []}]'), "record 0.user_id"),
    (body('[{"user_id": "u1", "events": [{"ts": "soon", "source": "app", "fields": {}}]}]'), "record 0"),
    (body("[" + ",".join(['{"user_id": "x"}'] * 5000) + "]"), "over this model's limit of 4096"),
])
def test_bad_requests_get_their_own_error(server, payload, message):
    response = infer(server, "pragmatiq_embedder", payload)
    assert response.status_code == 400 and message in response.json()["error"], response.text
    assert requests.get(f"{server.http_url}/v2/health/ready", timeout=10).status_code == 200
    outputs(infer(server, "pragmatiq_embedder", TUTORIAL_BODY))  # still answering


def test_oversized_payload_is_refused_and_server_stays_healthy(server):
    huge = body(json.dumps([{"user_id": "u", "pad": "x" * (33 * 2**20)}]))
    response = infer(server, "pragmatiq_embedder", huge)
    assert response.status_code == 400 and "over this model's limit" in response.json()["error"]
    outputs(infer(server, "pragmatiq_embedder", TUTORIAL_BODY))


def test_onnx_variant_through_the_same_server(server, tiny_run, tiny_records):
    emb, ids = outputs(infer(server, "pragmatiq_embedder_onnx", body(tiny_records)))
    want, want_ids = api.embed_records(tiny_run, tiny_records)
    assert ids == want_ids
    np.testing.assert_allclose(emb, want, atol=1e-4)


def test_tutorial_layout_answers_the_tutorial_request(tiny_run, tmp_path):
    repo = shutil.copytree(DEPLOY, tmp_path / "model_repository")
    run_dir = repo / "pragmatiq_embedder/1/run"
    run_dir.mkdir()
    for name in ("model.safetensors", "model.json", "vocab.json"):
        shutil.copy2(tiny_run / name, run_dir / name)
    with api.serve(repo) as s:
        emb, ids = outputs(infer(s, "pragmatiq_embedder", TUTORIAL_BODY))
    np.testing.assert_allclose(emb, api.embed_records(tiny_run, tutorial_records())[0], atol=1e-5)


def test_serve_command_starts_and_stops_on_sigterm(triton_repo):
    from pragmatiq.serve.server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pragmatiq", "serve", "--repo", str(triton_repo),
                             "--http-port", str(port), "--grpc-port", str(free_port())],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert f"Triton ready: HTTP http://127.0.0.1:{port}" in line, line
        assert requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=10).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "Triton stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5)


def test_serve_command_explains_a_missing_repository(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pragmatiq", "serve", "--repo", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "does not exist" in result.stderr and "Traceback" not in result.stderr
