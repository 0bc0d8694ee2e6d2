"""The public API of pragmatiq: thin functions over the subpackages.

Every command of the CLI calls one of these. Imports are lazy so that data-only work
(`validate`, `synthesize`) never loads torch.

    from pragmatiq import api
    api.synthesize({"n_users": 2000, "seed": 0}, out="data", n_workers=2)
    api.validate("data")
    api.tokenize("data", "tok", n_workers=2)
    api.pretrain("tok", "run", model_size="nano", config={"max_steps": 200}, runs_root="runs")
    api.export("runs/run", "triton", "model_repository", variants=["onnx"])
    with api.serve("model_repository") as server: ...      # a real Triton server
    api.embed("data", "runs/run", "embeddings.parquet")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike


def validate(data_dir: PathLike):
    """Check a dataset directory against the data contract.

    Returns a `ValidationReport` (`.findings`, `.errors`, `.warnings`, `.exit_code`):
    every finding is reported, none stops the check.
    """
    from pragmatiq.data.validate import validate_dataset

    return validate_dataset(data_dir)


def synthesize(
    config: dict | PathLike | None = None,
    out: PathLike = "data",
    n_workers: int = 1,
    *,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """Write a synthetic bank (the full four-file contract plus labels) into `out`.

    `config` is a dict of overrides (`{"n_users": 2000, "seed": 0}`), a YAML path, or None
    for `configs/data/synthetic.yaml`. The same seed gives byte-identical files for any
    `n_workers`. Returns the manifest. An earlier synthetic bank in `out` is replaced; any other
    dataset there is refused unless `force`.
    """
    from pragmatiq.data.synth import synthesize as _synthesize

    return _synthesize(config, out, n_workers, progress=progress, force=force)


def calibrate(stats: PathLike, out: PathLike | None = None, *, progress: bool = True) -> dict:
    """Fit the generator's priors to shareable aggregates; returns (and writes) a config."""
    from pragmatiq.data.synth import calibrate as _calibrate

    return _calibrate(stats, out, progress=progress)


def tokenize(
    data_dir: PathLike,
    out_dir: PathLike,
    n_workers: int = 1,
    config: Any = None,
    vocab: PathLike | None = None,
    *,
    cuts: Any = None,
    progress: bool = True,
) -> dict:
    """Fit the key-value-time vocabulary (unless `vocab` is given) and encode a dataset.

    Writes token shards, `vocab.json` and `manifest.json` into `out_dir`; returns the manifest.
    `cuts` (a label parquet with `eval_ts`, or a mapping user_id -> time) truncates each
    user's history before the cut time.
    """
    from pragmatiq.tokenizer import tokenize_dataset

    return tokenize_dataset(
        data_dir, out_dir, n_workers=n_workers, config=config, vocab=vocab, cuts=cuts,
        progress=progress,
    )


def pretrain(
    tok_dir: PathLike,
    name: str,
    model_size: str = "small",
    config: dict | PathLike | None = None,
    runs_root: PathLike = "runs",
    *,
    resume: bool | str = "auto",
    progress: bool = True,
) -> Path:
    """Pretrain a model of `model_size` on token shards; returns the run directory
    `runs_root/name` (checkpoints, serving weights, metrics)."""
    from pragmatiq.train import pretrain as _pretrain

    return _pretrain(
        tok_dir, name, model_size=model_size, config=config, runs_root=runs_root,
        resume=resume, progress=progress,
    )


def probe(
    data_dir: PathLike,
    run_dir: PathLike,
    label: PathLike,
    *,
    tok_dir: PathLike | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    n_workers: int = 1,
    token_budget: int = 32768,
    folds: int = 1,
) -> dict:
    """Embed histories cut at each user's `eval_ts`, fit probes on a seeded split (or `folds`-fold
    cross-validation) and compare them with raw-count and hand-crafted baselines on the same
    split."""
    from pragmatiq.eval import probe as _probe

    return _probe(data_dir, run_dir, label, tok_dir=tok_dir, seed=seed, device=device,
                  progress=progress, n_workers=n_workers, token_budget=token_budget, folds=folds)


def quickstart(
    out: PathLike = "quickstart",
    *,
    n_users: int = 2000,
    max_steps: int | None = None,
    seed: int = 0,
    n_workers: int = 2,
    serve: bool = True,
    progress: bool = True,
) -> dict:
    """Synthesize -> validate -> tokenize -> pretrain nano -> probe -> export -> serve the
    tutorial's request through a real Triton server (`serve=False` stops after the probes), in `out`."""
    from pragmatiq.quickstart import run_quickstart

    return run_quickstart(out, n_users=n_users, max_steps=max_steps, seed=seed,
                          n_workers=n_workers, serve=serve, progress=progress)


def export(
    run: PathLike,
    target: str = "triton",
    out: PathLike = "model_repository",
    *,
    variants=(),
    device: str = "cpu",
    instances: int = 1,
    precision: str = "fp32",
    dynamic_batching: bool = True,
    name: str | None = None,
    overwrite: bool = False,
    progress=print,
) -> dict:
    """Compile `run` for `target` (triton, sagemaker, onnx, torchscript, pt2) into `out`.

    Every variant is checked against the native model on random ragged batches before anything
    is written; the results are in `out/parity.json` and returned."""
    import json

    from pragmatiq.export.sagemaker import export_sagemaker
    from pragmatiq.export.targets import ExportError, export_triton, export_variant

    out = Path(out)
    if target == "triton":
        export_triton(run, out, variants=variants, device=device, instances=instances, precision=precision,
                      dynamic_batching=dynamic_batching, overwrite=overwrite, progress=progress)
    elif target == "sagemaker":
        export_sagemaker(run, out, name=name, variants=variants, device=device, instances=instances,
                         precision=precision, dynamic_batching=dynamic_batching, overwrite=overwrite,
                         progress=progress)
    elif target in ("onnx", "torchscript", "pt2"):
        export_variant(run, target, out, overwrite=overwrite)
    else:
        raise ExportError(f"unknown target {target!r}; choose from triton, sagemaker, onnx, torchscript, pt2")
    return {"target": target, "out": str(out), "parity": json.loads((out / "parity.json").read_text())}


def serve(repo: PathLike | None, *, http_port: int | None = None, grpc_port: int | None = None,
          sagemaker_port: int | None = None, multi_model: bool = False, env: dict | None = None):
    """A real Triton server for `repo` (not yet started: use it as a context manager or `.start()`).

    With `sagemaker_port` only Triton's SageMaker frontend is served (`/ping`, `/invocations`,
    and with `multi_model` the `/models` API)."""
    from pragmatiq.serve.server import TritonServer

    return TritonServer(repo, http_port=http_port, grpc_port=grpc_port, sagemaker_port=sagemaker_port,
                        multi_model=multi_model, env=env)


def embed(
    src: PathLike,
    run: PathLike,
    out: PathLike = "embeddings.parquet",
    *,
    device: str = "cpu",
    token_budget: int = 32768,
    label: PathLike | None = None,
    n_workers: int = 1,
    progress: bool = True,
) -> dict:
    """Embed every user of a data or token directory into a parquet of `user_id` + float32
    `embedding`; histories cut at `eval_ts` with a label file; shards across torchrun ranks."""
    from pragmatiq.serve.offline import embed_to_parquet

    return embed_to_parquet(src, run, out, device=device, token_budget=token_budget, label=label,
                            n_workers=n_workers, progress=progress)


def embed_records(run: PathLike, records, *, device: str = "cpu"):
    """Embed records in process (a list of the served request's records, or its JSON text):
    returns ((n_users, d) float32 NumPy, user_ids), the numbers the Triton models serve."""
    from pragmatiq.serve.offline import embed_records as _embed_records

    return _embed_records(run, records, device=device)


def bench_parity(run: PathLike, *, variants=("onnx", "torchscript"), events_per_user: int = 100,
                 repeats: int = 20, threads: int = 1, log=print) -> list[dict]:
    """Every available encoder variant on the same random ragged batches: max |Δ|, cosine,
    p50/p99 latency for 1 and 64 users, users/s."""
    from pragmatiq.export.bench import bench_parity as _bench

    return _bench(run, variants=variants, events_per_user=events_per_user, repeats=repeats, threads=threads,
                  log=log)


def info() -> dict:
    """Versions, device, optional extras and attention backends, as plain data."""
    from pragmatiq.info import collect_info

    return collect_info()
