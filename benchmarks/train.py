"""Pretraining throughput on CPU: nano at token budget 8,192 (target >= 60k tokens/s here).

    python benchmarks/train.py [--n-users 500] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_result  # noqa: E402

from pragmatiq import api  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-users", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--token-budget", type=int, default=8192)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        api.synthesize({"n_users": args.n_users, "seed": 0}, out=tmp / "data", n_workers=2, progress=False)
        api.tokenize(tmp / "data", tmp / "tok", n_workers=2, progress=False)
        cfg = {"max_steps": args.steps, "token_budget": args.token_budget, "log_every": 5, "eval_every": 0,
               "checkpoint_every": 10**9}
        t0 = time.perf_counter()
        run = api.pretrain(tmp / "tok", "bench", model_size="nano", config=cfg, runs_root=tmp, progress=False)
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tok_s = rows[-1]["tokens_per_s"]
    result = {"model": "nano", "token_budget": args.token_budget, "steps": args.steps, "wall_s": wall,
              "tokens_per_s": tok_s, "final_loss": rows[-1]["loss"], "peak_rss_mb": peak}
    print(table([("model", "budget", "steps", "tokens/s", "target", "peak RSS MB"),
                 ("nano", args.token_budget, args.steps, f"{tok_s:,.0f}", ">= 60,000", f"{peak:.0f}")]))
    print("wrote", write_result("train", result))


if __name__ == "__main__":
    main()
