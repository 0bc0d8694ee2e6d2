"""Users of a contract data directory as serving records (the tutorial's JSON shape).

    records_from_data("data", users=["u1"])  ->  [{"user_id", "events", "attributes", "lifelong", "as_of"}]

Timestamps become integer microseconds; events keep the file's order (the records path sorts
by time itself). Used by the quickstart, the serving tests and the serving benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema


def _us(col: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(col, pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)


def records_from_data(data_dir: str | Path, users: list[str] | None = None, limit: int | None = None) -> list[dict]:
    """Records for `users` (default: the profiles' users in file order, at most `limit`)."""
    data_dir = Path(data_dir)
    profiles = pq.read_table(data_dir / schema.PROFILES_FILE)
    if users is None:
        users = profiles.column("user_id").to_pylist()[:limit]
    wanted = pa.array(users, pa.string())
    profiles = profiles.filter(pc.is_in(profiles.column("user_id"), value_set=wanted))
    events = pq.read_table(data_dir / schema.EVENTS_FILE, filters=[("user_id", "in", list(users))])
    ev_ts = _us(events.column("ts"))
    by_user: dict[str, list] = {u: [] for u in users}
    for uid, ts, src, fields in zip(events.column("user_id").to_pylist(), ev_ts,
                                    events.column("source").to_pylist(), events.column("fields").to_pylist()):
        by_user[uid].append({"ts": int(ts), "source": src, "fields": dict(fields or [])})
    as_of = dict(zip(profiles.column("user_id").to_pylist(), _us(profiles.column("as_of"))))
    attrs = dict(zip(profiles.column("user_id").to_pylist(), profiles.column("attributes").to_pylist()))
    life = dict(zip(profiles.column("user_id").to_pylist(), profiles.column("lifelong").to_pylist()))
    missing = [u for u in users if u not in as_of]
    if missing:
        raise KeyError(f"{data_dir / schema.PROFILES_FILE}: no profile for user(s) {', '.join(missing[:5])}")
    return [{
        "user_id": u,
        "events": by_user[u],
        "attributes": dict(attrs[u] or []),
        "lifelong": [{"key": m["key"], "ts": _lifelong_us(m["ts"])} for m in (life[u] or [])],
        "as_of": int(as_of[u]),
    } for u in users]


def _lifelong_us(ts) -> int:
    import datetime as dt

    if isinstance(ts, dt.datetime):
        return (ts.replace(tzinfo=None) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    return int(ts)
