"""Start a server on an exported repository, send the tutorial's request and real users, and
compare the answers with in-process embedding: the quickstart's last step."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np

from pragmatiq.serve.example import TUTORIAL_BODY, request_body, tutorial_records


def post_infer(url: str, model: str, body: str, timeout: float = 120.0) -> tuple[np.ndarray, list[str]]:
    """POST a KServe v2 body -> (embeddings (U, d) float32, user_ids); raises with the server's error."""
    req = urllib.request.Request(f"{url}/v2/models/{model}/infer", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{model}: HTTP {e.code}: {e.read().decode(errors='replace')}") from None
    out = {o["name"]: o for o in answer["outputs"]}
    emb = np.asarray(out["embeddings"]["data"], np.float32).reshape(out["embeddings"]["shape"])
    return emb, list(out["user_ids"]["data"])


def serve_and_check(repo: str | Path, run: str | Path, records: list[dict] = (), *, log=print) -> dict:
    """Serve `repo`, embed the tutorial request and `records` through pragmatiq_embedder, compare
    with `api.embed_records`, stop the server. Returns shapes, max |Δ| and timings."""
    from pragmatiq import api

    t0 = time.perf_counter()
    with api.serve(repo) as server:
        started = time.perf_counter() - t0
        log(f"Triton ready in {started:.1f} s at {server.http_url}; sending the tutorial's request")
        result = {"server_start_s": round(started, 2), "url": server.http_url}
        for name, body, recs in (("tutorial", TUTORIAL_BODY, tutorial_records()),
                                 ("book_users", request_body(list(records)), list(records))):
            if not recs:
                continue
            t1 = time.perf_counter()
            emb, ids = post_infer(server.http_url, "pragmatiq_embedder", body)
            latency = time.perf_counter() - t1
            want, want_ids = api.embed_records(run, recs)
            if ids != want_ids:
                raise RuntimeError(f"served user ids {ids[:3]}... differ from the request's {want_ids[:3]}...")
            result[name] = {"shape": list(emb.shape), "max_abs_vs_in_process": float(np.abs(emb - want).max()),
                            "latency_ms": round(latency * 1e3, 1)}
            log(f"{name}: embeddings {emb.shape[0]} x {emb.shape[1]}, max |served - in-process| "
                f"{result[name]['max_abs_vs_in_process']:.2g}, {latency * 1e3:.0f} ms")
    log("Triton stopped")
    return result
