"""Tokenizer throughput: fit + encode a synthetic book, collation, the records path.

    python benchmarks/tokenizer.py [--n-users 2000] [--workers 2] [--repeats 3]

The fit + encode is timed `--repeats` times (the best is the result, every run is recorded: on
a shared machine the spread is part of the answer). The script is not called `tokenize.py`: run
as a script, that name would shadow the standard library's `tokenize` module.

Targets (2-core machine): fit + encode of the 2,000-user book <= 5 s with 2 workers; collation
>= 2M tokens/s; records path <= 5 ms for one user of 1,000 events.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_result  # noqa: E402

from pragmatiq import api  # noqa: E402
from pragmatiq._memory import peak_rss_mb  # noqa: E402
from pragmatiq.tokenizer import TokenBudgetSampler, TokenDataset, collate, records_to_batch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-users", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        api.synthesize({"n_users": args.n_users, "seed": 0}, out=tmp / "data", n_workers=2, progress=False)
        walls = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            m = api.tokenize(tmp / "data", tmp / "tok", n_workers=args.workers, progress=False)
            walls.append(time.perf_counter() - t0)
        wall = min(walls)
        ds = TokenDataset(tmp / "tok")
        batches = list(TokenBudgetSampler(ds, token_budget=65536, seed=0))[:40]
        rows = [ds.read(b) for b in batches]  # decode first: time the collation alone
        t0 = time.perf_counter()
        n_tok = sum(collate(r).n_tokens for r in rows)
        collate_rate = n_tok / (time.perf_counter() - t0)
        rec = [{"user_id": "u", "events": [
            {"ts": 1_700_000_000_000_000 + i * 60_000_000, "source": "transaction",
             "fields": {"amount": f"{i % 97}.50", "merchant": "TESCO STORES 4521", "mcc": "5411",
                        "currency": "GBP"}} for i in range(1000)],
            "attributes": {"country": "GB"}, "lifelong": []}]
        records_to_batch(rec, ds.vocab)
        reps, records_all = 20, []
        for _ in range(5):  # best of 5 rounds of 20
            t0 = time.perf_counter()
            for _ in range(reps):
                records_to_batch(rec, ds.vocab)
            records_all.append((time.perf_counter() - t0) / reps * 1e3)
        records_ms = min(records_all)
    rss = peak_rss_mb()
    peak, peak_children = rss["self"], rss["children"]
    result = {"n_users": args.n_users, "workers": args.workers, "events": m["events"], "tokens": m["tokens"],
              "fit_encode_s": wall, "fit_encode_all_s": walls, "events_per_s": m["events"] / wall,
              "collate_tokens_per_s": collate_rate, "records_ms_1000_events": records_ms,
              "records_ms_all": records_all, "peak_rss_mb": peak, "peak_rss_worker_mb": peak_children}
    print(table([("metric", "value", "target"),
                 ("fit + encode (s), best of runs", f"{wall:.2f} ({', '.join(f'{w:.2f}' for w in walls)})", "<= 5"),
                 ("events/s", f"{result['events_per_s']:,.0f}", ">= 400,000"),
                 ("collate tokens/s", f"{collate_rate:,.0f}", ">= 2,000,000"),
                 ("records path, 1 user x 1000 events (ms)", f"{records_ms:.1f}", "<= 5"),
                 ("peak RSS main / worker (MB)", f"{peak:.0f} / {peak_children:.0f}", "")]))
    print("wrote", write_result("tokenizer", result))


if __name__ == "__main__":
    main()
