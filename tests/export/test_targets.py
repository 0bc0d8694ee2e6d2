"""pragmatiq-export: the Triton repository, standalone variants and SageMaker archives, each
parity-checked with the real runtimes (onnxruntime, torch.jit, AOTInductor)."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from pragmatiq import api
from pragmatiq.export.cli import export_cli
from pragmatiq.export.parity import random_batches
from pragmatiq.export.runners import make_runner
from pragmatiq.export.targets import ExportError

MODELS = {"pragmatiq_tokenizer", "pragmatiq_encoder", "pragmatiq_embedder", "pragmatiq_encoder_onnx",
          "pragmatiq_embedder_onnx"}


def test_triton_repository_is_self_contained(triton_repo):
    assert {p.name for p in triton_repo.iterdir() if p.is_dir()} == MODELS
    assert (triton_repo / "pragmatiq_tokenizer/1/vocab.json").is_file()
    # (a served repository gains __pycache__ once Triton's python backend imports model.py: the
    # session's Triton tests share this repository and may run first)
    assert {p.name for p in (triton_repo / "pragmatiq_encoder/1").iterdir()} - {"__pycache__"} == {
        "model.py", "model.safetensors", "model.json"}
    assert (triton_repo / "pragmatiq_encoder_onnx/1/model.onnx").is_file()
    assert not list(triton_repo.rglob("*.pt"))  # no pickles
    parity = json.loads((triton_repo / "parity.json").read_text())
    onnx, trt = parity["variants"]
    assert onnx["variant"] == "onnx" and onnx["passed"] and onnx["max_abs"] <= 1e-4 and onnx["batches"] >= 5
    assert trt["variant"] == "tensorrt" and "TensorRT is not installed" in trt["skipped"]
    assert not [p for p in triton_repo.parent.iterdir() if p.name.startswith(".")]  # temp dir gone


def test_served_onnx_file_matches_native(triton_repo, tiny_run):
    ref, onnx = make_runner("torch", tiny_run), make_runner("onnx", triton_repo / "pragmatiq_encoder_onnx/1")
    for batch in random_batches(ref.model.config.vocab_size, n=3, seed=5):
        np.testing.assert_allclose(onnx(batch), ref(batch), atol=1e-4)


@pytest.mark.parametrize("target", ["onnx", "torchscript", pytest.param("pt2", marks=pytest.mark.slow)])
def test_standalone_targets_pass_parity(target, tiny_run, tmp_path):
    result = api.export(tiny_run, target, tmp_path / target)
    (variant,) = result["parity"]["variants"]
    assert variant["variant"] == target and variant["passed"] and variant["max_abs"] <= 1e-4
    assert {"model.json", "vocab.json", "parity.json"} <= {p.name for p in (tmp_path / target).iterdir()}
    ref, runner = make_runner("torch", tiny_run), make_runner(target, tmp_path / target)
    batch = random_batches(ref.model.config.vocab_size, n=2, seed=3)[1]
    np.testing.assert_allclose(runner(batch), ref(batch), atol=1e-4)


def test_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(ExportError, match="not a trained run .*model.safetensors"):
        api.export(tmp_path, "triton", tmp_path / "out")


@pytest.mark.parametrize("damage, message", [
    ("weights", r"model\.safetensors is damaged \(truncated, empty or not a safetensors file"),
    ("model.json", r"model\.json is damaged: not valid JSON"),
    ("shapes", r"model\.safetensors does not match .*model\.json: .*weights \(\d+, 64\) vs \(\d+, 32\)"),
    ("vocab", r"vocab\.json does not belong to the model in .*: it has 8 token ids, the model"),
])
def test_refuses_a_damaged_or_mismatched_run_up_front(tiny_run, tmp_path, damage, message):
    """A truncated or inconsistent run is refused before anything is built: the parity check's random
    ids would pass a run whose vocabulary does not fit its model, and real requests would fail."""
    import shutil

    from pragmatiq.tokenizer.vocab import Vocab

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    if damage == "weights":
        data = (run / "model.safetensors").read_bytes()
        (run / "model.safetensors").write_bytes(data[:len(data) // 2])
    elif damage == "model.json":
        (run / "model.json").write_text((run / "model.json").read_text()[:50])
    elif damage == "shapes":
        (run / "model.json").write_text(json.dumps(json.loads((run / "model.json").read_text()) | {"d_model": 32}))
    else:  # a vocabulary of another tokenization
        Vocab.build([("mcc", "categorical", ["5411", "5812"])], None, 0, {}).save(run / "vocab.json")
    for target in ("triton", "torchscript"):
        with pytest.raises(ValueError, match=message):
            api.export(run, target, tmp_path / target, progress=lambda m: None)
        assert not (tmp_path / target).exists()
    result = CliRunner().invoke(export_cli, ["--run", str(run), "--target", "onnx", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output


def test_refuses_to_overwrite_without_force(tiny_run, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists and is not empty; pass --force"):
        api.export(tiny_run, "triton", out, progress=lambda m: None)
    assert (out / "keep.txt").read_text() == "mine"
    api.export(tiny_run, "triton", out, overwrite=True, progress=lambda m: None)
    assert not (out / "keep.txt").exists() and (out / "pragmatiq_embedder/config.pbtxt").is_file()


def test_unknown_variant_is_refused(tiny_run, tmp_path):
    with pytest.raises(ExportError, match="unknown variant.*fp8"):
        api.export(tiny_run, "triton", tmp_path / "r", variants=("fp8",))


def test_sagemaker_archives(tiny_run, tmp_path):
    api.export(tiny_run, "sagemaker", tmp_path / "sm", name="churn-v1", progress=lambda m: None)
    single = tarfile.open(tmp_path / "sm/model.tar.gz").getnames()
    assert "config.pbtxt" not in single  # no root config: the model directories are the root
    assert {n.split("/")[0] for n in single} == {"pragmatiq_tokenizer", "pragmatiq_encoder", "pragmatiq_embedder"}
    assert "pragmatiq_encoder/1/model.safetensors" in single
    multi = tarfile.open(tmp_path / "sm/multi-model/churn-v1.tar.gz").getnames()
    assert sorted(multi) == sorted(single)
    assert json.loads((tmp_path / "sm/parity.json").read_text())["variants"] == []
    # the Triton settings reach the archived repository
    api.export(tiny_run, "sagemaker", tmp_path / "sm3", precision="bf16", dynamic_batching=False,
               progress=lambda m: None)
    with tarfile.open(tmp_path / "sm3/model.tar.gz") as tar:
        config = tar.extractfile("pragmatiq_encoder/config.pbtxt").read().decode()
    assert 'string_value: "bf16"' in config and "dynamic_batching" not in config
    assert "dynamic_batching" in tarfile.open(tmp_path / "sm/model.tar.gz").extractfile(
        "pragmatiq_encoder/config.pbtxt").read().decode()
    with pytest.raises(ExportError, match="--name 'a b'"):
        api.export(tiny_run, "sagemaker", tmp_path / "sm2", name="a b")


def test_cli_reports_user_errors_in_one_line(tmp_path):
    result = CliRunner().invoke(export_cli, ["--run", str(tmp_path), "--target", "onnx", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "error:" in result.output and "not a trained run" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(export_cli, ["--run", str(tmp_path), "--target", "tensorrt"])
    assert result.exit_code == 2 and "--variants tensorrt" in result.output


def test_multi_model_archive_holds_one_ensemble(triton_repo, tmp_path):
    from pragmatiq.export.sagemaker import MULTI_MODEL_MODELS, pack_repository

    names = tarfile.open(pack_repository(triton_repo, tmp_path / "m.tar.gz", MULTI_MODEL_MODELS)).getnames()
    assert {n.split("/")[0] for n in names} == {"pragmatiq_tokenizer", "pragmatiq_encoder", "pragmatiq_embedder"}
    everything = tarfile.open(pack_repository(triton_repo, tmp_path / "all.tar.gz")).getnames()
    assert {n.split("/")[0] for n in everything} == MODELS and "parity.json" not in everything
