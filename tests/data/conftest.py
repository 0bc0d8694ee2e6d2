"""Small valid datasets for data tests.

`tiny_dataset` writes a valid 3-user dataset with all four files (events, profiles,
transfers, labels/churn_6m) and returns its directory. The builders below return the same
tables so a test can break one thing and write the rest unchanged with `write_dataset`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pragmatiq.data import schema

T0 = datetime(2024, 1, 1, 9, 0, 0)
USERS = ("u1", "u2", "u3")


def tiny_events() -> pa.Table:
    """4 events per user, contiguous and time-ordered, all four sources."""
    rows = {"user_id": [], "ts": [], "source": [], "fields": []}
    per_user = [
        ("transaction", [("amount", "42.10"), ("mcc", "5411"), ("merchant", "TESCO STORES 4521")]),
        ("app", [("screen", "home"), ("action", "view")]),
        ("trading", [("instrument", "AAPL"), ("side", "buy"), ("quantity", "3")]),
        ("communication", [("comm_event", "open"), ("campaign_id", "c7")]),
    ]
    for u, user in enumerate(USERS):
        for e, (source, fields) in enumerate(per_user):
            rows["user_id"].append(user)
            rows["ts"].append(T0 + timedelta(days=u, hours=e))
            rows["source"].append(source)
            rows["fields"].append(fields)
    return pa.table(rows, schema=schema.EVENTS)


def tiny_profiles(users: tuple[str, ...] = USERS) -> pa.Table:
    n = len(users)
    return pa.table(
        {
            "user_id": list(users),
            "as_of": [T0 + timedelta(days=30)] * n,
            "attributes": [[("age_band", "25-34"), ("country", "GB")]] * n,
            "lifelong": [[{"key": "account_opened", "ts": T0 - timedelta(days=400)}]] * n,
        },
        schema=schema.PROFILES,
    )


def tiny_transfers() -> pa.Table:
    return pa.table(
        {"from_user": ["u1", "u2"], "to_user": ["u2", "u3"],
         "ts": [T0 + timedelta(hours=5), T0 + timedelta(days=1, hours=5)], "amount": [10.0, 25.5]},
        schema=schema.TRANSFERS,
    )


def tiny_churn() -> pa.Table:
    """churn_6m labels with eval_ts inside the events' time range."""
    return pa.table(
        {"user_id": list(USERS), "eval_ts": [T0 + timedelta(days=1)] * 3, "label": [0, 1, 0]},
        schema=schema.LABEL_SCHEMAS["churn_6m"],
    )


def write_dataset(root: Path, *, events: pa.Table | None = None, profiles: pa.Table | None = None,
                  transfers: pa.Table | None = None, labels: dict[str, pa.Table] | None = None
                  ) -> Path:
    """Write whichever tables are given into `root` (created) and return it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if events is not None:
        pq.write_table(events, root / schema.EVENTS_FILE)
    if profiles is not None:
        pq.write_table(profiles, root / schema.PROFILES_FILE)
    if transfers is not None:
        pq.write_table(transfers, root / schema.TRANSFERS_FILE)
    for task, table in (labels or {}).items():
        (root / schema.LABELS_DIR).mkdir(exist_ok=True)
        pq.write_table(table, root / schema.LABELS_DIR / f"{task}.parquet")
    return root


def write_tiny(root: Path, **replace: pa.Table | dict | None) -> Path:
    """The tiny dataset with some tables replaced (`events=...`, `labels={...}`, ...)."""
    tables = {"events": tiny_events(), "profiles": tiny_profiles(),
              "transfers": tiny_transfers(), "labels": {"churn_6m": tiny_churn()}}
    tables.update(replace)
    return write_dataset(root, **tables)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A valid 3-user dataset with events, profiles, transfers and labels/churn_6m."""
    return write_tiny(tmp_path / "tiny")
