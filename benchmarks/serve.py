"""Serving on CPU: the Triton ensemble against in-process embedding of the same requests.

    python benchmarks/serve.py [--size small] [--events 1000] [--requests 40] [--concurrency 8]

A `small` run (the recipe, trained for one step: latency does not depend on the weights) is
exported twice — with and without Triton dynamic batching — and served by the real server.
Measured: p50/p99 latency of one user with `--events` events, sequentially; users/s with
`--concurrency` clients each sending one such user per request; and the same work in process
(records -> tokens -> native forward, one user at a time and `--concurrency` users packed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quick_run, table, write_result  # noqa: E402

from pragmatiq import api  # noqa: E402
from pragmatiq.data.records import records_from_data  # noqa: E402
from pragmatiq.serve.check import post_infer  # noqa: E402
from pragmatiq.serve.example import request_body  # noqa: E402


def user_with_events(data: Path, n_events: int) -> dict:
    """The book's longest history, cut or repeated (shifted back in time) to exactly n_events."""
    recs = records_from_data(data)
    rec = max(recs, key=lambda r: len(r["events"]))
    events = sorted(rec["events"], key=lambda e: e["ts"])
    span = events[-1]["ts"] - events[0]["ts"] + 3_600_000_000
    out, k = list(events), 1
    while len(out) < n_events:
        out = [dict(e, ts=e["ts"] - k * span) for e in events] + out
        k += 1
    return dict(rec, events=out[-n_events:])


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def in_process(run: Path, user: dict, users: list[dict], n: int) -> dict:
    from pragmatiq.export.runners import make_runner
    from pragmatiq.tokenizer import Vocab, records_to_batch

    vocab, runner = Vocab.load(run / "vocab.json"), make_runner("torch", run)
    one = lambda: runner(records_to_batch([user], vocab))  # noqa: E731
    one()  # warm-up
    p50, p99 = percentiles(timed(one, n))
    packed = timed(lambda: runner(records_to_batch(users, vocab)), max(2, n // len(users)))
    return {"p50_ms_1": p50, "p99_ms_1": p99, "users_per_s": len(users) / float(np.median(packed))}


def served(repo: Path, user: dict, users: list[dict], n: int, concurrency: int) -> dict:
    one_body = request_body([user])
    with api.serve(repo) as server:
        call = lambda body: post_infer(server.http_url, "pragmatiq_embedder", body)  # noqa: E731
        call(one_body)  # warm-up
        p50, p99 = percentiles(timed(lambda: call(one_body), n))
        bodies = [request_body([dict(u, user_id=f"{u['user_id']}-{i}")]) for i in range(n // len(users) + 1)
                  for u in users][:max(n, concurrency)]
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(call, bodies[:concurrency]))  # warm-up at this concurrency
            t0 = time.perf_counter()
            list(pool.map(call, bodies))
            wall = time.perf_counter() - t0
    return {"p50_ms_1": p50, "p99_ms_1": p99, "users_per_s": len(bodies) / wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, run = quick_run(tmp, args.size, n_users=200)
        user = user_with_events(data, args.events)
        users = [dict(user, user_id=f"c{i}") for i in range(args.concurrency)]
        rows = {"in_process": in_process(run, user, users, args.requests)}
        for name, batching in (("triton_dynamic_batching", True), ("triton_no_batching", False)):
            repo = tmp / name
            api.export(run, "triton", repo, dynamic_batching=batching, progress=lambda m: None)
            rows[name] = served(repo, user, users, args.requests, args.concurrency)
    base = rows["in_process"]
    for name, r in rows.items():
        r["overhead_p50"] = r["p50_ms_1"] / base["p50_ms_1"] - 1
        r["throughput_vs_in_process"] = r["users_per_s"] / base["users_per_s"]
    print(table([("path", "p50 ms (1 user)", "p99 ms", f"users/s @ {args.concurrency}", "p50 overhead",
                  "throughput vs in-process")] +
                [(name, f"{r['p50_ms_1']:.1f}", f"{r['p99_ms_1']:.1f}", f"{r['users_per_s']:.1f}",
                  f"{r['overhead_p50']:+.1%}", f"{r['throughput_vs_in_process']:.2f}") for name, r in rows.items()]))
    result = {"model": args.size, "events_per_user": args.events, "requests": args.requests,
              "concurrency": args.concurrency, "device": "cpu", "rows": rows,
              "note": "in_process users/s packs `concurrency` users into one forward; served users/s has "
                      "`concurrency` clients sending one user each"}
    print("wrote", write_result("serve", result))


if __name__ == "__main__":
    main()
