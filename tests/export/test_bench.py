"""`pragmatiq bench parity`: one row per variant from the same batches; unbuildable ones say why."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pragmatiq import api
from pragmatiq.cli import cli
from pragmatiq.export.bench import format_rows


def test_rows_for_native_torchscript_and_tensorrt(tiny_run):
    rows = api.bench_parity(tiny_run, variants=("torchscript", "tensorrt"), events_per_user=10, repeats=2,
                            log=lambda m: None)
    torch_row, ts, trt = rows
    assert torch_row["variant"] == "torch" and torch_row["max_abs"] == 0.0
    assert ts["variant"] == "torchscript" and ts["max_abs"] <= 1e-4 and ts["min_cosine"] > 0.9999
    for row in (torch_row, ts):
        assert 0 < row["p50_ms_1"] <= row["p99_ms_1"] and row["users_per_s"] > 0
    assert "TensorRT" in trt["skipped"]
    table = format_rows(rows)
    assert "torchscript" in table and "skipped" in table


def test_unknown_variant_is_a_user_error(tiny_run):
    with pytest.raises(ValueError, match="unknown variant.*fp8"):
        api.bench_parity(tiny_run, variants=("fp8",))
    result = CliRunner().invoke(cli, ["bench", "parity", "--run", str(tiny_run), "--variants", "fp8"])
    assert result.exit_code == 2 and "unknown variant" in result.output
