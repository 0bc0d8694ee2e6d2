"""End-to-end pretraining: run layout, bit-exact resume, SageMaker entry point, torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from pragmatiq import api
from pragmatiq.zoo import load_model

from .conftest import TINY


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_layout(small_tok, tmp_path):
    run = api.pretrain(small_tok, "r", model_size="nano", config={**TINY, "max_steps": 5},
                       runs_root=tmp_path, progress=False)
    for name in ("config.yaml", "vocab.json", "model.safetensors", "model.json", "metrics.jsonl",
                 "meta.json", "checkpoints/last.pt", "checkpoints/step-5.pt"):
        assert (run / name).exists(), name
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # nano's recipe trains the user-view term too (user_loss_weight 1), logged apart from the loss
    assert {"step", "loss", "user_loss", "mlm_acc", "tokens_per_s", "lr", "grad_norm", "heldout_loss"} <= set(row)
    model = load_model(run)
    assert model.config.d_model == 64 and model.config.user_head


@pytest.mark.slow
def test_resume_is_bit_exact(small_tok, tmp_path):
    cfg = {**TINY, "max_steps": 20, "event_workers": 2}  # events in two parts, each with its dropout stream
    straight = api.pretrain(small_tok, "a", model_size="nano", config=cfg, runs_root=tmp_path, progress=False)
    api.pretrain(small_tok, "b", model_size="nano", config={**cfg, "stop_after": 10}, runs_root=tmp_path,
                 progress=False)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    resumed = api.pretrain(small_tok, "b", model_size="nano", config=cfg, runs_root=tmp_path, progress=False)
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert _losses(straight) == _losses(resumed)


def test_two_threads_are_bitwise_reproducible(tmp_path):
    """Index-accumulating backward kernels race between CPU threads unless torch's deterministic
    kernels are on: pretrain turns them on for the run, then restores the caller's setting.
    (Without them, two runs of this book ended with different weights.)"""
    import torch

    api.synthesize({"n_users": 40, "seed": 5}, out=tmp_path / "data", progress=False)
    api.tokenize(tmp_path / "data", tmp_path / "tok", progress=False)
    threads = torch.get_num_threads()
    cfg = {**TINY, "max_steps": 4, "num_threads": 2, "token_budget": 8192, "eval_every": 0, "event_workers": 2}
    try:
        runs = [api.pretrain(tmp_path / "tok", f"t{i}", model_size="nano", config=cfg, runs_root=tmp_path,
                             progress=False) for i in range(2)]
    finally:
        torch.set_num_threads(threads)
    a, b = (load_file(r / "model.safetensors") for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.are_deterministic_algorithms_enabled()


def test_refuses_shards_with_another_vocabulary(small_tok, tmp_path):
    api.pretrain(small_tok, "r", model_size="nano", config={**TINY, "max_steps": 2, "stop_after": 1},
                 runs_root=tmp_path, progress=False)
    vocab = json.loads((small_tok / "vocab.json").read_text())
    other = tmp_path / "other_tok"
    import shutil

    shutil.copytree(small_tok, other)
    import torch

    ck = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)
    ck["vocab_sha256"] = "f" * 64
    torch.save(ck, tmp_path / "r" / "checkpoints" / "last.pt")
    with pytest.raises(ValueError, match="vocabulary"):
        api.pretrain(other, "r", model_size="nano", config={**TINY, "max_steps": 2}, runs_root=tmp_path,
                     progress=False)
    assert vocab


TRAIN_PY = '''
import os
from pragmatiq import api

data = os.environ["SM_CHANNEL_DATA"]
out = os.environ["SM_MODEL_DIR"]

api.tokenize(data, os.environ["TOK"], n_workers=2)
api.pretrain(os.environ["TOK"], "run", model_size="nano",
             config={"max_steps": 3, "token_budget": 4096}, runs_root=out)
'''


@pytest.mark.slow
def test_sagemaker_entry_point(small_tok, tmp_path):
    """The tutorial's src/train.py (sizes shrunk), with SM_* pointing at local directories."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN_PY)
    data = Path(json.loads((small_tok / "manifest.json").read_text())["data_dir"])
    env = {**os.environ, "SM_CHANNEL_DATA": str(data), "SM_MODEL_DIR": str(tmp_path / "model"),
           "TOK": str(tmp_path / "tok"), "PRAGMATIQ_CHECKPOINT_DIR": str(tmp_path / "ckpt")}
    subprocess.run([sys.executable, str(script)], env=env, check=True, capture_output=True, timeout=300)
    run = tmp_path / "model" / "run"
    assert (run / "model.safetensors").exists() and (run / "vocab.json").exists()
    assert (tmp_path / "ckpt" / "last.pt").exists()


@pytest.mark.slow
def test_torchrun_two_processes_match_one(small_tok, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    # one part of events per process, as each rank has one core here: Muon's orthogonalization
    # turns fp32 rounding differences into visible ones within three steps
    cfg = {**TINY, "max_steps": 3, "model": {"dropout": 0.0}, "event_workers": 1}
    code = ("import json,sys; from pragmatiq import api; "
            "api.pretrain(sys.argv[1], sys.argv[2], model_size='nano', config=json.loads(sys.argv[3]), "
            "runs_root=sys.argv[4], progress=False)")
    script = tmp_path / "run.py"
    script.write_text(code)
    subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29517", str(script),
                    str(small_tok), "ddp", json.dumps(cfg), str(tmp_path)],
                   check=True, capture_output=True, timeout=400)
    api.pretrain(small_tok, "single", model_size="nano", config={**cfg, "grad_accum": 2},
                 runs_root=tmp_path, progress=False)
    a = load_file(tmp_path / "ddp" / "model.safetensors")
    b = load_file(tmp_path / "single" / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-4, k
