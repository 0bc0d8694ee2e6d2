"""The training benchmark's FLOP accounting and its per-size mode (the GPU rows), run on CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str, path: Path):
    """A benchmark script as a module, with benchmarks/ on sys.path only while it imports: left
    there, its kernels.py would shadow other packages' `kernels` (transformers looks for one)."""
    saved = list(sys.path)
    try:
        sys.path.insert(0, str(BENCH))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


_flops = _load("pragmatiq_bench_flops", BENCH / "_flops.py")
bf16_peak_tflops, encoder_flops, train_step_flops = (_flops.bf16_peak_tflops, _flops.encoder_flops,
                                                     _flops.train_step_flops)
steady_rates = _load("pragmatiq_bench_train", BENCH / "train.py").steady_rates


def test_encoder_flops_by_hand():
    # 2 layers, d 4, segments of 1 and 3 rows: 2 * (24 * 4 * 16 + 4 * 4 * (1 + 9))
    assert encoder_flops(2, 4, np.array([1, 3])) == 2 * (24 * 4 * 16 + 4 * 4 * 10)


def test_train_step_flops_is_three_forwards_plus_the_heads():
    from types import SimpleNamespace

    cfg = SimpleNamespace(d_model=4, n_layers_event=1, n_layers_profile=1, n_layers_history=1)
    cu = lambda *x: torch.tensor(x, dtype=torch.int32)  # noqa: E731
    # one user: 2 events of 3 and 1 tokens, 2 profile tokens
    b = SimpleNamespace(cu_tokens=cu(0, 3, 4), cu_profile=cu(0, 2), cu_events=cu(0, 2), n_events=2, n_users=1)
    encoders = (encoder_flops(1, 4, np.array([4, 2])) + encoder_flops(1, 4, np.array([3]))
                + encoder_flops(1, 4, np.array([3])) + 2 * 2 * (6 * 4 + 16))
    assert train_step_flops(cfg, b, masked=5, vocab_size=10, user_head=False) == 3 * (encoders + 2 * 5 * 10 * 4)
    assert train_step_flops(cfg, b, 5, 10, True) == 3 * (encoders + 2 * 5 * 10 * 4 + 2 * 1 * 10 * 4)


def test_peak_by_device_name():
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bf16_peak_tflops("NVIDIA H200") == 989.4
    assert bf16_peak_tflops("Tesla T4") is None


def test_steady_rates_leave_the_warmup_steps_out():
    # 3 steps of 100 tokens: 10 s (start-up), then 1 s each; FLOPs 7 per step
    train_s, tokens = [10.0, 11.0, 12.0], [100, 200, 300]
    rows = [{"step": i + 1, "train_s": t, "tokens_per_s": n / t} for i, (t, n) in enumerate(zip(train_s, tokens))]
    got = steady_rates(rows, [7.0] * 3, warmup=1)
    assert got["steps"] == 2 and got["tokens_per_s"] == pytest.approx(100.0) and got["flop_per_s"] == pytest.approx(7.0)
    assert steady_rates(rows, [7.0] * 3, warmup=0)["tokens_per_s"] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="--warmup-steps must be below --steps"):
        steady_rates(rows, [7.0] * 3, warmup=3)


@pytest.mark.slow
def test_per_size_mode_counts_the_batches_it_trained_on(tmp_path):
    """`--sizes` on CPU: the batches it rebuilds for the FLOP count are the run's own (it checks
    each step's tokens against metrics.jsonl and fails otherwise), and MFU follows the peak given."""
    out = subprocess.run([sys.executable, str(BENCH / "train.py"), "--sizes", "nano", "--steps", "4",
                          "--warmup-steps", "1", "--n-users", "30", "--token-budget", "2048", "--peak-tflops", "1",
                          "--results-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    [res] = json.loads((tmp_path / "train-sizes-cpu.json").read_text())["results"]
    assert res["size"] == "nano" and res["steps"] == 3 and res["tokens_per_s"] > 0
    assert res["mfu"] == pytest.approx(res["flop_per_s"] / 1e12)
    assert "nano" in out.stdout and "MFU" in out.stdout
