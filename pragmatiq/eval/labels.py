"""Label tables for probes: one row per user, a binary `label` and (forecast tasks) `eval_ts`.

Every consumer truncates a user's history to `ts < eval_ts` (DESIGN §2). Timestamps are handled
as int64 microseconds since the epoch in UTC: a naive `timestamp[us]` is read as UTC and a
timezone-aware one is already stored in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass
class LabelTable:
    task: str  # file stem, e.g. "default_12m"
    user_ids: pa.StringArray  # (U,) unique, in file order
    label: np.ndarray  # (U,) int64 0/1
    cut_us: np.ndarray | None  # (U,) int64 eval_ts in UTC microseconds; None = no truncation

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def cuts(self) -> dict[str, int] | None:
        """user_id -> eval_ts in UTC microseconds (the mapping the tokenizer's `cuts` takes)."""
        if self.cut_us is None:
            return None
        return dict(zip(self.user_ids.to_pylist(), self.cut_us.tolist()))


def ts_to_us(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """timestamp[*] (naive = UTC, or tz-aware) -> (N,) int64 microseconds since the epoch."""
    t = arr.type
    if not pa.types.is_timestamp(t):
        raise TypeError(f"expected a timestamp column, got {t}")
    if t.unit != "us":
        arr = pc.cast(arr, pa.timestamp("us", tz=t.tz))
    out = pc.cast(arr, pa.int64())
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return out.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def read_label_table(labels: str | Path | pa.Table | LabelTable, task: str | None = None) -> LabelTable:
    """Read a label parquet (or take a table) and check it can drive a per-user probe."""
    if isinstance(labels, LabelTable):
        return labels
    where = "label table"
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if not path.is_file():
            raise FileNotFoundError(f"label file {path} not found (expected DATA/labels/<task>.parquet)")
        table = pq.read_table(path)
        task = task or path.stem
        where = str(path)
    else:
        table = labels
    task = task or "task"
    for col in ("user_id", "label"):
        if col not in table.column_names:
            raise ValueError(
                f"{where}: missing column {col!r} (has {table.column_names}); a probe needs one row"
                " per user with user_id and a 0/1 label"
            )
    user_ids = table["user_id"].combine_chunks().cast(pa.string())
    if user_ids.null_count:
        raise ValueError(f"{where}: column user_id has {user_ids.null_count} nulls")
    if pc.count_distinct(user_ids).as_py() != len(user_ids):
        counts = pc.value_counts(user_ids)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise ValueError(
            f"{where}: user_id {dup!r} appears more than once; per-user probes need one row per user"
            " (event-level tables such as fraud/recurring need aggregating to users first)"
        )
    label = table["label"].combine_chunks()
    if not (pa.types.is_integer(label.type) or pa.types.is_boolean(label.type)):
        raise ValueError(f"{where}: column label is {label.type}; it must hold integers or booleans (0/1)")
    if label.null_count:
        raise ValueError(f"{where}: column label has {label.null_count} nulls")
    y = label.to_numpy(zero_copy_only=False).astype(np.int64)
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: label must be 0/1, row {i} (user {user_ids[i].as_py()}) has {y[i]}")
    cut_us = None
    if "eval_ts" in table.column_names:
        ts = table["eval_ts"]
        if not pa.types.is_timestamp(ts.type):
            raise ValueError(f"{where}: column eval_ts is {ts.type}; it must be a timestamp (the cut point of each "
                             "user's history)")
        if ts.null_count:
            raise ValueError(f"{where}: column eval_ts has {ts.null_count} nulls")
        cut_us = ts_to_us(ts)
    return LabelTable(task=task, user_ids=user_ids, label=y, cut_us=cut_us)
