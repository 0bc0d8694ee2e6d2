"""Per-user cut times for forecast labels: only events with ts < cut are encoded."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_EPOCH = dt.datetime(1970, 1, 1)


def _to_us(value, user) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return (value - _EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(value, str):
        return _to_us(dt.datetime.fromisoformat(value.replace("Z", "+00:00")), user)
    raise TypeError(f"cut time for user {user!r}: expected µs int, datetime or ISO string, got {value!r}")


def load_cuts(cuts) -> dict[str, int] | None:
    """user_id -> cut in µs since the epoch, from a label parquet (`user_id`, `eval_ts`) or a
    mapping. A user listed twice keeps its earliest cut."""
    if cuts is None:
        return None
    if isinstance(cuts, (str, os.PathLike)):
        path = Path(cuts)
        table = pq.read_table(path)
        if "eval_ts" not in table.column_names or "user_id" not in table.column_names:
            raise ValueError(f"{path}: cutting histories needs columns user_id and eval_ts "
                             f"(has {table.column_names}); only forecast label tables carry eval_ts")
        ts = table.column("eval_ts").combine_chunks()
        if not pa.types.is_timestamp(ts.type):
            raise ValueError(f"{path}[eval_ts]: expected timestamp[us], got {ts.type}")
        us = pc.cast(pc.cast(ts, pa.timestamp("us", tz=ts.type.tz)), pa.int64()).to_numpy(zero_copy_only=False)
        users = table.column("user_id").to_pylist()
        out: dict[str, int] = {}
        for u, t in zip(users, us.tolist()):  # per labelled user (a user-level table)
            out[u] = min(t, out.get(u, t))
        return out
    return {str(u): _to_us(t, u) for u, t in dict(cuts).items()}
