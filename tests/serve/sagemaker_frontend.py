"""Scenarios against Triton's real SageMaker frontend, run by test_sagemaker_frontend.py inside
a private network namespace (the frontend binds every interface). Each scenario starts
`pragmatiq serve --sagemaker`, talks to it over loopback, stops it with SIGTERM and prints one
JSON object of what it saw.

    python tests/serve/sagemaker_frontend.py single MODEL_DIR RECORDS_JSON
    python tests/serve/sagemaker_frontend.py multi DIR_A DIR_B RECORDS_JSON
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import requests

from pragmatiq.serve.sagemaker.invoke import binary_body, json_body, parse_response

PORT = 8080
URL = f"http://127.0.0.1:{PORT}"
JSON = {"Content-Type": "application/json"}


def start(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "pragmatiq", "serve", "--sagemaker", "--port", str(PORT), *args],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            if requests.get(f"{URL}/ping", timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server not ready after 180 s")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def embeddings(response: requests.Response) -> dict:
    if response.status_code != 200:
        return {"status": response.status_code, "error": response.text}
    emb = parse_response(response.content, response.headers.get("Content-Type", "application/json"))
    return {"status": 200, "user_ids": list(emb.user_ids), "embeddings": emb.vectors.tolist()}


def single(model_dir: str, records: list) -> dict:
    proc = start("--repo", model_dir)
    seen = {"ping": requests.get(f"{URL}/ping", timeout=10).status_code}
    seen["json"] = embeddings(requests.post(f"{URL}/invocations", data=json_body(records), headers=JSON, timeout=60))
    body, content_type = binary_body(records)
    seen["binary"] = embeddings(requests.post(f"{URL}/invocations", data=body,
                                              headers={"Content-Type": content_type}, timeout=60))
    seen["bad"] = embeddings(requests.post(f"{URL}/invocations", data=json_body([{"events": []}]), headers=JSON,
                                           timeout=60))
    seen["ping_after"] = requests.get(f"{URL}/ping", timeout=10).status_code
    seen["exit"] = stop(proc)
    return seen


def multi(dir_a: str, dir_b: str, records: list) -> dict:
    proc = start("--multi-model")
    load = lambda name, url: requests.post(  # noqa: E731
        f"{URL}/models", json={"model_name": name, "url": url},
        headers={"X-Amzn-SageMaker-Target-Model": f"{name}.tar.gz"}, timeout=120).status_code
    invoke = lambda name: embeddings(requests.post(  # noqa: E731
        f"{URL}/models/{name}/invoke", data=json_body(records),
        headers={**JSON, "X-Amzn-SageMaker-Target-Model": f"{name}.tar.gz"}, timeout=60))
    seen = {"load_a": load("run-a", dir_a), "load_b": load("run-b", dir_b)}
    seen["a"], seen["b"] = invoke("run-a"), invoke("run-b")
    seen["load_a_again"] = load("run-a", dir_a)
    seen["unload_a"] = requests.delete(f"{URL}/models/run-a", timeout=120,
                                       headers={"X-Amzn-SageMaker-Target-Model": "run-a.tar.gz"}).status_code
    seen["a_after_unload"] = invoke("run-a")["status"]
    seen["b_after_unload"] = invoke("run-b")
    seen["exit"] = stop(proc)
    return seen


if __name__ == "__main__":
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    kind, *paths, records_path = sys.argv[1:]
    records = json.loads(open(records_path).read())
    print(json.dumps(single(paths[0], records) if kind == "single" else multi(*paths, records)))
