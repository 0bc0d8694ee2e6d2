"""events.parquet content checks, streamed batch by batch.

A user's events must be one contiguous run, in time order; `source` must be one of
`schema.SOURCES`; timestamps should be plausible. Along the way the scan collects what the
cross-file checks need: the distinct users and the time range of the data. Memory grows with
the number of users (run heads), never with events.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.data import schema
from pragmatiq.data.validate.fields import KeyValueChecks
from pragmatiq.data.validate.report import ERROR, WARNING, Finding
from pragmatiq.data.validate.scan import (IdSet, Tally, TableScan, map_keys_leaf, quote,
                                          row_examples, show)

SORT_FIX = ('sort by user then time before writing: table = table.sort_by([("user_id", '
             '"ascending"), ("ts", "ascending")]) (for files larger than memory: ORDER BY '
             "user_id, ts in Spark/DuckDB)")
_SOURCES = pa.array(schema.SOURCES, pa.string())
_MAX_SOURCES = 100  # distinct unknown source values remembered (they choose the fix)
# Plausible event times: earlier ones are usually epoch numbers cast with the wrong unit.
_TS_MIN = pa.scalar(631_152_000_000_000, pa.timestamp("us"))  # 1990-01-01
_TS_MAX = pa.scalar(4_102_444_800_000_000, pa.timestamp("us"))  # 2100-01-01


def _shift(arr: pa.Array, prev: pa.Array | None) -> pa.Array:
    """`arr` moved down one row, with `prev` (the previous batch's last row) in front."""
    head = prev if prev is not None else pa.nulls(1, arr.type)
    return pa.concat_arrays([head, arr.slice(0, len(arr) - 1)])


def _last(arr: pa.Array) -> pa.Array:
    return arr.slice(len(arr) - 1, 1)


class RunTracker:
    """Contiguity: counts how many runs each user starts across the whole stream.

    Per batch only the run heads (first row of each run of equal user ids) are kept; heads
    are folded into the distinct-user set every `cap` heads, and a user that starts a second
    run is recorded as not contiguous.
    """

    def __init__(self, cap: int = 1 << 20) -> None:
        self._cap = cap
        self._last: pa.Array | None = None
        self._seen = pa.array([], pa.string())
        self._pending: list[pa.Array] = []
        self._n_pending = 0
        self._bad = IdSet()

    def update(self, uid: pa.Array) -> None:
        if not len(uid):
            return
        starts = pc.fill_null(pc.not_equal(uid, _shift(uid, self._last)), True)
        heads = uid.filter(starts).drop_null()
        self._pending.append(heads)
        self._n_pending += len(heads)
        self._last = _last(uid)
        if self._n_pending > self._cap:
            self._fold()

    def _fold(self) -> None:
        if not self._pending:
            return
        counts = pc.value_counts(pa.concat_arrays([self._seen, *self._pending]))
        values, n = counts.field("values"), counts.field("counts")
        self._bad.add(values.filter(pc.greater(n, 1)))
        self._seen, self._pending, self._n_pending = values, [], 0

    def users(self) -> pa.Array:
        self._fold()
        return self._seen

    def split_users(self) -> pa.Array:
        self._fold()
        return self._bad.values()


@dataclass
class EventFacts:
    """What the cross-file checks need from events.parquet."""

    users: pa.Array | None  # distinct user ids (None when user_id is unusable)
    ts_min: int | None  # microseconds since epoch
    ts_max: int | None


class EventChecks:
    """All content checks on events.parquet; feed `update` with `TableScan.batches()`."""

    def __init__(self, rel: str = schema.EVENTS_FILE) -> None:
        self.rel = rel
        self.runs = RunTracker()
        self.backwards, self.unknown, self.implausible = Tally(), Tally(), Tally()
        self.unknown_values: set[str] = set()
        self.fields = KeyValueChecks(rel, "fields", report_empty=True, unit="events")
        self._prev_uid: pa.Array | None = None  # last row of the previous batch
        self._prev_ts: pa.Array | None = None
        self._has_uid = self._has_ts = True
        self.ts_min: int | None = None
        self.ts_max: int | None = None

    def update(self, offset: int, cols: dict[str, pa.Array]) -> None:
        uid, ts, src = cols.get("user_id"), cols.get("ts"), cols.get("source")
        self._has_uid &= uid is not None
        self._has_ts &= ts is not None
        if uid is not None:
            self.runs.update(uid)
        if ts is not None:
            self._time(offset, cols, ts)
        if uid is not None and ts is not None:
            self._order(offset, cols, uid, ts)
        if src is not None:
            self._sources(offset, cols, src)
        self.fields.update(offset, cols)

    def _time(self, offset: int, cols: dict, ts: pa.Array) -> None:
        mm = pc.min_max(pc.cast(ts, pa.int64()))
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is not None:
            self.ts_min = lo if self.ts_min is None else min(self.ts_min, lo)
            self.ts_max = hi if self.ts_max is None else max(self.ts_max, hi)
        odd = pc.or_(pc.less(ts, _TS_MIN), pc.greater_equal(ts, _TS_MAX))
        self.implausible.add(odd, lambda idx: row_examples(offset, idx, cols, ("user_id", "ts")))

    def _order(self, offset: int, cols: dict, uid: pa.Array, ts: pa.Array) -> None:
        prev_uid, prev_ts = _shift(uid, self._prev_uid), _shift(ts, self._prev_ts)
        back = pc.and_(pc.equal(uid, prev_uid), pc.less(ts, prev_ts))

        def describe(idx: list[int]) -> list[str]:
            return [f"row {offset + i} (user_id={show(uid[i])}): {show(ts[i])} after "
                    f"{show(prev_ts[i])}" for i in idx]

        self.backwards.add(back, describe)
        self._prev_uid, self._prev_ts = _last(uid), _last(ts)

    def _sources(self, offset: int, cols: dict, src: pa.Array) -> None:
        bad = pc.and_(src.is_valid(), pc.invert(pc.is_in(src, value_set=_SOURCES)))
        if not pc.any(bad).as_py():
            return
        values = pc.unique(src.filter(bad)).slice(0, _MAX_SOURCES).to_pylist()
        new = [v for v in values if v not in self.unknown_values]
        self.unknown_values.update(values[: _MAX_SOURCES - len(self.unknown_values)])

        def describe(idx: list[int]) -> list[str]:  # distinct bad values, not repeats of one
            return [f"{quote(v)} (row {offset + pc.index(src, v).as_py()})" for v in new[:len(idx)]]

        self.unknown.add(bad, describe)

    def findings(self) -> list[Finding]:
        r = self.rel
        split = self.runs.split_users() if self._has_uid else pa.array([], pa.string())
        out = []
        if len(split):
            ex = tuple(quote(u) for u in split.slice(0, 3).to_pylist())
            out.append(Finding(ERROR, r, "user_id", "not-contiguous",
                               "users whose events are split into several runs (each user's "
                               "events must be one contiguous block)", len(split), ex, SORT_FIX,
                               "users"))
        out += self.backwards.finding(ERROR, r, "ts", "ts-out-of-order",
                                      "timestamps go backwards within a user's events", SORT_FIX)
        valid = ", ".join(schema.SOURCES)
        out += self.unknown.finding(ERROR, r, "source", "unknown-source",
                                    f"unknown source (valid: {valid})", self._source_fix(valid))
        out += self.implausible.finding(WARNING, r, "ts", "implausible-ts",
                                        "timestamps before 1990 or after 2100: epoch numbers "
                                        "cast with the wrong unit?",
                                        "check the unit: seconds need x1_000_000, "
                                        "milliseconds x1_000 before casting to timestamp[us]")
        return out + self.fields.findings()

    def _source_fix(self, valid: str) -> str:
        if self.unknown_values and all(v.lower() in schema.SOURCES for v in self.unknown_values):
            return ('table = table.set_column(table.schema.get_field_index("source"), "source", '
                    'pc.utf8_lower(table["source"]))')
        return (f"map each value to one of {valid} before writing (card payments and P2P are "
                "'transaction', screens and logins 'app', orders 'trading', campaign messages "
                "'communication')")

    def facts(self) -> EventFacts:
        return EventFacts(self.runs.users() if self._has_uid else None, self.ts_min, self.ts_max)


def check_events(scan: TableScan) -> tuple[list[Finding], EventFacts]:
    """Stream events.parquet once through every check."""
    checks = EventChecks(scan.rel)
    read_as = {}
    if "fields" in scan.plan and (leaf := map_keys_leaf(scan.pf, "fields")):
        read_as["fields"] = leaf  # the stream needs only the keys; values from a head sample
        try:
            checks.fields.sample_head(scan.pf)
        except (pa.ArrowException, OSError):
            pass  # the stream below reports the unreadable file
    for offset, cols in scan.batches(read_as=read_as):
        checks.update(offset, cols)
    return scan.finish() + checks.findings(), checks.facts()
