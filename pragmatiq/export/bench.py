"""`pragmatiq bench parity`: every available encoder variant on the same random ragged batches.

One row per variant: max |Δ| and min cosine against the native model, p50/p99 latency for a
batch of 1 and of 64 users, and users/s at 64. Variants are exported into a temporary
directory from the same run; a variant that cannot be built here is listed with the reason.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from pragmatiq.export.parity import compare, ragged_batch, random_batches
from pragmatiq.export.runners import make_runner
from pragmatiq.export.targets import check_run
from pragmatiq.export.variants import EXPORTERS


def _latency(runner, batch, repeats: int) -> tuple[float, float]:
    runner(batch)  # warm-up
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner(batch)
        t.append(time.perf_counter() - t0)
    return float(np.percentile(t, 50) * 1e3), float(np.percentile(t, 99) * 1e3)


def bench_parity(run: str | Path, *, variants=("onnx", "torchscript"), events_per_user: int = 100,
                 repeats: int = 20, threads: int = 1, seed: int = 0, log=print) -> list[dict]:
    """Rows of {variant, max_abs, min_cosine, p50/p99 ms at 1 and 64 users, users_per_s}."""
    import torch

    from pragmatiq.export.targets import tensorrt_status

    unknown = [v for v in variants if v not in EXPORTERS and v != "tensorrt"]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(EXPORTERS)}, tensorrt")
    torch.set_num_threads(threads)
    run = check_run(run)
    ref = make_runner("torch", run)
    vocab = ref.model.config.vocab_size
    rng = np.random.default_rng(seed)
    checks = random_batches(vocab, n=5, seed=seed)
    one = ragged_batch([events_per_user], [8], vocab, rng)
    many = ragged_batch([events_per_user] * 64, [8] * 64, vocab, rng)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pragmatiq-bench-") as tmp:
        for kind in ("torch",) + tuple(variants):
            row: dict = {"variant": kind}
            if kind == "tensorrt":
                rows.append(tensorrt_status())
                continue
            try:
                runner = ref
                if kind != "torch":
                    log(f"{kind}: exporting")
                    d = Path(tmp) / kind
                    d.mkdir()
                    EXPORTERS[kind](ref.model, d)
                    runner = make_runner(kind, d, threads=threads)
            except Exception as e:  # noqa: BLE001 - a variant that cannot be built is reported, not fatal
                rows.append({**row, "skipped": f"{type(e).__name__}: {e}"})
                continue
            worst = [compare(ref(b), runner(b)) for b in checks]
            row["max_abs"] = max(w[0] for w in worst)
            row["min_cosine"] = min(w[1] for w in worst)
            row["p50_ms_1"], row["p99_ms_1"] = _latency(runner, one, repeats)
            row["p50_ms_64"], row["p99_ms_64"] = _latency(runner, many, max(3, repeats // 4))
            row["users_per_s"] = 64 / (row["p50_ms_64"] / 1e3)
            rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    head = (f"{'variant':<12} {'max|Δ|':>9} {'cosine':>9} {'p50 ms@1':>9} {'p99 ms@1':>9} {'p50 ms@64':>10}"
            f" {'p99 ms@64':>10} {'users/s':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['variant']:<12} skipped: {r['skipped']}")
            continue
        lines.append(f"{r['variant']:<12} {r['max_abs']:>9.2e} {r['min_cosine']:>9.6f} {r['p50_ms_1']:>9.2f}"
                     f" {r['p99_ms_1']:>9.2f} {r['p50_ms_64']:>10.1f} {r['p99_ms_64']:>10.1f} {r['users_per_s']:>8.0f}")
    return "\n".join(lines)
