"""Benchmark the synthetic bank: throughput, peak memory across book sizes, validate time.

    python benchmarks/synth.py                 # 2,000 users (1 and 2 workers), 10k, 50k
    python benchmarks/synth.py --large 20000   # a smaller large run

Each generation runs in a fresh process; the parent samples the resident memory of that
process and all its children (the worker pool) every 25 ms and reports the peak of the sum,
along with `getrusage` maxima. Prints a table and writes benchmarks/results/synth.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"

_CHILD = r"""
import json, os, resource, sys, time
from pragmatiq.data.synth import synthesize
n, workers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t0, c0 = time.perf_counter(), os.times()
m = synthesize({"n_users": n, "seed": 0}, out, n_workers=workers, progress=False)
wall, c1 = time.perf_counter() - t0, os.times()
print(json.dumps({
    "wall_s": wall, "events": m["counts"]["events"],
    "cpu_main_s": c1.user - c0.user + c1.system - c0.system,
    "cpu_workers_s": c1.children_user - c0.children_user + c1.children_system
                     - c0.children_system,
    "maxrss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "maxrss_largest_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def generate(n_users: int, workers: int, out: Path) -> dict:
    proc = psutil.Popen([sys.executable, "-c", _CHILD, str(n_users), str(workers), str(out)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, tick, tree = 0, 0, [proc]
    while proc.poll() is None:  # cheap sampling: the machine has two cores
        if tick % 10 == 0:
            try:
                tree = [proc] + proc.children(recursive=True)
            except psutil.Error:
                pass
        peak = max(peak, _rss(tree))
        tick += 1
        time.sleep(0.025)
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"generation failed:\n{stderr}")
    r = json.loads(stdout.strip().splitlines()[-1])
    r.update(n_users=n_users, n_workers=workers, users_per_s=n_users / r["wall_s"],
             events_per_s=r["events"] / r["wall_s"], peak_rss_tree_mb=peak / 2**20,
             events_per_user=r["events"] / n_users)
    return r


def time_validate(directory: Path) -> dict:
    try:
        from pragmatiq.data.validate import validate_dataset
    except ImportError as e:
        return {"skipped": f"pragmatiq.data.validate not importable: {e}"}
    validate_dataset(directory)  # warm the import and the page cache
    t0 = time.perf_counter()
    report = validate_dataset(directory)
    return {"wall_s": time.perf_counter() - t0, "exit_code": report.exit_code,
            "findings": len(report.findings)}


def machine() -> dict:
    import numpy
    import pyarrow

    import pragmatiq

    return {
        "platform": platform.platform(), "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_before": os.getloadavg(),
        "versions": {"pragmatiq": pragmatiq.__version__, "numpy": numpy.__version__,
                     "pyarrow": pyarrow.__version__},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--large", type=int, nargs="*", default=[10_000, 50_000],
                    help="larger books for the memory-vs-size rows (2 workers)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    info = machine()
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        for workers in (2, 1):
            out = tmp / f"book_{args.users}_{workers}"
            rows.append(generate(args.users, workers, out))
            print(f"  {args.users} users, {workers} worker(s): "
                  f"{rows[-1]['users_per_s']:.0f} users/s", file=sys.stderr)
        validate = time_validate(tmp / f"book_{args.users}_2")
        for n in args.large:
            out = tmp / f"book_{n}"
            rows.append(generate(n, 2, out))
            print(f"  {n} users: {rows[-1]['users_per_s']:.0f} users/s", file=sys.stderr)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    head = (f"{'users':>7} {'workers':>7} {'wall s':>7} {'users/s':>8} {'events':>10} "
            f"{'events/s':>10} {'ev/user':>7} {'peak RSS tree MB':>16} {'max worker MB':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['n_users']:>7} {r['n_workers']:>7} {r['wall_s']:>7.2f} "
              f"{r['users_per_s']:>8.0f} {r['events']:>10} {r['events_per_s']:>10.0f} "
              f"{r['events_per_user']:>7.0f} {r['peak_rss_tree_mb']:>16.0f} "
              f"{r['maxrss_largest_worker_mb']:>13.0f}")
    if "wall_s" in validate:
        print(f"validate_dataset on the {args.users}-user book: {validate['wall_s']:.2f} s "
              f"(exit {validate['exit_code']}, {validate['findings']} findings)")
    else:
        print(f"validate_dataset: {validate['skipped']}")
    result = {
        "benchmark": "synth",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/synth.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "load_average_after": os.getloadavg(),
        "runs": rows,
        "validate": validate,
        "notes": "Peak RSS tree = max over time of the summed RSS of the generating process "
                 "and its worker pool (sampled every 25 ms). The machine is shared; users/s "
                 "varies with other load (see load averages).",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
