"""CPU user-embedding throughput (users/s) and achieved GFLOP/s for nano and small.

Batches are synthetic-book-like ragged PackedBatch instances generated directly (the tokenizer
is not committed yet): one user-month each, 40-100 events per user, events of 2-25 tokens
(mostly 6-14-token transactions, short app events, a tail of long ones), 20-60 profile tokens.

FLOPs are counted analytically (`benchmarks/_flops.py`: per encoder n * (24 N d^2 + 4 d sum L^2),
plus the calendar MLP; embeddings, LayerNorms, softmax and GELU are not counted). The machine's
fp32 matmul rate is measured in the same run with torch.mm (2048^3 and a model-shaped
(rows x d) @ (d x 4d)) at the same thread count.
Prints a table and writes benchmarks/results/forward.json.

    .venv/bin/python benchmarks/forward.py [--threads 1] [--users 16] [--batches 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pragmatiq.tokenizer.packed import PackedBatch
from pragmatiq.zoo import create_model

try:
    from benchmarks._flops import batch_flops
    from benchmarks.kernels import machine
except ImportError:  # run as a script from benchmarks/
    from _flops import batch_flops  # type: ignore
    from kernels import machine  # type: ignore

RESULTS = Path(__file__).resolve().parent / "results" / "forward.json"
VOCAB = 28_000


def book_like_batch(n_users: int, seed: int) -> PackedBatch:
    rng = np.random.default_rng(seed)
    n_events = rng.integers(40, 101, n_users)  # one user-month
    E = int(n_events.sum())
    kind = rng.random(E)
    tok = np.where(kind < 0.6, rng.integers(6, 15, E), np.where(kind < 0.9, rng.integers(2, 6, E),
                                                                 rng.integers(15, 26, E)))
    n_prof = rng.integers(20, 61, n_users)
    T, P = int(tok.sum()), int(n_prof.sum())

    def cu(x):
        return torch.tensor(np.concatenate([[0], np.cumsum(x)]), dtype=torch.int32)

    ids = lambda n: torch.from_numpy(rng.integers(5, VOCAB, n))  # noqa: E731
    return PackedBatch(
        key_ids=ids(T), value_ids=ids(T), positions=torch.from_numpy(rng.integers(0, 4, T)), cu_tokens=cu(tok),
        max_tokens=int(tok.max()), event_tau=torch.from_numpy(rng.random(E, dtype=np.float32) * 120),
        event_hour=torch.from_numpy(rng.integers(0, 24, E)), event_dow=torch.from_numpy(rng.integers(0, 7, E)),
        event_dom=torch.from_numpy(rng.integers(1, 32, E)), cu_events=cu(n_events), max_events=int(n_events.max()),
        profile_key_ids=ids(P), profile_value_ids=ids(P), profile_positions=torch.zeros(P, dtype=torch.int64),
        profile_tau=torch.from_numpy(rng.random(P, dtype=np.float32) * 100), cu_profile=cu(n_prof),
        max_profile=int(n_prof.max()), user_ids=[f"u{i}" for i in range(n_users)])


def matmul_gflops(m: int, k: int, n: int, reps: int = 5) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    best = min(_t(lambda: torch.mm(a, b)) for _ in range(reps))
    return 2 * m * k * n / best / 1e9


def _t(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_model(name: str, batches: list[PackedBatch], reps: int) -> dict:
    torch.manual_seed(0)
    model = create_model(name, VOCAB).eval()
    cfg = model.config
    enc_time = {"event": 0.0, "profile": 0.0, "history": 0.0}
    starts = {}
    for key in enc_time:
        mod = getattr(model, f"{key}_encoder")
        mod.register_forward_pre_hook(lambda m, a, key=key: starts.__setitem__(key, time.perf_counter()))
        mod.register_forward_hook(lambda m, a, o, key=key: enc_time.__setitem__(
            key, enc_time[key] + time.perf_counter() - starts[key]))
    with torch.no_grad():
        model(batches[0])  # warm up
        best = None
        for _ in range(reps):
            for k in enc_time:
                enc_time[k] = 0.0
            t = time.perf_counter()
            for b in batches:
                model(b)
            total = time.perf_counter() - t
            if best is None or total < best[0]:
                best = (total, dict(enc_time))
    total, enc = best
    flops = {k: sum(batch_flops(cfg, b)[k] for b in batches) for k in ("event", "profile", "history", "total")}
    users = sum(b.n_users for b in batches)
    return {"model": name, "params": model.num_parameters(), "users": users,
            "events": sum(b.n_events for b in batches), "tokens": sum(b.n_tokens for b in batches),
            "seconds": total, "users_per_s": users / total,
            "gflops": {k: flops[k] / 1e9 for k in flops},
            "seconds_per_encoder": enc,
            "gflop_per_s": {"total": flops["total"] / total / 1e9,
                            **{k: flops[k] / enc[k] / 1e9 for k in enc}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--users", type=int, default=16, help="users per batch")
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batches = [book_like_batch(args.users, seed) for seed in range(args.batches)]
    peak = matmul_gflops(2048, 2048, 2048)
    results, matmul = [], {"square_2048": peak}
    for name in ("nano", "small"):
        r = run_model(name, batches, args.reps)
        d = create_model(name, 8).config.d_model
        rows = int(sum(b.n_tokens + b.n_events for b in batches) / len(batches))
        matmul[f"{name}_shaped_{rows}x{d}x{4 * d}"] = matmul_gflops(rows, d, 4 * d)
        r["pct_of_matmul"] = {k: 100 * v / peak for k, v in r["gflop_per_s"].items()}
        results.append(r)
    print(f"threads={args.threads}; {args.batches} batches x {args.users} users; fp32 matmul "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in matmul.items()))
    print(f"{'model':6s} {'params':>10s} {'users/s':>9s} {'GFLOP/s e2e':>12s} {'% mm':>6s} "
          f"{'hist GF/s':>10s} {'% mm':>6s} {'event GF/s':>11s} {'profile GF/s':>13s}")
    for r in results:
        g, p = r["gflop_per_s"], r["pct_of_matmul"]
        print(f"{r['model']:6s} {r['params']:>10,d} {r['users_per_s']:>9.1f} {g['total']:>12.2f} {p['total']:>5.1f}% "
              f"{g['history']:>10.2f} {p['history']:>5.1f}% {g['event']:>11.2f} {g['profile']:>13.2f}")
    small = next(r for r in results if r["model"] == "small")
    targets = {"small_history_ge_40pct": small["pct_of_matmul"]["history"] >= 40,
               "small_end_to_end_ge_25pct": small["pct_of_matmul"]["total"] >= 25}
    print("targets:", targets)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine(), "threads": args.threads, "users_per_batch": args.users,
                                   "batches": args.batches, "matmul_gflop_per_s": matmul, "results": results,
                                   "targets_met": targets,
                                   "flops_formula": "per encoder n_layers*(24*N*d^2 + 4*d*sum(L^2)); "
                                                    "+ calendar 2*E*(6d+d^2)"}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
