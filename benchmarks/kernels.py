"""Varlen attention backends side by side: forward and forward+backward time.

CPU (always): `sdpa` vs `reference` (and `dense`, the exportable formulation, on the history shape only: it is
O(N^2) in packed tokens)
at reduced sizes of (a) the event-encoder shape — many segments of 2-25 tokens, 3 heads x 64 —
and (b) the history shape — a few segments of 50+ tokens. CUDA (when present): every backend
at the full issue shapes. Prints a table and writes benchmarks/results/kernels.json.

    .venv/bin/python benchmarks/kernels.py [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pragmatiq.kernels import BACKENDS, exportable_attention, refuse_reasons, varlen_attention

RESULTS = Path(__file__).resolve().parent / "results" / "kernels.json"


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import triton

    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "triton": triton.__version__, "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def segments(n: int, lo: int, hi: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(lo, hi + 1, n).tolist()


def make(lengths, heads, head_dim, device, dtype):
    g = torch.Generator().manual_seed(0)
    cu = torch.tensor([0] + np.cumsum(lengths).tolist(), dtype=torch.int32, device=device)
    total = int(cu[-1])
    qkv = [torch.randn(total, heads, head_dim, generator=g).to(device, dtype).requires_grad_(True) for _ in range(3)]
    return qkv, cu, max(lengths)


def timeit(fn, device, reps=3) -> float:
    fn()  # warm up
    best = float("inf")
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def bench(name, lengths, heads, head_dim, device, dtype, backends):
    (q, k, v), cu, m = make(lengths, heads, head_dim, device, dtype)
    rows = []
    for b in backends:
        if b == "dense":
            fwd = lambda: exportable_attention(q, k, v, cu)  # noqa: E731
        else:
            why = refuse_reasons(q, cu, m)[b]
            if why:
                rows.append({"shape": name, "backend": b, "skipped": why})
                continue
            fwd = lambda b=b: varlen_attention(q, k, v, cu, m, backend=b)  # noqa: E731

        def fwd_bwd():
            fwd().sum().backward()

        with torch.no_grad():
            t_f = timeit(fwd, device)
        t_fb = timeit(fwd_bwd, device)
        rows.append({"shape": name, "backend": b, "segments": len(lengths), "tokens": int(sum(lengths)),
                     "heads": heads, "head_dim": head_dim, "dtype": str(dtype).replace("torch.", ""),
                     "fwd_ms": round(t_f * 1e3, 3), "fwd_bwd_ms": round(t_fb * 1e3, 3)})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu_shapes = {
        "event (2k segs of 2-25, reduced from 200k)": segments(2000, 2, 25, 0),
        "history (8 segs of 50-1500, reduced from 64 of 50-6500)": segments(8, 50, 1500, 1),
    }
    rows = []
    for name, lengths in cpu_shapes.items():
        backends = ["sdpa", "reference"] + ([] if name.startswith("event") else ["dense"])
        rows += bench(name, lengths, 3, 64, "cpu", torch.float32, backends)
    gpu = {"status": "skipped: no CUDA"}
    if torch.cuda.is_available():
        gpu_shapes = {"event (200k segs of 2-25)": segments(200_000, 2, 25, 0),
                      "history (64 segs of 50-6500)": segments(64, 50, 6500, 1)}
        gpu_rows = []
        for name, lengths in gpu_shapes.items():
            gpu_rows += bench(name, lengths, 3, 64, "cuda", torch.bfloat16,
                              [b for b in BACKENDS if b != "reference"])
        gpu = {"status": "ran", "rows": gpu_rows}
    print(f"threads={args.threads}  {machine()['cpu']}")
    print(f"{'shape':58s} {'backend':10s} {'fwd ms':>10s} {'fwd+bwd ms':>12s}")
    for r in rows:
        print(f"{r['shape']:58s} {r['backend']:10s} {r.get('fwd_ms', '-'):>10} {r.get('fwd_bwd_ms', '-'):>12}")
    print("H100 section:", gpu["status"])
    for r in gpu.get("rows", []):
        fwd, fwd_bwd = r.get("fwd_ms", r.get("skipped")), r.get("fwd_bwd_ms", "")
        print(f"{r['shape']:58s} {r['backend']:10s} {fwd:>10} {fwd_bwd:>12}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine(), "threads": args.threads, "cpu": rows, "gpu": gpu},
                                  indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
