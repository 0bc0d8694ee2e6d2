"""Parity helpers: the random ragged batches and the comparison."""

from __future__ import annotations

import numpy as np
import pytest

from pragmatiq.export.parity import compare, measure, random_batches


def test_batches_are_ragged_seeded_and_start_with_one_user_one_event():
    batches = random_batches(300, n=5, seed=7)
    assert len(batches) == 5
    first = batches[0]
    assert first.cu_events.tolist() == [0, 1] and len(first.user_ids) == 1
    users = [len(b.user_ids) for b in batches[1:]]
    assert all(u >= 2 for u in users)
    for b in batches:
        assert int(b.key_ids.max()) < 300 and int(b.key_ids.min()) >= 5
        assert b.cu_tokens[-1] == b.key_ids.shape[0] and b.cu_events[-1] == b.event_tau.shape[0]
    again = random_batches(300, n=5, seed=7)
    assert all(np.array_equal(a.key_ids, b.key_ids) for a, b in zip(batches, again))


def test_compare_reports_worst_difference_and_cosine():
    a = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    assert compare(a, a) == (0.0, 1.0)
    b = np.array([[1.0, 0.5], [0.0, 2.0]], np.float32)
    d, cos = compare(a, b)
    assert d == 0.5 and abs(cos - 1 / np.sqrt(1.25)) < 1e-6
    assert compare(a, a[:1]) == (float("inf"), -1.0)


def test_measure_fails_beyond_tolerance():
    batches = random_batches(100, n=2, seed=0)
    ref = lambda b: np.ones((len(b.user_ids), 4), np.float32)  # noqa: E731
    near = lambda b: ref(b) + 1e-6  # noqa: E731
    far = lambda b: ref(b) + 1e-2  # noqa: E731
    assert measure("near", ref, near, batches, max_abs=1e-4).passed
    result = measure("far", ref, far, batches, max_abs=1e-4)
    assert not result.passed and result.batches == 2 and abs(result.max_abs - 1e-2) < 1e-6


def test_onnx_providers_pin_the_gpu_and_never_fall_back_silently():
    from pragmatiq.export.runners import onnx_providers

    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu", both) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", both) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert onnx_providers("cuda", both)[0] == ("CUDAExecutionProvider", {"device_id": 0})
    with pytest.raises(RuntimeError, match="needs onnxruntime-gpu"):
        onnx_providers("cuda:0", ["CPUExecutionProvider"])  # the CPU-only wheel


def test_cpu_traced_variants_refuse_a_gpu(tmp_path):
    """TorchScript and pt2 exports are traced and compiled on the CPU (CPU devices in the graph)."""
    from pragmatiq.export.runners import ModuleRunner

    for kind in ("torchscript", "pt2"):
        with pytest.raises(ValueError, match=f"the {kind} variant is exported for the CPU"):
            ModuleRunner(tmp_path, kind, device="cuda:0")
