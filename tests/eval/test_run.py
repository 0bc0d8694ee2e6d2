"""probe(): wiring (same users, same split for every feature set, cuts passed) and the table.

The end-to-end test with a real (tiny) run is in test_end_to_end.py; here the embedder is a stub
so these stay fast and independent of the tokenizer and zoo.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from pragmatiq.eval import format_probe_table, probe, read_label_table, resolve_data_dir
from pragmatiq.eval import run as R
from pragmatiq.eval.baselines import baseline_features


@pytest.fixture
def stub_embed(monkeypatch):
    """embed_users stand-in: per-source counts before the cut as a 4-d 'embedding', in reverse
    user order, missing one labeled user (as if they had no history)."""
    calls = []

    def fake(src, run_dir, *, cuts=None, **kw):
        calls.append({"src": src, "run_dir": run_dir, "cuts": cuts, "event_cache": kw.get("event_cache")})
        labels = pa.table({"user_id": list(cuts), "eval_ts": pa.array(list(cuts.values()), pa.int64())
                           .cast(pa.timestamp("us")), "label": [0] * len(cuts)})
        users, X = baseline_features(src, labels, "counts")
        users, X = users[::-1][1:], X[::-1][1:]
        return users, X.astype(np.float32)

    monkeypatch.setattr(R, "embed_users", fake)
    R._CACHE.clear()
    yield calls
    R._CACHE.clear()


def test_probe_rows_and_wiring(synth_book, stub_embed):
    label = synth_book / "labels/churn_6m.parquet"
    res = probe(synth_book, "RUN", label, seed=1, progress=False)
    assert stub_embed[0]["cuts"] == read_label_table(label).cuts()
    assert str(stub_embed[0]["src"]) == str(synth_book)
    assert res["task"] == "churn_6m"
    assert res["n_users"] == res["n_labeled"] - 1 and res["n_no_history"] == 1
    got = [(r["features"], r["model"]) for r in res["rows"]]
    sets = ("embedding", "counts", "aggregates", "embedding+aggregates")
    assert got == [(f, m) for f in sets for m in ("gbm", "logreg")]
    for r in res["rows"]:
        assert 0.0 <= r["roc_auc"] <= 1.0 and 0.0 <= r["pr_auc"] <= 1.0
    # the stub embedding IS the counts baseline, re-ordered: aligned rows give identical scores
    emb = {r["model"]: r["roc_auc"] for r in res["rows"] if r["features"] == "embedding"}
    cnt = {r["model"]: r["roc_auc"] for r in res["rows"] if r["features"] == "counts"}
    assert emb == pytest.approx(cnt)
    json.dumps(res)  # a plain, JSON-ready result
    # the combined set alone still computes both of its parts, and scores as within the full call
    alone = probe(synth_book, "RUN", label, seed=1, progress=False, feature_sets=("embedding+aggregates",))
    width = {r["features"]: r["n_features"] for r in res["rows"]}
    assert [r["n_features"] for r in alone["rows"]] == [width["embedding"] + width["aggregates"]] * 2
    assert alone["rows"] == [r for r in res["rows"] if r["features"] == "embedding+aggregates"]


def test_embeddings_reused_when_cuts_match(synth_book, stub_embed):
    """churn_6m and ltv_positive cut the same users at the same eval_ts: one embedding pass."""
    churn, ltv = synth_book / "labels/churn_6m.parquet", synth_book / "labels/ltv_positive.parquet"
    assert read_label_table(churn).cuts() == read_label_table(ltv).cuts()
    probe(synth_book, "RUN", churn, progress=False)
    probe(synth_book, "RUN", ltv, progress=False)
    assert len(stub_embed) == 1
    probe(synth_book, "RUN", synth_book / "labels/default_12m.parquet", progress=False)  # other cut
    assert len(stub_embed) == 2
    # ... which shares the first cut's encoded events
    assert stub_embed[1]["event_cache"] is stub_embed[0]["event_cache"] is not None
    probe(synth_book, "RUN", ltv, progress=False, cache=False)
    assert len(stub_embed) == 3 and stub_embed[2]["event_cache"] is True  # a cache for that call alone
    R.clear_probe_caches()
    probe(synth_book, "RUN", ltv, progress=False)
    assert stub_embed[3]["event_cache"] is not stub_embed[0]["event_cache"]


def test_baselines_reused_when_cuts_match(synth_book, stub_embed, monkeypatch):
    """churn_6m's counts and aggregates serve ltv_positive (same users, same cuts), row for row."""
    churn, ltv = synth_book / "labels/churn_6m.parquet", synth_book / "labels/ltv_positive.parquet"
    calls = []
    real = R.baseline_frame
    monkeypatch.setattr(R, "baseline_frame", lambda raw, labels, kind: calls.append(kind) or real(raw, labels, kind))
    probe(synth_book, "RUN", churn, progress=False)
    assert calls == ["counts", "aggregates"]
    cached = probe(synth_book, "RUN", ltv, progress=False)
    assert calls == ["counts", "aggregates"]
    fresh = probe(synth_book, "RUN", ltv, progress=False, cache=False)
    assert calls == ["counts", "aggregates"] * 2
    assert cached["rows"] == fresh["rows"]


def test_cross_validated_probe_uses_the_same_folds_for_every_feature_set(synth_book, stub_embed):
    label = synth_book / "labels/churn_6m.parquet"
    res = probe(synth_book, "RUN", label, seed=1, progress=False, folds=3)
    assert res["folds"] == 3 and res["n_test"] == res["n_users"]
    emb = {r["model"]: r["roc_auc_folds"] for r in res["rows"] if r["features"] == "embedding"}
    cnt = {r["model"]: r["roc_auc_folds"] for r in res["rows"] if r["features"] == "counts"}
    for m in emb:  # the stub embedding is the counts baseline: same folds, same scores
        assert emb[m] == pytest.approx(cnt[m])
    for r in res["rows"]:
        assert len(r["roc_auc_folds"]) == 3 and r["roc_auc_std"] >= 0
    lines = format_probe_table(res).splitlines()
    assert "±" in lines[2]
    json.dumps(res)
    with pytest.raises(ValueError, match="folds must be"):
        probe(synth_book, "RUN", label, progress=False, folds=0)


def test_baselines_only_without_a_run(synth_book):
    res = probe(synth_book, None, synth_book / "labels/ltv_positive.parquet",
                feature_sets=("counts", "aggregates"), progress=False)
    assert [r["features"] for r in res["rows"]] == ["counts", "counts", "aggregates", "aggregates"]
    assert res["n_users"] == res["n_labeled"]
    assert 0 < res["prevalence"] < 1


def test_format_table():
    res = {"task": "default_12m", "n_users": 1786, "prevalence": 0.0224,
           "rows": [{"features": "embedding", "model": "gbm", "roc_auc": 0.7123, "pr_auc": 0.081},
                    {"features": "counts", "model": "logreg", "roc_auc": math.nan, "pr_auc": math.nan}]}
    text = format_probe_table([res, res])
    lines = text.splitlines()
    assert lines[0].split() == ["task", "users", "prev", "features", "model", "ROC-AUC", "PR-AUC"]
    assert len(lines) == 2 + 4
    assert "default_12m" in lines[2] and "0.712" in lines[2] and "0.081" in lines[2]
    assert "n/a" in lines[3]


def test_resolve_data_dir(tmp_path, hand_book):
    assert resolve_data_dir(hand_book) == hand_book
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "manifest.json").write_text(json.dumps({"data_dir": str(hand_book)}))
    assert resolve_data_dir(tok) == hand_book
    assert resolve_data_dir(tmp_path, tok) == hand_book
    (tok / "manifest.json").write_text(json.dumps({"vocab_hash": "x"}))
    with pytest.raises(FileNotFoundError, match="manifest names one"):
        resolve_data_dir(tok)


def test_import_is_light():
    """`import pragmatiq.eval` pulls in neither torch nor the training code."""
    import subprocess
    import sys

    code = "import sys, pragmatiq.eval; print('torch' in sys.modules, 'pragmatiq.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_result_is_strict_json_when_held_out_is_one_class(tmp_path, monkeypatch):
    """A held-out split with one class reports None (not NaN) and the table prints n/a."""
    from datetime import timedelta

    import pyarrow.parquet as pq

    from .conftest import CUT, T0, hand_events, write_book

    n = 12
    users = [f"u{i}" for i in range(n)]
    # every labelled user in the book (a label table with none of them is refused)
    hand_book = write_book(tmp_path / "book", hand_events(
        [(u, T0 + timedelta(days=1), "app", [("screen", "home"), ("action", "view")]) for u in users]))
    lab = pa.table({"user_id": users, "eval_ts": pa.array([CUT] * n, pa.timestamp("us")),
                    "label": pa.array([1, 1] + [0] * (n - 2), pa.int8())})
    pq.write_table(lab, tmp_path / "rare.parquet")
    train, test = np.r_[0, 1, 5:n], np.array([2, 3, 4])  # both positives in train
    monkeypatch.setattr(R, "split_users", lambda y, **kw: (train, test))
    res = probe(hand_book, None, tmp_path / "rare.parquet", feature_sets=("counts",), progress=False)
    json.dumps(res, allow_nan=False)
    assert all(r["roc_auc"] is None for r in res["rows"])
    assert "n/a" in format_probe_table(res)
