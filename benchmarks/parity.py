"""Encoder variants side by side (`pragmatiq bench parity`) on a `small` run: max |Δ| and cosine
against the native model, p50/p99 latency for 1 and 64 users of `--events` events, users/s.

    python benchmarks/parity.py [--size small] [--events 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import quick_run, write_result  # noqa: E402

from pragmatiq import api  # noqa: E402
from pragmatiq.export.bench import format_rows  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small")
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--variants", default="onnx,torchscript,pt2,tensorrt")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, run = quick_run(tmp, args.size, n_users=100)
        rows = api.bench_parity(run, variants=tuple(args.variants.split(",")), events_per_user=args.events,
                                repeats=args.repeats, threads=args.threads, log=lambda m: print(m, file=sys.stderr))
    print(format_rows(rows))
    print("wrote", write_result("parity", {"model": args.size, "events_per_user": args.events,
                                          "threads": args.threads, "device": "cpu", "rows": rows}))


if __name__ == "__main__":
    main()
