"""`pragmatiq-export` targets: a Triton model repository, or one standalone encoder variant.

Everything is built in a temporary directory beside the output, parity-checked against the
native model, and only then moved into place, so a failed export never leaves a half-written
repository. Each output carries `parity.json`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from pragmatiq.export.parity import measure, random_batches
from pragmatiq.export.runners import make_runner
from pragmatiq.export.variants import EXPORTERS
from pragmatiq.triton_models import configs

RUN_FILES = ("model.safetensors", "model.json", "vocab.json")
TRITON_VARIANTS = ("onnx", "tensorrt")
STANDALONE_TARGETS = tuple(EXPORTERS)  # onnx, torchscript, pt2
TOLERANCE = {"onnx": 1e-4, "torchscript": 1e-4, "pt2": 1e-4}


class ExportError(RuntimeError):
    """The run is unusable or a variant failed its parity check; nothing was written."""


def check_run(run: str | Path) -> Path:
    """`run` if it is a complete, consistent trained run; raises naming what is missing or wrong."""
    run = Path(run)
    missing = [f for f in RUN_FILES if not (run / f).is_file()]
    if missing:
        raise ExportError(f"{run}: not a trained run ({', '.join(missing)} missing); pass the directory"
                          " `pragmatiq pretrain` wrote (runs/<name>)")
    from pragmatiq.zoo.io import check_model_dir, check_run_vocab

    # damaged or mismatched files (truncated weights, invalid model.json, weights of another size,
    # a vocab.json of another tokenization) raise a ValueError naming the file: refused up front,
    # as the parity check's random ids would pass where real requests fail
    config = check_model_dir(run)
    check_run_vocab(run / "vocab.json", config, run)
    if config.d_text:
        raise ExportError(f"{run}: a Nemotron-variant run (its text sentinels read vectors of a frozen text "
                          "encoder) cannot be exported or served yet: the serving path does not run the text "
                          "encoder. Embed its users offline with `pragmatiq embed`")
    return run


def _model_py(module: str, cls: str = "TritonPythonModel") -> str:
    alias = "" if cls == "TritonPythonModel" else " as TritonPythonModel"
    return (f'"""Triton python model: see {module}."""\n\n'
            f"from {module} import {cls}{alias}  # noqa: F401\n")


def _copy_run(run: Path, dst: Path, names=("model.safetensors", "model.json")) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(run / name, dst / name)


def _write_model(repo: Path, name: str, config: str, model_py: str | None) -> Path:
    version = repo / name / "1"
    version.mkdir(parents=True, exist_ok=True)
    (repo / name / "config.pbtxt").write_text(config)
    if model_py is not None:
        (version / "model.py").write_text(model_py)
    return version


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not empty; pass --force to replace it")


def _replace(tmp: Path, out: Path, overwrite: bool) -> None:
    _check_out(out, overwrite)  # again: it may have appeared while we were building
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    tmp.rename(out)


def _parity_batches(ref) -> list:
    return random_batches(ref.model.config.vocab_size, n=6, seed=0)


def _build_variant(kind: str, ref, dst: Path, batches) -> dict:
    """Export `kind` of the reference model into dst and measure it; raises ExportError on failure."""
    EXPORTERS[kind](ref.model, dst)
    result = measure(kind, ref, make_runner(kind, dst), batches, max_abs=TOLERANCE[kind])
    if not result.passed:
        raise ExportError(f"{kind} variant failed parity: max |Δ| {result.max_abs:.3g} > {TOLERANCE[kind]:g}"
                          f" over {result.batches} batches; nothing was written")
    return result.to_dict()


def tensorrt_status() -> dict:
    from pragmatiq._optional import available

    if not available("tensorrt"):
        return {"variant": "tensorrt", "skipped": "TensorRT is not installed: pip install 'pragmatiq[gpu]' on a"
                " CUDA machine (engines are built from the ONNX variant)"}
    return {"variant": "tensorrt", "skipped": "TensorRT engine building is not implemented in this release"}


def export_triton(run: str | Path, out: str | Path = "model_repository", *, variants=(), device: str = "cpu",
                  instances: int = 1, precision: str = "fp32", dynamic_batching: bool = True,
                  overwrite: bool = False, progress=print) -> Path:
    """Write a self-contained Triton model repository for `run` (see pragmatiq.triton_models.configs).

    Args:
        variants: extra encoder variants to build and serve beside the native one ("onnx", "tensorrt").
        device: "cpu" or "cuda": the encoder instances' kind.
        instances: encoder instances (each its own process).
        precision: "fp32", or "bf16" for the native encoder on GPU.
        dynamic_batching: let Triton hand concurrent requests to one encoder call (packed together).
    """
    run, out = check_run(run), Path(out)
    bad = [v for v in variants if v not in TRITON_VARIANTS]
    if bad:
        raise ExportError(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(TRITON_VARIANTS)}")
    _check_out(out, overwrite)
    ref = make_runner("torch", run)
    dim = ref.model.config.d_model
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        enc_params = {"precision": precision, "num_threads": "0"}
        v = _write_model(tmp, configs.TOKENIZER, configs.tokenizer_config(),
                         _model_py("pragmatiq.triton_models.tokenizer_model"))
        shutil.copy2(run / "vocab.json", v / "vocab.json")
        enc_config = configs.encoder_config(dim=dim, device=device, instances=instances, params=enc_params,
                                            dynamic_batching=dynamic_batching)
        v = _write_model(tmp, configs.ENCODER, enc_config,
                         _model_py("pragmatiq.triton_models.encoder_model"))
        _copy_run(run, v)
        _write_model(tmp, configs.EMBEDDER, configs.ensemble_config(dim=dim), None)
        parity = {"run": str(run.resolve()), "reference": "torch (native varlen forward)", "variants": []}
        batches = _parity_batches(ref)
        for kind in variants:
            if kind == "tensorrt":
                status = tensorrt_status()
                progress(f"tensorrt: skipped: {status['skipped']}")
                parity["variants"].append(status)
                continue
            name = f"{configs.ENCODER}_{kind}"
            v = _write_model(tmp, name, configs.encoder_config(name, dim=dim, device=device, instances=instances,
                                                               params=enc_params, dynamic_batching=dynamic_batching),
                             _model_py("pragmatiq.triton_models.encoder_model", "OnnxEncoderModel"))
            progress(f"{kind}: exporting and checking parity")
            parity["variants"].append(_build_variant(kind, ref, v, batches))
            (v / "model.json").write_text((run / "model.json").read_text())
            _write_model(tmp, f"{configs.EMBEDDER}_{kind}", configs.ensemble_config(
                f"{configs.EMBEDDER}_{kind}", dim=dim, encoder=name), None)
        (tmp / "parity.json").write_text(json.dumps(parity, indent=2) + "\n")
        _replace(tmp, out, overwrite)
        progress(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir() if p.is_dir()))}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def export_variant(run: str | Path, target: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """`--target onnx|torchscript|pt2`: the encoder file, model.json, vocab.json and parity.json."""
    run, out = check_run(run), Path(out)
    if target not in STANDALONE_TARGETS:
        raise ExportError(f"unknown target {target!r}; choose from triton, sagemaker, {', '.join(STANDALONE_TARGETS)}")
    _check_out(out, overwrite)
    ref = make_runner("torch", run)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        result = _build_variant(target, ref, tmp, _parity_batches(ref))
        for name in ("model.json", "vocab.json"):
            shutil.copy2(run / name, tmp / name)
        (tmp / "parity.json").write_text(json.dumps(
            {"run": str(run.resolve()), "reference": "torch (native varlen forward)", "variants": [result]},
            indent=2) + "\n")
        _replace(tmp, out, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
