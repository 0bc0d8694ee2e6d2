"""The quickstart: synthetic bank -> validate -> tokenize -> pretrain nano -> probes -> export
-> a real Triton server answering the tutorial's request (checked against in-process embedding).

Each stage is timed and the peak resident memory so far recorded (this process, and its largest
worker); the result is plain data (paths, timings, peak RSS, probe table) and a summary table goes
to stderr.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

from pragmatiq import api
from pragmatiq._memory import peak_rss_mb, release_memory, tune_malloc

PROBE_TASKS = ("default_12m", "churn_6m", "ltv_positive")
# glibc's mmap threshold while pretraining (bytes; 16 MiB otherwise, see pragmatiq/_memory.py):
# mid-size activations of the book's few huge batches then come from mmap, not the heap, which
# leaves less fragmented heap for the probe stage. Measured on the 2-core machine: pretraining peak
# 2.5-2.6 -> 2.1-2.2 GiB and the quickstart's peak (probe stage) 2,880-2,891 -> 2,657-2,713 MiB, at
# up to 5% of the training time.
PRETRAIN_MMAP_THRESHOLD = 4 << 20


@contextmanager
def _stage(name: str, timings: dict[str, float], memory: dict[str, dict]):
    print(f"[quickstart] {name} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 2)
    rss = memory[name] = peak_rss_mb()
    release_memory()
    print(f"[quickstart] {name} done in {timings[name]:.1f}s (peak RSS so far {rss['self']:.0f} MiB)",
          file=sys.stderr, flush=True)


def run_quickstart(
    out: str | Path,
    *,
    n_users: int = 2000,
    max_steps: int | None = None,
    seed: int = 0,
    n_workers: int = 2,
    serve: bool = True,
    progress: bool = True,
) -> dict:
    tune_malloc()  # as the CLI does, for `api.quickstart` called from Python
    out = Path(out)
    data, tok, runs = out / "data", out / "tok", out / "runs"
    timings: dict[str, float] = {}
    memory: dict[str, dict] = {}
    config = {"seed": seed} | ({"max_steps": max_steps} if max_steps is not None else {})
    from pragmatiq.train import load_pretrain_config

    load_pretrain_config("nano", config)  # a bad setting fails now, not after two stages

    with _stage("synthesize", timings, memory):
        api.synthesize({"n_users": n_users, "seed": seed}, out=data, n_workers=n_workers,
                       progress=progress)
    with _stage("validate", timings, memory):
        report = api.validate(data)
        if report.errors:
            lines = "\n".join(f.line() for f in report.errors)
            raise ValueError(f"the synthetic dataset failed validation:\n{lines}")
    with _stage("tokenize", timings, memory):
        api.tokenize(data, tok, n_workers=n_workers, progress=progress)
    with _stage("pretrain", timings, memory):
        tune_malloc(mmap_threshold=PRETRAIN_MMAP_THRESHOLD)
        try:
            run = api.pretrain(tok, "nano", model_size="nano", config=config, runs_root=runs,
                               resume=False, progress=progress)
        finally:
            tune_malloc()
    from pragmatiq.eval.run import clear_probe_caches

    probes = {}
    with _stage("probe", timings, memory):
        for task in PROBE_TASKS:
            probes[task] = api.probe(data, run, data / "labels" / f"{task}.parquet",
                                     tok_dir=tok, seed=seed, progress=progress,
                                     n_workers=n_workers)
            release_memory()
        clear_probe_caches()
        release_memory()

    from pragmatiq.eval import format_probe_table

    for task in PROBE_TASKS:
        print(format_probe_table(probes[task]), file=sys.stderr)
    result = {"data": str(data), "tok": str(tok), "run": str(run), "timings_s": timings,
              "peak_rss_mb": memory, "probes": probes}
    if serve:
        result |= _export_and_serve(data, run, out / "model_repository", timings, memory)
    return result


def _say(msg: str) -> None:
    print(f"[quickstart] {msg}", file=sys.stderr, flush=True)


def _export_and_serve(data: Path, run: Path, repo: Path, timings: dict, memory: dict) -> dict:
    from pragmatiq.data.records import records_from_data
    from pragmatiq.serve.check import serve_and_check

    with _stage("export", timings, memory):
        api.export(run, "triton", repo, overwrite=True, progress=_say)
    with _stage("serve", timings, memory):
        served = serve_and_check(repo, run, records_from_data(data, limit=8), log=_say)
    return {"model_repository": str(repo), "served": served}
