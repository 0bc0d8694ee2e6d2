"""Baselines: known values, truncation at eval_ts, batch-size invariance, vectorization."""

from __future__ import annotations

import sys
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pragmatiq.data import schema
from pragmatiq.eval import baseline_features, baseline_frame
from pragmatiq.eval import baselines as B

from .conftest import CUT, T0, hand_events, hand_labels, tx, write_book


def _col(names, X, name):
    return X[:, names.index(name)]


def test_counts_by_hand(hand_book):
    users, X = baseline_features(hand_book, hand_book / "labels/default_12m.parquet", "counts")
    assert users == ["a", "b", "c"]  # label-table order; unlabeled "z" is ignored
    # columns follow schema.SOURCES: transaction, app, trading, communication
    np.testing.assert_array_equal(X, [[3, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_aggregates_by_hand(hand_book):
    users, names, X = baseline_frame(hand_book, hand_book / "labels/default_12m.parquet", "aggregates")
    assert X.shape == (3, len(names)) and len(set(names)) == len(names)
    a = dict(zip(names, X[0]))
    assert a["amt_n"] == 3 and a["amt_sum"] == pytest.approx(60.0)
    assert a["amt_mean"] == pytest.approx(20.0) and a["amt_max"] == pytest.approx(30.0)
    assert a["amt_30d"] == pytest.approx(20.0)
    assert a["days_since_transaction"] == pytest.approx(2.0)
    assert a["tenure_days"] == pytest.approx((CUT - T0).total_seconds() / 86400)
    assert a["active_days"] == 3  # two events on day 2
    assert a["mcc_groceries_share"] == pytest.approx(2 / 3)
    assert a["mcc_eating_share"] == pytest.approx(1 / 3)
    assert a["txn_type=card_payment_share"] == pytest.approx(1.0)
    c = dict(zip(names, X[2]))  # no events before the cut: zero counts, undefined stats NaN
    assert c["n_events"] == 0 and np.isnan(c["amt_mean"]) and np.isnan(c["days_since_any"])


@pytest.mark.parametrize("kind", B.KINDS)
def test_planted_post_cut_events_change_nothing(tmp_path, kind):
    """Events at or after eval_ts (any source, huge amounts, new values) are invisible."""
    base = write_book(tmp_path / "base", hand_events())
    planted = [
        ("a", CUT, "transaction", tx("1000000.00", "7995", "gambling_win")),  # exactly at the cut
        ("a", CUT + timedelta(days=1), "trading", [("instrument", "GME"), ("side", "sell")]),
        ("b", CUT + timedelta(seconds=1), "communication", [("comm_event", "unsubscribed")]),
        ("c", CUT + timedelta(days=40), "app", [("screen", "close_account"), ("action", "tap")]),
    ]
    leak = write_book(tmp_path / "leak", hand_events(planted))
    _, n0, X0 = baseline_frame(base, base / "labels/default_12m.parquet", kind)
    _, n1, X1 = baseline_frame(leak, leak / "labels/default_12m.parquet", kind)
    assert n0 == n1
    np.testing.assert_array_equal(X0, X1)
    # and the same events before the cut do change them
    early = [(u, CUT - timedelta(hours=1), s, f) for u, _, s, f in planted]
    moved = write_book(tmp_path / "early", hand_events(early))
    _, _, X2 = baseline_frame(moved, moved / "labels/default_12m.parquet", kind)
    assert not np.array_equal(np.nan_to_num(X0), np.nan_to_num(X2))


def test_later_cut_sees_more(hand_book):
    later = hand_labels(CUT + timedelta(days=10))
    _, X = baseline_features(hand_book, later, "counts")
    assert X[0, 0] == 4


def test_tz_aware_and_struct_fields(tmp_path, hand_book):
    """timestamp[us, UTC] and struct-of-strings fields read like the canonical form."""
    ev = hand_events()
    keys = sorted({k for row in ev["fields"].to_pylist() for k, _ in row})
    as_struct = pa.array([{k: dict(row).get(k) for k in keys} for row in ev["fields"].to_pylist()],
                         type=pa.struct([(k, pa.string()) for k in keys]))
    ev2 = pa.table({"user_id": ev["user_id"], "ts": ev["ts"].cast(pa.timestamp("us", tz="UTC")),
                    "source": ev["source"], "fields": as_struct})
    lab = hand_labels()
    lab2 = lab.set_column(1, "eval_ts", lab["eval_ts"].cast(pa.timestamp("us", tz="UTC")))
    other = write_book(tmp_path / "tz", ev2, lab2)
    for kind in B.KINDS:
        _, n0, X0 = baseline_frame(hand_book, hand_book / "labels/default_12m.parquet", kind)
        _, n1, X1 = baseline_frame(other, other / "labels/default_12m.parquet", kind)
        assert n0 == n1
        np.testing.assert_array_equal(X0, X1)


@pytest.mark.parametrize("kind", B.KINDS)
def test_batch_size_invariant(synth_book, monkeypatch, kind):
    labels = synth_book / "labels/churn_6m.parquet"
    _, n0, X0 = baseline_frame(synth_book, labels, kind)
    monkeypatch.setattr(B, "BATCH_ROWS", 997)  # many batches, users straddling the seams
    _, n1, X1 = baseline_frame(synth_book, labels, kind)
    assert n0 == n1
    np.testing.assert_allclose(X0, X1, rtol=1e-9, equal_nan=True)


def _python_lines(fn) -> int:
    """Python lines executed inside pragmatiq/eval while running `fn` (a per-event loop shows)."""
    lines = 0

    def local(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def tracer(frame, event, arg):
        return local if "pragmatiq/eval" in frame.f_code.co_filename else None

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return lines


def test_vectorized_no_per_event_python(tmp_path):
    """10x the events does not mean more Python lines run: the work is in Arrow/NumPy kernels."""
    def book(name, reps):
        rows = []
        for u in ("a", "b", "c"):
            for i in range(reps):
                ts = T0 + timedelta(minutes=7 * i)
                rows.append((u, ts, "transaction", tx(f"{i % 97}.5", str(5000 + i % 900))))
                rows.append((u, ts + timedelta(seconds=1), "app", [("screen", f"s{i % 5}")]))
        cols = list(zip(*rows))
        ev = pa.table({"user_id": cols[0], "ts": cols[1], "source": cols[2], "fields": cols[3]},
                      schema=schema.EVENTS)
        return write_book(tmp_path / name, ev, hand_labels(T0 + timedelta(days=365)))

    small, big = book("small", 100), book("big", 1000)
    for kind in B.KINDS:
        n_small = _python_lines(lambda: baseline_frame(small, small / "labels/default_12m.parquet", kind))
        n_big = _python_lines(lambda: baseline_frame(big, big / "labels/default_12m.parquet", kind))
        assert n_big <= n_small + 10, (kind, n_small, n_big)


def test_errors(hand_book, tmp_path):
    lab = hand_book / "labels/default_12m.parquet"
    with pytest.raises(ValueError, match="valid kinds: counts, aggregates"):
        baseline_features(hand_book, lab, "fancy")
    with pytest.raises(FileNotFoundError, match="raw data directory"):
        baseline_features(tmp_path, lab, "counts")
    dup = pa.table({"user_id": ["a", "a"], "eval_ts": [CUT, CUT], "label": [0, 1]},
                   schema=schema.LABEL_SCHEMAS["default_12m"])
    with pytest.raises(ValueError, match="'a' appears more than once"):
        baseline_features(hand_book, dup, "counts")
    bad = pa.table({"user_id": ["a"], "eval_ts": [CUT], "label": pa.array([2], pa.int8())})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="0/1"):
        baseline_features(hand_book, tmp_path / "bad.parquet", "counts")
