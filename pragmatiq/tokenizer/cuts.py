"""Per-user cut times for forecast labels: only events with ts < cut are encoded."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.data.validate.dtypes import dtype_fix

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


def _cuts_from_table(path: Path) -> dict[str, int]:
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"label table {path} not found") from None
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path} is not a readable parquet label table ({' '.join(str(exc).split())})") from None
    if "eval_ts" not in table.column_names or "user_id" not in table.column_names:
        raise ValueError(f"{path}: cutting histories needs columns user_id and eval_ts "
                         f"(has {table.column_names}); only forecast label tables carry eval_ts")
    ts = table.column("eval_ts").combine_chunks()
    if not pa.types.is_timestamp(ts.type):
        fix = dtype_fix("eval_ts", ts.type, schema.TS, "the label table's schema", ts.slice(0, 64))
        raise ValueError(f"{path}[eval_ts]: expected timestamp[us], got {ts.type} — fix: {fix}")
    users = table.column("user_id").combine_chunks()
    if pa.types.is_integer(users.type) or pa.types.is_large_string(users.type) or pa.types.is_string_view(users.type):
        users = pc.cast(users, pa.string())
    if not pa.types.is_string(users.type):
        raise ValueError(f"{path}[user_id]: expected string user ids, got {users.type} — fix: "
                         'table = table.set_column(table.schema.get_field_index("user_id"), "user_id", '
                         'pc.cast(table["user_id"], pa.string()))')
    for name, col in (("user_id", users), ("eval_ts", ts)):
        if col.null_count:
            rows = pc.indices_nonzero(col.is_null()).slice(0, 3).to_pylist()
            raise ValueError(f"{path}[{name}]: {col.null_count:,} of {len(col):,} rows have no {name} "
                             f"(e.g. row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}), so their "
                             f'users cannot be cut — fix: drop or fill them: table = table.filter(pc.is_valid('
                             f'table["{name}"]))')
    us = pc.cast(pc.cast(ts, pa.timestamp("us", tz=ts.type.tz), safe=False), pa.int64())
    # a user listed twice keeps its earliest cut (vectorized: one row per user)
    first = pa.table({"u": users, "t": us}).group_by("u", use_threads=False).aggregate([("t", "min")])
    return dict(zip(first.column("u").to_pylist(), first.column("t_min").to_pylist()))


def load_cuts(cuts) -> dict[str, int] | None:
    """user_id -> cut in µs since the epoch, from a label parquet (`user_id`, `eval_ts`) or a
    mapping. A user listed twice keeps its earliest cut."""
    if cuts is None:
        return None
    if isinstance(cuts, (str, os.PathLike)):
        return _cuts_from_table(Path(cuts))
    return {str(u): _to_us(t, u) for u, t in dict(cuts).items()}
