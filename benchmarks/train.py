"""Pretraining throughput.

    python benchmarks/train.py [--n-users 500] [--steps 40] [--repeats 3] [--head-precision auto,fp32]
    python benchmarks/train.py --sizes small,medium,large [--steps 60] [--warmup-steps 10]
                               [--attn-backends auto,flash_attn,torch_varlen] [--peak-tflops 989.4]

Without `--sizes`: CPU, nano at token budget 8,192 (target >= 60k tokens/s on the 2-core
machine). The same tokenized book is trained `--repeats` times per head precision, interleaved; the
table shows the best run and the spread, since a shared machine makes single runs noisy. tokens/s
counts event tokens over the whole run (first step and data loading included), as
`metrics.jsonl` does. Writes `train.json`.

With `--sizes` (for a GPU: bf16 autocast, the size's recipe and token budget): each size, and each
attention backend, trains `--steps` steps; tokens/s and model FLOP/s are taken over the steps after
the first `--warmup-steps`, from `metrics.jsonl`'s per-step training time. FLOPs are counted from the
very batches the run trained on (`benchmarks/_flops.py`: encoders, calendar MLP, MLM head at the
masked rows, user-view head) and MFU divides them by the GPU's dense bf16 peak (known GPUs, or
`--peak-tflops`). Targets: small >= 1M tokens/s, medium >= 35% MFU (NVIDIA H100). Writes
`train-sizes-<device>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_result  # noqa: E402
from _flops import bf16_peak_tflops, train_step_flops  # noqa: E402

from pragmatiq import api  # noqa: E402
from pragmatiq._memory import peak_rss_mb  # noqa: E402


def _train_once(tok: Path, root: Path, tag: str, cfg: dict) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    run = api.pretrain(tok, tag, model_size="nano", config=cfg, runs_root=root, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {"tokens_per_s": rows[-1]["tokens_per_s"], "wall_s": wall, "cpu_s": cpu,
            "final_loss": rows[-1]["loss"], "load_average_1m": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-users", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--token-budget", type=int, default=None, help="default 8192; with --sizes each recipe's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--head-precision", default="auto,fp32",
                    help="comma-separated head_precision settings, run interleaved (the first is the headline)")
    ap.add_argument("--sizes", default=None, help="comma-separated model sizes: the per-size (GPU) benchmark")
    ap.add_argument("--warmup-steps", type=int, default=10, help="with --sizes: steps left out of the rates")
    ap.add_argument("--attn-backends", default="auto", help="with --sizes: comma-separated attn_backend settings")
    ap.add_argument("--peak-tflops", type=float, default=None, help="with --sizes: the device's dense bf16 peak")
    ap.add_argument("--results-dir", type=Path, default=None, help="where the JSON goes (default benchmarks/results)")
    args = ap.parse_args()
    if args.sizes:
        return sizes_main(args)
    args.token_budget = args.token_budget or 8192
    import torch

    from pragmatiq._threads import cpu_workers
    from pragmatiq.train import load_pretrain_config
    from pragmatiq.train.fused_ce import default_workers, head_dtype

    precisions = args.head_precision.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        api.synthesize({"n_users": args.n_users, "seed": 0}, out=tmp / "data", n_workers=2, progress=False)
        api.tokenize(tmp / "data", tmp / "tok", n_workers=2, progress=False)
        vocab = json.loads((tmp / "tok" / "vocab.json").read_text())["size"]
        rss_before = peak_rss_mb()["self"]
        base = {"max_steps": args.steps, "token_budget": args.token_budget, "log_every": 5, "eval_every": 0,
                "checkpoint_every": 10**9}
        # interleaved, so a host that slows down mid-run weighs on every setting alike
        runs: dict[str, list[dict]] = {p: [] for p in precisions}
        for i in range(args.repeats):
            for p in precisions:
                runs[p].append(_train_once(tmp / "tok", tmp, f"bench-{p}-{i}", {**base, "head_precision": p}))
    peak = peak_rss_mb()["self"]
    cfg = load_pretrain_config("nano", base)
    settings = {}
    for p in precisions:
        rates = [r["tokens_per_s"] for r in runs[p]]
        best = max(runs[p], key=lambda r: r["tokens_per_s"])
        dtype = head_dtype(p, torch.device("cpu"))
        settings[p] = {"head_dtype": str(dtype or torch.float32).removeprefix("torch."),
                       "tokens_per_s": best["tokens_per_s"], "tokens_per_s_runs": rates,
                       "tokens_per_s_median": statistics.median(rates), "wall_s": best["wall_s"],
                       "final_loss": best["final_loss"], "runs": runs[p]}
    head = settings[precisions[0]]
    result = {"model": "nano", "token_budget": args.token_budget, "steps": args.steps, "vocab_size": vocab,
              "num_threads": cfg.num_threads, "head_workers": default_workers(torch.device("cpu")),
              "event_workers": cfg.event_workers or cpu_workers(torch.device("cpu")),
              "head_precision": precisions[0], **{k: head[k] for k in ("tokens_per_s", "tokens_per_s_runs",
                                                                       "tokens_per_s_median", "final_loss")},
              "by_head_precision": settings, "peak_rss_mb": peak, "peak_rss_mb_before_training": rss_before}
    rows = [("model", "head", "budget", "steps", "tokens/s best", "runs", "target", "peak RSS MB")]
    for p, r in settings.items():
        rows.append(("nano", f"{p} ({r['head_dtype']})", args.token_budget, args.steps,
                     f"{r['tokens_per_s']:,.0f}", " / ".join(f"{x:,.0f}" for x in r["tokens_per_s_runs"]),
                     ">= 60,000", f"{peak:.0f}"))
    print(table(rows))
    cpu = machine()
    print(f"CPU: {cpu['processor']}, {cpu['cpu_count']} cores, {cpu['cpu']}")
    print("wrote", write_result("train", result, args.results_dir))


def step_batches(tok: Path, token_budget: int, seed: int, steps: int) -> list:
    """The user index lists of a run's first `steps` batches, as the training loop draws them with
    `eval_users: 0` on one process (every user trains; the sampler's epochs follow each other)."""
    from pragmatiq.tokenizer import TokenBudgetSampler, TokenDataset

    sampler = TokenBudgetSampler(TokenDataset(tok).lengths, token_budget, seed=seed)
    out, epoch = [], 0
    while len(out) < steps:
        sampler.set_epoch(epoch)
        out += sampler.batches()
        epoch += 1
    return out[:steps]


def steady_rates(rows: list[dict], flops: list[float], warmup: int) -> dict:
    """Per-step metrics rows (step 1..N) and each step's FLOPs -> tokens/s and FLOP/s over steps
    warmup+1..N, from the cumulative training time and tokens the rows record."""
    if not 0 <= warmup < len(rows):
        raise ValueError(f"--warmup-steps must be below --steps ({len(rows)}), got {warmup}")
    seconds = [r["train_s"] for r in rows]
    tokens = [r["tokens_per_s"] * r["train_s"] for r in rows]  # cumulative
    t0, n0 = (seconds[warmup - 1], tokens[warmup - 1]) if warmup else (0.0, 0.0)
    span = seconds[-1] - t0
    return {"steps": len(rows) - warmup, "seconds": span, "tokens_per_s": (tokens[-1] - n0) / span,
            "flop_per_s": sum(flops[warmup:]) / span}


def sizes_main(args) -> None:
    import torch

    from pragmatiq.tokenizer import TokenDataset, collate
    from pragmatiq.train import load_pretrain_config
    from pragmatiq.zoo import load_model

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = args.peak_tflops or (bf16_peak_tflops(device) if cuda else None)
    sizes, backends = args.sizes.split(","), args.attn_backends.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        api.synthesize({"n_users": args.n_users, "seed": 0}, out=tmp / "data", n_workers=2, progress=False)
        api.tokenize(tmp / "data", tmp / "tok", n_workers=2, progress=False)
        ds = TokenDataset(tmp / "tok")
        for size in sizes:
            for backend in backends:
                over = {"max_steps": args.steps, "log_every": 1, "eval_every": 0, "eval_users": 0,
                        "checkpoint_every": 10**9, "keep_checkpoints": 1}
                if args.token_budget:
                    over["token_budget"] = args.token_budget
                if backend != "auto":
                    over["model"] = {"attn_backend": backend}
                cfg = load_pretrain_config(size, over)
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                try:
                    run = api.pretrain(tmp / "tok", f"{size}-{backend}", model_size=size, config=over,
                                       runs_root=tmp, resume=False, progress=True)
                except torch.OutOfMemoryError:  # large at its recipe's budget on one GPU, say
                    torch.cuda.empty_cache()
                    results.append({"size": size, "attn_backend": backend, "token_budget": cfg.token_budget,
                                    "error": "CUDA out of memory (try a smaller --token-budget)"})
                    continue
                mem = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
                rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
                model = load_model(run)
                flops, seen = [], 0.0
                for idx, row in zip(step_batches(tmp / "tok", cfg.token_budget, cfg.seed, args.steps), rows):
                    b = collate(ds.read(idx))
                    trained = row["tokens_per_s"] * row["train_s"] - seen  # the step's tokens, as logged
                    seen += trained
                    if round(trained) != b.n_tokens:
                        raise RuntimeError(f"step {row['step']}: the run trained {trained:.0f} tokens, the "
                                           f"batch rebuilt here has {b.n_tokens}: FLOPs would be miscounted")
                    flops.append(train_step_flops(model.config, b, row["masked"], model.config.vocab_size,
                                                  model.config.user_head))
                rates = steady_rates(rows, flops, args.warmup_steps)
                results.append({"size": size, "attn_backend": backend, "params": model.num_parameters(),
                                "token_budget": cfg.token_budget, "max_steps": args.steps,
                                "warmup_steps": args.warmup_steps, **rates,
                                "mfu": rates["flop_per_s"] / (peak * 1e12) if peak else None,
                                "peak_gpu_memory_gib": mem, "final_loss": rows[-1]["loss"]})
                del model
    targets = {"small": ">= 1M tokens/s", "medium": ">= 35% MFU"}
    table_rows = [("size", "attention", "params", "budget", "steps", "tokens/s", "model TFLOP/s", "MFU", "target",
                   "peak GPU GiB")]
    for r in results:
        if "error" in r:
            table_rows.append((r["size"], r["attn_backend"], "", r["token_budget"], "", r["error"], "", "", "", ""))
            continue
        table_rows.append((r["size"], r["attn_backend"], f"{r['params'] / 1e6:.1f}M", r["token_budget"],
                           r["steps"], f"{r['tokens_per_s']:,.0f}", f"{r['flop_per_s'] / 1e12:.2f}",
                           "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}", targets.get(r["size"], ""),
                           "" if r["peak_gpu_memory_gib"] is None else f"{r['peak_gpu_memory_gib']:.1f}"))
    print(table(table_rows))
    slug = "".join(c if c.isalnum() else "-" for c in device.lower()).strip("-")
    print("wrote", write_result(f"train-sizes-{slug}", {"device": device, "bf16_peak_tflops": peak,
                                                          "n_users": args.n_users, "results": results},
                                args.results_dir))


if __name__ == "__main__":
    main()
