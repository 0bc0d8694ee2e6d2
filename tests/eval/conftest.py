"""Fixtures for probe tests.

`hand_book(tmp_path)` writes a small hand-made dataset whose features are known by hand;
`synth_book` is a tiny synthetic bank shared by the session (about a second to write).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pragmatiq.data import schema

T0 = datetime(2024, 1, 1, 9, 0, 0)
CUT = datetime(2024, 3, 1)
USERS = ("a", "b", "c")


def tx(amount: str, mcc: str = "5411", txn_type: str = "card_payment"):
    return [("amount", amount), ("mcc", mcc), ("merchant", "TESCO"), ("txn_type", txn_type),
            ("channel", "online")]


def hand_events(extra: list[tuple] = ()) -> pa.Table:
    """a: 3 transactions + 1 app before the cut, 1 transaction after it; b: 1 app, 1 trading
    before the cut; c: no events; z: unlabeled user with events. `extra` rows are
    (user, ts, source, fields) merged in time order."""
    rows = [
        ("a", T0, "transaction", tx("10.00")),
        ("a", T0 + timedelta(days=1), "app", [("screen", "home"), ("action", "view")]),
        ("a", T0 + timedelta(days=1, hours=2), "transaction", tx("30.00", "5812")),
        ("a", CUT - timedelta(days=2), "transaction", tx("20.00")),
        ("a", CUT + timedelta(days=3), "transaction", tx("999.00")),
        ("b", T0 + timedelta(days=5), "app", [("screen", "cards"), ("action", "tap")]),
        ("b", T0 + timedelta(days=6), "trading", [("instrument", "AAPL"), ("side", "buy")]),
        ("z", T0, "communication", [("comm_event", "open")]),
    ] + list(extra)
    rows.sort(key=lambda r: (r[0], r[1]))
    cols = list(zip(*rows))
    return pa.table({"user_id": cols[0], "ts": cols[1], "source": cols[2], "fields": cols[3]},
                    schema=schema.EVENTS)


def hand_labels(cut: datetime = CUT) -> pa.Table:
    return pa.table({"user_id": list(USERS), "eval_ts": [cut] * 3, "label": [1, 0, 0]},
                    schema=schema.LABEL_SCHEMAS["default_12m"])


def write_book(root: Path, events: pa.Table, labels: pa.Table | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(events, root / schema.EVENTS_FILE)
    users = sorted(set(events["user_id"].to_pylist()) | set(USERS))
    pq.write_table(pa.table({
        "user_id": users, "as_of": [CUT] * len(users),
        "attributes": [[("country", "GB")]] * len(users),
        "lifelong": [[{"key": "account_opened", "ts": T0 - timedelta(days=100)}]] * len(users),
    }, schema=schema.PROFILES), root / schema.PROFILES_FILE)
    (root / schema.LABELS_DIR).mkdir(exist_ok=True)
    pq.write_table(labels if labels is not None else hand_labels(),
                   root / schema.LABELS_DIR / "default_12m.parquet")
    return root


@pytest.fixture
def hand_book(tmp_path) -> Path:
    return write_book(tmp_path / "hand", hand_events())


@pytest.fixture(scope="session")
def synth_book(tmp_path_factory) -> Path:
    from pragmatiq.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "book"
    synthesize({"n_users": 160, "seed": 3}, out=out, n_workers=1)
    return out
