"""The `pragmatiq` command line: parses arguments and calls `pragmatiq.api`.

Results go to stdout as JSON; progress bars, findings and logs go to stderr. Errors caused
by the user's input print one line (`error: ...`) and exit 2; set `PRAGMATIQ_DEBUG=1` for
the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

import pragmatiq
from pragmatiq import api
from pragmatiq.cli_output import emit as _emit
from pragmatiq.cli_output import one_line_warnings
from pragmatiq.cli_output import user_errors as _user_errors

POSITIVE = click.IntRange(min=1)
PORT = click.IntRange(0, 65535)  # 0: a free port


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(pragmatiq.__version__, prog_name="pragmatiq")
def cli() -> None:
    """pragmatiq: a foundation model for banking event streams."""
    from pragmatiq._memory import tune_malloc

    tune_malloc()  # halves the peak RSS of long runs (see pragmatiq/_memory.py)
    one_line_warnings()


@cli.command()
def info() -> None:
    """Package and dependency versions, device, extras and attention backends."""
    _emit(api.info())


@cli.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@_user_errors
def validate(data_dir: Path) -> None:
    """Check DATA_DIR against the data contract (exit 0 ok, 1 errors, 2 unusable)."""
    report = api.validate(data_dir)
    for finding in report.findings:
        click.echo(finding.line(), err=True)
    n_err, n_warn = len(report.errors), len(report.warnings)
    click.echo(
        f"{data_dir}: {n_err} error(s), {n_warn} warning(s)" + ("" if n_err else " - valid"),
        err=True,
    )
    _emit(report.to_dict())
    sys.exit(report.exit_code)


@cli.group()
def synth() -> None:
    """The synthetic bank: generate a dataset, calibrate its priors."""


@synth.command("generate")
@click.option("--out", type=click.Path(path_type=Path), default=Path("data"), show_default=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML config (default configs/data/synthetic.yaml).")
@click.option("--n-users", type=POSITIVE, default=None)
@click.option("--seed", type=int, default=None)
@click.option("--n-workers", type=POSITIVE, default=1, show_default=True)
@click.option("--force", is_flag=True, help="Write into OUT even if it holds a dataset synth did not write.")
@_user_errors
def synth_generate(out, config_path, n_users, seed, n_workers, force) -> None:
    """Write events, profiles, transfers, labels and manifest.json into --out."""
    from pragmatiq.data.synth import load_synth_config

    base = load_synth_config(config_path)
    overrides = {k: v for k, v in {"n_users": n_users, "seed": seed}.items() if v is not None}
    config = {**_as_dict(base), **overrides}
    _emit(api.synthesize(config, out=out, n_workers=n_workers, force=force))


def _as_dict(config) -> dict:
    import dataclasses

    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


@synth.command("calibrate")
@click.option("--stats", type=click.Path(path_type=Path), required=True,
              help="Aggregates YAML, e.g. configs/data/aggregates.example.yaml.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the calibrated config (default: print only).")
@_user_errors
def synth_calibrate(stats, out) -> None:
    """Fit the generator's priors to aggregates a bank can share."""
    from pragmatiq.configs import config_path

    _emit(api.calibrate(config_path(stats), out))


@cli.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--config", type=click.Path(path_type=Path), default=None,
              help="Tokenizer YAML (default configs/data/tokenizer.yaml).")
@click.option("--vocab", type=click.Path(path_type=Path), default=None,
              help="Reuse a fitted vocab.json instead of fitting.")
@click.option("--label", type=click.Path(path_type=Path), default=None,
              help="Label table with eval_ts: cut each user's history before it.")
@click.option("--n-workers", type=POSITIVE, default=1, show_default=True)
@_user_errors
def tokenize(data_dir, out, config, vocab, label, n_workers) -> None:
    """Fit the vocabulary and encode DATA_DIR into token shards in --out."""
    _emit(api.tokenize(data_dir, out, n_workers=n_workers, config=config, vocab=vocab,
                       cuts=label))


@cli.command()
@click.argument("tok_dir", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Run name: the run is written to RUNS_ROOT/NAME.")
@click.option("--model-size", default="small", show_default=True)
@click.option("--config", type=click.Path(path_type=Path), default=None,
              help="Pretraining YAML of overrides, on top of configs/pretrain.yaml and the size's "
                   "recipe configs/train/<size>.yaml (set only the keys to change).")
@click.option("--max-steps", type=int, default=None)
@click.option("--token-budget", type=int, default=None)
@click.option("--runs-root", type=click.Path(path_type=Path), default=Path("runs"),
              show_default=True)
@click.option("--resume/--no-resume", default=None,
              help="Resume from the run's last checkpoint (default: when one exists).")
@_user_errors(modules=("pragmatiq.train.loop",))  # its TrainingOutOfMemoryError says what to change
def pretrain(tok_dir, name, model_size, config, max_steps, token_budget, runs_root,
             resume) -> None:
    """Pretrain a model on token shards (works under torchrun for several processes)."""
    from pragmatiq.train import load_pretrain_config

    base = load_pretrain_config(model_size, config)
    overrides = {k: v for k, v in {"max_steps": max_steps, "token_budget": token_budget}.items()
                 if v is not None}
    run = api.pretrain(tok_dir, name, model_size=model_size, config={**_as_dict(base), **overrides},
                       runs_root=runs_root, resume="auto" if resume is None else resume)
    if int(os.environ.get("RANK", 0)) == 0:  # once under torchrun
        _emit({"run": str(run)})


@cli.command()
@click.argument("tok_dir", type=click.Path(path_type=Path))
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True)
@click.option("--label", type=click.Path(path_type=Path), required=True,
              help="Label table, e.g. DATA/labels/default_12m.parquet.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Raw dataset (default: the one recorded in TOK_DIR's manifest).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--folds", type=click.IntRange(min=1), default=1, show_default=True,
              help="1: one seeded 70/30 split; k > 1: stratified k-fold cross-validation (mean±std).")
@_user_errors
def probe(tok_dir, run_dir, label, data_dir, seed, device, folds) -> None:
    """Probe a run's embeddings on a label table against count and aggregate baselines."""
    from pragmatiq.eval import format_probe_table

    if data_dir is None:
        data_dir = _data_dir_of(tok_dir)
    result = api.probe(data_dir, run_dir, label, tok_dir=tok_dir, seed=seed, device=device, folds=folds)
    click.echo(format_probe_table(result), err=True)
    _emit(result)


def _data_dir_of(tok_dir: Path) -> Path:
    manifest = Path(tok_dir) / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found: is {tok_dir} a token directory?")
    data = json.loads(manifest.read_text()).get("data_dir")
    if not data:
        raise ValueError(f"{manifest} does not record its data directory: pass --data DIR")
    return Path(data)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("quickstart"),
              show_default=True)
@click.option("--n-users", type=POSITIVE, default=2000, show_default=True)
@click.option("--max-steps", type=int, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-workers", type=POSITIVE, default=2, show_default=True)
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Export the run and answer the tutorial's request through a real Triton server.")
@_user_errors
def quickstart(out, n_users, max_steps, seed, n_workers, serve) -> None:
    """Synthetic bank -> validate -> tokenize -> pretrain nano -> probes -> export -> served request."""
    _emit(api.quickstart(out, n_users=n_users, max_steps=max_steps, seed=seed,
                         n_workers=n_workers, serve=serve))


@cli.command()
@click.option("--repo", type=click.Path(path_type=Path), default=None,
              help="Model repository (from pragmatiq-export); with --sagemaker, an extracted model.tar.gz.")
@click.option("--http-port", type=PORT, default=8000, show_default=True)
@click.option("--grpc-port", type=PORT, default=8001, show_default=True)
@click.option("--sagemaker", is_flag=True,
              help="Serve Triton's SageMaker frontend (/ping, /invocations) instead. As in SageMaker's Triton "
                   "image, SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE and SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE size "
                   "the python backend's shared memory (default 16 MiB, growing by 1 MiB).")
@click.option("--multi-model", is_flag=True, help="With --sagemaker: the multi-model API (/models load/invoke/unload).")
@click.option("--port", "sagemaker_port", type=PORT, default=8080, show_default=True,
              help="With --sagemaker: the port (it binds every interface).")
@click.option("--default-model", default="pragmatiq_embedder", show_default=True,
              envvar="SAGEMAKER_TRITON_DEFAULT_MODEL_NAME", show_envvar=True,
              help="With --sagemaker: the model /invocations runs.")
@_user_errors(extra=(RuntimeError,))
def serve(repo, http_port, grpc_port, sagemaker, multi_model, sagemaker_port, default_model) -> None:
    """Run a real Triton server until Ctrl-C or SIGTERM (loopback HTTP and gRPC by default)."""
    from pragmatiq.serve.server import run_forever

    if multi_model and not sagemaker:
        raise ValueError("--multi-model is the SageMaker multi-model API: add --sagemaker")
    if repo is None and not multi_model:
        raise ValueError("--repo DIR is required (a model repository from pragmatiq-export)")
    env = {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": default_model} if sagemaker and not multi_model else {}
    server = api.serve(None if multi_model else repo, http_port=None if sagemaker else http_port,
                       grpc_port=None if sagemaker else grpc_port,
                       sagemaker_port=sagemaker_port if sagemaker else None, multi_model=multi_model, env=env)
    sys.exit(run_forever(server, log=lambda msg: click.echo(msg, err=True)))


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--run", "--run-dir", "run_dir", type=click.Path(path_type=Path), required=True,
              help="The trained run (under torchrun write --run-dir: torchrun claims --run).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("embeddings.parquet"), show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (under torchrun: cuda).")
@click.option("--token-budget", type=POSITIVE, default=32768, show_default=True)
@click.option("--label", type=click.Path(path_type=Path), default=None,
              help="Label table with eval_ts: cut each user's history before it.")
@click.option("--n-workers", type=POSITIVE, default=1, show_default=True, help="Tokenizer workers (raw data only).")
@_user_errors
def embed(src, run_dir, out, device, token_budget, label, n_workers) -> None:
    """Embed every user of SRC (data or token directory) into a parquet of user_id + embedding."""
    result = api.embed(src, run_dir, out, device=device, token_budget=token_budget, label=label,
                       n_workers=n_workers)
    if int(os.environ.get("RANK", 0)) == 0:
        _emit(result)


@cli.group()
def bench() -> None:
    """Benchmarks of a trained run."""


@bench.command("parity")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True)
@click.option("--variants", default="onnx,torchscript", show_default=True,
              help="Variants beside the native model (onnx, torchscript, pt2).")
@click.option("--events", "events_per_user", type=POSITIVE, default=100, show_default=True)
@click.option("--repeats", type=POSITIVE, default=20, show_default=True)
@click.option("--threads", type=POSITIVE, default=1, show_default=True)
@_user_errors
def bench_parity(run_dir, variants, events_per_user, repeats, threads) -> None:
    """Every available variant on the same random ragged batches, one table."""
    from pragmatiq.export.bench import format_rows

    kinds = tuple(v.strip() for v in variants.split(",") if v.strip())
    rows = api.bench_parity(run_dir, variants=kinds, events_per_user=events_per_user, repeats=repeats,
                            threads=threads, log=lambda msg: click.echo(msg, err=True))
    click.echo(format_rows(rows), err=True)
    _emit(rows)


def _register_optional_groups() -> None:
    from pragmatiq.serve.sagemaker.cli import sagemaker_cli

    cli.add_command(sagemaker_cli, "sagemaker")


_register_optional_groups()


def main() -> None:
    cli()


def export_main() -> None:
    from pragmatiq.export.cli import export_cli

    export_cli()


if __name__ == "__main__":
    main()
