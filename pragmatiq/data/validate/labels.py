"""labels/<task>.parquet checks: the task's schema (`schema.LABEL_SCHEMAS`), binary columns in
{0, 1} (`schema.BINARY_COLUMNS`), and `eval_ts` inside the time range of events.parquet.

An unknown task needs only `user_id` (a warning says it is unknown).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.data.validate.events import EventFacts
from pragmatiq.data.validate.report import ERROR, WARNING, Finding
from pragmatiq.data.validate.scan import IdSet, Tally, TableScan, row_examples

_USER_ONLY = pa.schema([("user_id", pa.string())])


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def label_scan(pf: pq.ParquetFile, rel: str, task: str) -> tuple[TableScan, list[Finding]]:
    """The scan for a task's file, and a warning when the task is unknown."""
    if task in schema.LABEL_SCHEMAS:
        name = f'pragmatiq.data.schema.LABEL_SCHEMAS["{task}"]'
        return TableScan(pf, rel, schema.LABEL_SCHEMAS[task], name), []
    known = ", ".join(schema.LABEL_SCHEMAS)
    warn = Finding(WARNING, rel, None, "unknown-task",
                   f"task '{task}' is not a known label task ({known}); only user_id is checked",
                   0, (), "rename the file to a known task if it is one; otherwise nothing to do",
                   "")
    return TableScan(pf, rel, _USER_ONLY, "a table with a user_id string column",
                     columns=("user_id",)), [warn]


def check_labels(pf: pq.ParquetFile, rel: str, task: str,
                 events: EventFacts | None) -> tuple[list[Finding], pa.Array | None]:
    """All checks on one label file; returns its distinct user ids for the cross-file check."""
    scan, out = label_scan(pf, rel, task)
    flags = {c: Tally() for c in schema.BINARY_COLUMNS.get(task, ()) if c in scan.plan}
    early, late = Tally(), Tally()
    users = IdSet()
    lo = events.ts_min if events else None
    hi = events.ts_max if events else None
    for offset, cols in scan.batches():
        def describe(idx: list[int], column: str, offset=offset, cols=cols) -> list[str]:
            return row_examples(offset, idx, cols, ("user_id", column))

        if "user_id" in cols:
            users.add(cols["user_id"])
        for c, tally in flags.items():
            if (v := cols.get(c)) is not None:
                zero_one = pa.array([0, 1], v.type)
                bad = pc.and_(v.is_valid(), pc.invert(pc.is_in(v, value_set=zero_one)))
                tally.add(bad, lambda idx, c=c: describe(idx, c))
        if (ev := cols.get("eval_ts")) is not None and lo is not None:
            ev_us = pc.cast(ev, pa.int64())
            early.add(pc.less(ev_us, lo), lambda idx: describe(idx, "eval_ts"))
            late.add(pc.greater(ev_us, hi), lambda idx: describe(idx, "eval_ts"))
    out += scan.finish()
    for c, tally in flags.items():
        out += tally.finding(ERROR, rel, c, "not-binary", f"'{c}' must be 0 or 1",
                             f'map the values to 0/1, then {c} as int8: '
                             f'pc.cast(table["{c}"], pa.int8())')
    if lo is not None:
        span = f"events span {_iso(lo)} .. {_iso(hi)} UTC"
        out += early.finding(ERROR, rel, "eval_ts", "eval-ts-out-of-range",
                             f"eval_ts before the first event ({span}): the truncated history "
                             "(ts < eval_ts) is empty", "check eval_ts's unit and year against "
                             "events.parquet's ts (both timestamp[us], UTC)")
        out += late.finding(WARNING, rel, "eval_ts", "eval-ts-out-of-range",
                            f"eval_ts after the last event ({span}): the label's outcome window "
                            "is not in the data", "check eval_ts's unit and year; fine only if "
                            "events were extracted up to the cut and labels come from elsewhere")
    return out, (users.values() if "user_id" in scan.plan else None)
