"""`pragmatiq-export`: compile a trained run into deployable artifacts, each parity-checked."""

from __future__ import annotations

from pathlib import Path

import click

from pragmatiq.cli_output import emit, one_line_warnings, user_errors
from pragmatiq.export.targets import ExportError

TARGETS = ["triton", "sagemaker", "onnx", "torchscript", "pt2", "tensorrt"]
DEFAULT_OUT = {"triton": "model_repository", "sagemaker": "sagemaker", "onnx": "export/onnx",
               "torchscript": "export/torchscript", "pt2": "export/pt2"}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--run", "run_dir", type=click.Path(path_type=Path), required=True,
              help="A trained run (runs/<name>: model.safetensors, model.json, vocab.json).")
@click.option("--target", required=True, type=click.Choice(TARGETS))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: model_repository for triton, sagemaker, export/<target>).")
@click.option("--variants", default="", help="triton/sagemaker: extra encoder variants, e.g. onnx,tensorrt.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where the served encoder runs (instance kind).")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True, help="Encoder instances.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="Native encoder precision (bf16 applies on GPU only).")
@click.option("--dynamic-batching/--no-dynamic-batching", default=True, show_default=True,
              help="Let Triton pack concurrent requests into one encoder call.")
@click.option("--name", default=None, help="sagemaker: the multi-model archive name (default: the run's name).")
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
@user_errors(extra=(ExportError,))
def export_cli(run_dir, target, out, variants, device, instances, precision, dynamic_batching, name, force) -> None:
    """Compile a trained run into deployable artifacts (each checked for parity with the native model)."""
    from pragmatiq import api

    one_line_warnings()
    if target == "tensorrt":
        raise ExportError("--target tensorrt: TensorRT engines are built with --target triton --variants tensorrt"
                          " on a CUDA machine with pip install 'pragmatiq[gpu]'")
    out = out or Path(DEFAULT_OUT[target])
    kinds = tuple(v.strip() for v in variants.split(",") if v.strip())
    result = api.export(run_dir, target, out, variants=kinds, device=device, instances=instances,
                        precision=precision, dynamic_batching=dynamic_batching, name=name, overwrite=force,
                        progress=lambda msg: click.echo(msg, err=True))
    emit(result)


def main() -> None:
    export_cli()
