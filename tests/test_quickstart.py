"""The quickstart end to end on a small book: every stage runs, probes report, and the exported
run answers the tutorial's request through a real Triton server with in-process numbers."""

from __future__ import annotations

import pytest

from pragmatiq import api


@pytest.mark.slow
@pytest.mark.triton
def test_quickstart_small_book_end_to_end(tmp_path):
    pytest.importorskip("pytriton")
    result = api.quickstart(tmp_path / "qs", n_users=150, max_steps=3, n_workers=1, progress=False)
    assert set(result["timings_s"]) == {"synthesize", "validate", "tokenize", "pretrain", "probe", "export", "serve"}
    assert set(result["peak_rss_mb"]) == set(result["timings_s"])
    assert all(m["self"] > 0 for m in result["peak_rss_mb"].values())
    assert set(result["probes"]) == {"default_12m", "churn_6m", "ltv_positive"}
    served = result["served"]
    assert served["tutorial"]["shape"] == [1, 64] and served["tutorial"]["max_abs_vs_in_process"] <= 1e-5
    assert served["book_users"]["shape"] == [8, 64] and served["book_users"]["max_abs_vs_in_process"] <= 1e-5
    assert (tmp_path / "qs/model_repository/pragmatiq_embedder/config.pbtxt").is_file()
