"""Label tables for probes: one row per user, a binary `label` and (forecast tasks) `eval_ts`.

Every consumer truncates a user's history to `ts < eval_ts` (DESIGN §2). Timestamps are handled
as int64 microseconds since the epoch in UTC: a naive `timestamp[us]` is read as UTC and a
timezone-aware one is already stored in UTC.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
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
    if table.num_rows == 0:
        raise ValueError(f"{where}: no rows; a probe needs one row per labelled user (user_id, label)")
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
        _check_no_null_cuts(ts, user_ids, where)
        cut_us = ts_to_us(ts)
    return LabelTable(task=task, user_ids=user_ids, label=y, cut_us=cut_us)


def _check_no_null_cuts(ts: pa.ChunkedArray | pa.Array, user_ids: pa.Array, where: str) -> None:
    if ts.null_count:
        nulls = np.flatnonzero(pc.is_null(ts).to_numpy(zero_copy_only=False))
        users = ", ".join(repr(user_ids[int(i)].as_py()) for i in nulls[:3])
        raise ValueError(f"{where}: column eval_ts has {ts.null_count} null(s) of {len(ts)} (users {users}"
                         f"{', ...' if len(nulls) > 3 else ''}): every labelled user needs the time its history"
                         " is cut at; fill them in or drop those rows")


def read_cut_table(path: str | Path) -> tuple[pa.StringArray, np.ndarray]:
    """A label file that cuts histories (`embed --label`): `user_id` and `eval_ts`, checked up
    front -> (user ids (N,), eval_ts (N,) int64 UTC microseconds). A user may appear more than
    once (its earliest cut applies); nulls, a wrong type or an empty file raise naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found (expected DATA/labels/<task>.parquet)")
    table = pq.read_table(path)
    missing = [c for c in ("user_id", "eval_ts") if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: cutting histories needs columns user_id and eval_ts (has {table.column_names});"
                         " only forecast label tables carry eval_ts")
    if table.num_rows == 0:
        raise ValueError(f"{path}: no rows; a label file names the users to embed and their eval_ts")
    user_ids = table["user_id"].combine_chunks().cast(pa.string())
    if user_ids.null_count:
        raise ValueError(f"{path}: column user_id has {user_ids.null_count} null(s)")
    ts = table["eval_ts"]
    if not pa.types.is_timestamp(ts.type):
        raise ValueError(f"{path}: column eval_ts is {ts.type}; it must be a timestamp (the cut point of each "
                         "user's history)")
    _check_no_null_cuts(ts, user_ids, str(path))
    return user_ids, ts_to_us(ts)


@dataclass
class BookSpans:
    """Every user of a raw data directory (events.parquet or profiles.parquet) with the times of
    their first and last events; users with a profile and no events have none."""
    events_path: Path
    user_ids: pa.StringArray  # (B,) unique
    first_us: np.ndarray  # (B,) int64 UTC microseconds; INT64_MAX without events
    last_us: np.ndarray  # (B,) int64; INT64_MIN without events

    @property
    def last_event_us(self) -> int | None:
        """The book's last event (None without events)."""
        has = self.last_us != _NO_LAST
        return int(self.last_us[has].max()) if has.any() else None


_NO_FIRST, _NO_LAST = np.iinfo(np.int64).max, np.iinfo(np.int64).min
_SPAN_BATCH_ROWS = 1 << 18


def book_spans(data_dir: str | Path) -> BookSpans | None:
    """`BookSpans` of a raw data directory from its user_id and ts columns (streamed; one row per
    user kept). None when the files do not follow the data contract (the tokenizer and
    `pragmatiq validate` report those)."""
    data_dir = Path(data_dir)
    events, profiles = data_dir / "events.parquet", data_dir / "profiles.parquet"
    try:
        parts = []
        for batch in pq.ParquetFile(events).iter_batches(batch_size=_SPAN_BATCH_ROWS, columns=["user_id", "ts"]):
            if not pa.types.is_timestamp(batch.schema.field("ts").type):
                return None
            ts = batch.column("ts")
            ts = pc.cast(pc.cast(ts, pa.timestamp("us", tz=ts.type.tz), safe=False), pa.int64())
            t = pa.table({"user_id": batch.column("user_id").cast(pa.string()), "ts": ts})
            parts.append(t.group_by("user_id").aggregate([("ts", "min"), ("ts", "max")]))
        users = []
        if parts:
            spans = pa.concat_tables(parts).group_by("user_id").aggregate([("ts_min", "min"), ("ts_max", "max")])
            users.append(spans)
        if profiles.is_file():
            prof = pq.read_table(profiles, columns=["user_id"]).column("user_id").combine_chunks().cast(pa.string())
            if users:
                prof = prof.filter(pc.invert(pc.is_in(prof, value_set=users[0]["user_id"].combine_chunks())))
            prof = pc.unique(prof)
            users.append(pa.table({"user_id": prof, "ts_min_min": pa.nulls(len(prof), pa.int64()),
                                   "ts_max_max": pa.nulls(len(prof), pa.int64())}))
    except (pa.ArrowException, OSError, KeyError):
        return None
    if not users:
        return BookSpans(events, pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64))
    t = pa.concat_tables([u.select(["user_id", "ts_min_min", "ts_max_max"]) for u in users])
    t = t.filter(pc.is_valid(t["user_id"]))
    first = t["ts_min_min"].combine_chunks().fill_null(_NO_FIRST).to_numpy(zero_copy_only=False)
    last = t["ts_max_max"].combine_chunks().fill_null(_NO_LAST).to_numpy(zero_copy_only=False)
    return BookSpans(events, t["user_id"].combine_chunks(), first.astype(np.int64), last.astype(np.int64))


def _iso(us: int) -> str:
    try:
        return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{us} µs since 1970"


def _examples(user_ids: pa.Array, idx: np.ndarray, n: int = 3) -> str:
    shown = ", ".join(repr(user_ids[int(i)].as_py()) for i in idx[:n])
    return shown + (", ..." if len(idx) > n else "")


def check_label_coverage(user_ids: pa.StringArray, cut_us: np.ndarray | None, spans: BookSpans | None, *,
                         label: str, data_dir: str | Path, dropped: str) -> np.ndarray:
    """Which labelled users are in the book -> (U,) bool, saying what is off before any work:

    - none of them is in the book (or no users at all): a ValueError (wrong book, or ids written
      differently);
    - some are not: a warning with their count and examples (`dropped` says what happens to them);
    - eval_ts after the book's last event: a warning with the share of users (their histories hold
      all their data, the outcome window included: leakage);
    - eval_ts at or before all of a user's events: a warning with the count (empty histories).
    `spans` None (a book the tokenizer will refuse anyway): every user counts as present.
    """
    n = len(user_ids)
    if n == 0:
        raise ValueError(f"{label}: no labelled users")
    if spans is None:
        return np.ones(n, bool)
    at = pc.fill_null(pc.index_in(user_ids, value_set=spans.user_ids), -1).to_numpy(zero_copy_only=False)
    at = at.astype(np.int64)
    found = at >= 0
    missing = np.flatnonzero(~found)
    if not found.any():
        like = f" (its users look like {spans.user_ids[0].as_py()!r})" if len(spans.user_ids) else " (it has no users)"
        raise ValueError(f"none of the {n} labelled users of {label} is in {data_dir}{like}, e.g. "
                         f"{_examples(user_ids, missing)}: is the label table from another book, or are the "
                         "user ids written differently (case, spaces, numbers as text)?")
    if len(missing):
        warnings.warn(f"{len(missing)} of {n} labelled users of {label} are not in {data_dir} (e.g. "
                      f"{_examples(user_ids, missing)}): {dropped}", stacklevel=2)
    if cut_us is None:
        return found
    first = np.where(found, spans.first_us[np.maximum(at, 0)], _NO_FIRST)
    last_event = spans.last_event_us
    if last_event is not None:
        late = np.flatnonzero(found & (cut_us > last_event))
        if len(late):
            warnings.warn(
                f"{label}: eval_ts of {len(late)} of {int(found.sum())} labelled users ({len(late) / found.sum():.0%}) "
                f"is after the last event of {spans.events_path} ({_iso(last_event)} UTC; e.g. user "
                f"{user_ids[int(late[0])].as_py()!r}, eval_ts {_iso(int(cut_us[late[0]]))}): their histories "
                "(ts < eval_ts) hold all their data, the label's outcome window included (leakage), unless events "
                "were extracted only up to the cut. eval_ts must be the cut, not the outcome date", stacklevel=2)
    early = np.flatnonzero(found & (first != _NO_FIRST) & (cut_us <= first))
    if len(early):
        i = int(early[0])
        warnings.warn(
            f"{label}: eval_ts of {len(early)} of {int(found.sum())} labelled users is at or before their first "
            f"event (e.g. user {user_ids[i].as_py()!r}: eval_ts {_iso(int(cut_us[i]))}, first event "
            f"{_iso(int(first[i]))} UTC): their histories (ts < eval_ts) are empty, only their profiles are "
            "embedded; check eval_ts's unit and year", stacklevel=2)
    return found
