"""The public API of pragmatiq: thin functions over the subpackages.

Every command of the CLI calls one of these. Imports are lazy so that data-only work
(`validate`, `synthesize`) never loads torch.

    from pragmatiq import api
    api.synthesize({"n_users": 2000, "seed": 0}, out="data", n_workers=2)
    api.validate("data")
    api.tokenize("data", "tok", n_workers=2)
    api.pretrain("tok", "run", model_size="nano", config={"max_steps": 200}, runs_root="runs")
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
) -> dict:
    """Write a synthetic bank (the full four-file contract plus labels) into `out`.

    `config` is a dict of overrides (`{"n_users": 2000, "seed": 0}`), a YAML path, or None
    for `configs/data/synthetic.yaml`. The same seed gives byte-identical files for any
    `n_workers`. Returns the manifest.
    """
    from pragmatiq.data.synth import synthesize as _synthesize

    return _synthesize(config, out, n_workers, progress=progress)


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
) -> dict:
    """Embed histories cut at each user's `eval_ts`, fit probes on a seeded split and compare
    them with raw-count and hand-crafted baselines on the same split."""
    from pragmatiq.eval import probe as _probe

    return _probe(data_dir, run_dir, label, tok_dir=tok_dir, seed=seed, device=device,
                  progress=progress, n_workers=n_workers, token_budget=token_budget)


def quickstart(
    out: PathLike = "quickstart",
    *,
    n_users: int = 2000,
    max_steps: int | None = None,
    seed: int = 0,
    n_workers: int = 2,
    progress: bool = True,
) -> dict:
    """Synthesize -> validate -> tokenize -> pretrain nano -> probe, in `out`."""
    from pragmatiq.quickstart import run_quickstart

    return run_quickstart(out, n_users=n_users, max_steps=max_steps, seed=seed,
                          n_workers=n_workers, progress=progress)


def info() -> dict:
    """Versions, device, optional extras and attention backends, as plain data."""
    from pragmatiq.info import collect_info

    return collect_info()
