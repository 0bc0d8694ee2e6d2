"""Offline embedding throughput on a synthetic book: distinct events encoded once per book, once per
batch, or every event.

    python benchmarks/embed.py [--n-users 2000] [--size nano] [--repeats 2] [--token-budget 32768]

Embeds every user of the book (the probes' and `pragmatiq embed`'s path, `embed_token_dir`) in
three modes, interleaved: `book` (the default: each distinct event of a batch once, and an event
cache across batches), `batch` (no cache) and `every` (the model's `distinct_events` switch off);
reports event tokens/s and users/s of the best repeat, the events the encoder saw and the largest
difference from the `every` embeddings. The default book is the quickstart's (2,000 users). Prints a table
and writes benchmarks/results/embed.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, quick_run, table, write_result  # noqa: E402


def _distinct_share(tok: Path, token_budget: int, vocab_size: int) -> tuple[int, int]:
    """(events, events the encoder sees with the switch on) over the book's batches."""
    from pragmatiq.tokenizer import TokenBudgetSampler, TokenDataset, collate
    from pragmatiq.zoo.dedup import token_codes, unique_segments

    ds = TokenDataset(tok)
    seen = total = 0
    for index in TokenBudgetSampler(ds.costs, token_budget=token_budget, shuffle=False):
        b = collate(ds.read(list(index)))
        distinct = unique_segments(token_codes(b.key_ids, b.value_ids, b.positions, vocab_size), b.cu_tokens)
        total += b.n_events
        seen += b.n_events if distinct is None else int(distinct[0].numel())
    return total, seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-users", type=int, default=2000)
    ap.add_argument("--size", default="nano")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--token-budget", type=int, default=32768)
    args = ap.parse_args()
    import torch

    from pragmatiq.eval.embedding import embed_token_dir, load_run_model
    from pragmatiq.tokenizer import TokenDataset
    from pragmatiq.zoo.event_cache import EventStateCache

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, run = quick_run(root, args.size, args.n_users)
        tok = root / "tok"
        ds = TokenDataset(tok)
        n_tokens, n_users = int(ds.costs.sum()), len(ds)
        model = load_run_model(run)
        n_events, n_seen = _distinct_share(tok, args.token_budget, model.config.vocab_size)
        times: dict[str, list[float]] = {"book": [], "batch": [], "every": []}
        out: dict[str, np.ndarray] = {}
        n_book = 0
        for _ in range(args.repeats):  # interleaved, so a host that slows down weighs on every mode alike
            for mode in times:
                model.distinct_events = mode != "every"
                cache = EventStateCache() if mode == "book" else False
                t0 = time.perf_counter()
                _, out[mode] = embed_token_dir(tok, model, token_budget=args.token_budget, event_cache=cache)
                times[mode].append(time.perf_counter() - t0)
                n_book = cache.misses if cache else n_book
    diff = max(float(np.abs(out[m] - out["every"]).max()) for m in ("book", "batch"))
    modes = {}
    for mode, ts in times.items():
        best = min(ts)
        modes[mode] = {"seconds": best, "seconds_runs": ts, "tokens_per_s": n_tokens / best,
                       "users_per_s": n_users / best}
    speedup = modes["every"]["seconds"] / modes["book"]["seconds"]
    seen = {"book": n_book, "batch": n_seen, "every": n_events}
    result = {"model": args.size, "n_users": n_users, "tokens": n_tokens, "events": n_events,
              "distinct_events_encoded": n_seen, "distinct_share": n_seen / max(n_events, 1),
              "book_distinct_events_encoded": n_book, "token_budget": args.token_budget,
              "threads": torch.get_num_threads(), "modes": modes, "speedup": speedup, "max_abs_diff": diff}
    rows = [("model", "mode (events encoded)", "best s", "runs s", "tokens/s", "users/s")]
    for mode, r in modes.items():
        rows.append((args.size, f"{mode} ({seen[mode]:,})", f"{r['seconds']:.1f}",
                     " / ".join(f"{t:.1f}" for t in r["seconds_runs"]), f"{r['tokens_per_s']:,.0f}",
                     f"{r['users_per_s']:,.1f}"))
    print(table(rows))
    print(f"{n_users:,} users, {n_tokens:,} event tokens, {n_events:,} events; speed-up of book over every"
          f" {speedup:.2f}x; max |difference| {diff:.2e}")
    cpu = machine()
    print(f"CPU: {cpu['processor']}, {cpu['cpu_count']} cores, {cpu['cpu']}")
    print("wrote", write_result("embed", result))


if __name__ == "__main__":
    main()
