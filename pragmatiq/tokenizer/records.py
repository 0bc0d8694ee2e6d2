"""The serving path: JSON user records -> token rows -> PackedBatch.

A record is `{"user_id", "events": [{"ts", "source", "fields": {...}}], "attributes": {...},
"lifelong": [{"key", "ts"}], "as_of"?}` with `ts` as integer microseconds since the epoch or an
ISO-8601 string. Records are checked here; encoding is `encode.encode_users`, the same code the
batch path runs, so a user gets identical tokens either way.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from pragmatiq.data import schema
from pragmatiq.tokenizer.config import load_tokenizer_config
from pragmatiq.tokenizer.encode import UnkCounter, encode_columns
from pragmatiq.tokenizer.rows import columns_rows

_EPOCH = dt.datetime(1970, 1, 1)
_MIN_US = 10**13  # |ts| below this is seconds or milliseconds, not microseconds


class RecordError(ValueError):
    """A request record is malformed; the message names the record index and field."""


def _ts(value, where: str) -> int:
    if isinstance(value, bool):
        raise RecordError(f"{where}: expected integer microseconds or an ISO-8601 string, got {value!r}")
    if isinstance(value, int):
        if abs(value) < _MIN_US:
            unit = "seconds" if abs(value) < 10**10 else "milliseconds"
            raise RecordError(f"{where}: {value} looks like {unit} since the epoch; "
                              "ts must be integer microseconds (or an ISO-8601 string)")
        return value
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(f"{where}: {value!r} is not an ISO-8601 timestamp") from None
        if t.tzinfo is not None:
            t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return (t - _EPOCH) // dt.timedelta(microseconds=1)
    raise RecordError(f"{where}: expected integer microseconds or an ISO-8601 string, got "
                      f"{type(value).__name__}")


def _str_map(value, where: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise RecordError(f"{where}: expected an object of string values, got {type(value).__name__}")
    items = []
    for k, v in value.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise RecordError(f"{where}.{k}: expected a string value, got {type(v).__name__}")
        items.append((str(k), v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)))
    return items


def _plain_events(events: list) -> tuple[np.ndarray, pa.Array, pa.Array] | None:
    """The common case checked in bulk by Arrow: every event an object with integer µs `ts`, a
    string `source` and string field values. -> (ts (E,), source (E,), fields (E,)) in time
    order, or None when anything is unusual (then `_checked_events` goes one by one)."""
    try:
        ts = pa.array([e["ts"] for e in events])
        source = pa.array([e["source"] for e in events], pa.string())
        maps = [e.get("fields") or {} for e in events]
        if not all(isinstance(m, dict) for m in maps):  # Arrow would take a list of pairs too
            return None
        fields = pa.array(maps, schema.STR_MAP)
    except (KeyError, TypeError, AttributeError, OverflowError, pa.ArrowException):
        return None
    if len(events) and (ts.type != pa.int64() or ts.null_count):
        return None
    if source.null_count or fields.items.null_count:
        return None
    ts = ts.to_numpy(zero_copy_only=False).astype(np.int64)
    if np.any(np.abs(ts) < _MIN_US):
        return None
    order = np.argsort(ts, kind="stable")  # time order, stable
    return ts[order], source.take(pa.array(order)), fields.take(pa.array(order))


def _checked_events(events: list, where: str) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Every event checked and converted on its own; errors name the event and field."""
    parsed = []
    for j, e in enumerate(events):
        ew = f"{where}.events[{j}]"
        if not isinstance(e, dict):
            raise RecordError(f"{ew}: expected an object, got {type(e).__name__}")
        if "ts" not in e:
            raise RecordError(f"{ew}.ts: required")
        src = e.get("source")
        if not isinstance(src, str):
            raise RecordError(f"{ew}.source: required string, got {src!r}")
        parsed.append((_ts(e["ts"], f"{ew}.ts"), j, src, _str_map(e.get("fields"), f"{ew}.fields")))
    parsed.sort(key=lambda p: (p[0], p[1]))  # time order, stable
    return (np.asarray([p[0] for p in parsed], np.int64), pa.array([p[2] for p in parsed], pa.string()),
            pa.array([p[3] for p in parsed], schema.STR_MAP))


def records_to_tables(records) -> tuple[pa.Table, pa.Table]:
    """Check records and build contract-shaped events and profiles tables."""
    if not isinstance(records, list):
        raise RecordError(f"records: expected a JSON array of user records, got {type(records).__name__}")
    ev_ts, ev_src, ev_fields, n_events = [], [], [], []
    p_user, p_asof, p_attrs, p_life = [], [], [], []
    for i, rec in enumerate(records):
        where = f"record {i}"
        if not isinstance(rec, dict):
            raise RecordError(f"{where}: expected an object, got {type(rec).__name__}")
        uid = rec.get("user_id")
        if not isinstance(uid, str) or not uid:
            raise RecordError(f"{where}.user_id: required non-empty string, got {uid!r}")
        events = rec.get("events", [])
        if not isinstance(events, list):
            raise RecordError(f"{where}.events: expected an array, got {type(events).__name__}")
        ts, src, fields = _plain_events(events) or _checked_events(events, where)
        ev_ts.append(ts)
        ev_src.append(src)
        ev_fields.append(fields)
        n_events.append(len(ts))
        lifelong = rec.get("lifelong", [])
        if not isinstance(lifelong, list):
            raise RecordError(f"{where}.lifelong: expected an array, got {type(lifelong).__name__}")
        life = []
        for j, m in enumerate(lifelong):
            if not isinstance(m, dict) or not isinstance(m.get("key"), str):
                raise RecordError(f"{where}.lifelong[{j}]: expected {{\"key\": string, \"ts\": ...}}")
            life.append({"key": m["key"], "ts": _ts(m.get("ts"), f"{where}.lifelong[{j}].ts")})
        as_of = rec.get("as_of")
        as_of = _ts(as_of, f"{where}.as_of") if as_of is not None else int(ts.max(initial=0))
        p_user.append(uid)
        p_asof.append(as_of)
        p_attrs.append(_str_map(rec.get("attributes"), f"{where}.attributes"))
        p_life.append(life)
    users = pa.array(p_user, pa.string())
    events = pa.table({
        "user_id": users.take(pa.array(np.repeat(np.arange(len(p_user)), n_events))),
        "ts": pa.array(np.concatenate(ev_ts) if ev_ts else np.zeros(0, np.int64), pa.int64()).cast(schema.TS),
        "source": pa.concat_arrays(ev_src) if ev_src else pa.array([], pa.string()),
        "fields": pa.concat_arrays(ev_fields) if ev_fields else pa.array([], schema.STR_MAP),
    })
    profiles = pa.table({
        "user_id": users,
        "as_of": pa.array(np.asarray(p_asof, np.int64), pa.int64()).cast(schema.TS),
        "attributes": pa.array(p_attrs, schema.STR_MAP),
        "lifelong": pa.array([[{"key": m["key"], "ts": m["ts"]} for m in life] for life in p_life],
                             pa.list_(pa.struct([("key", pa.string()), ("ts", pa.int64())])))
        .cast(schema.LIFELONG),
    })
    return events, profiles


def encode_records(records, vocab, config=None, *, unk: UnkCounter | None = None) -> list[dict]:
    """Records -> one token row (dict of NumPy arrays) per record, in record order."""
    cfg = load_tokenizer_config(config if config is not None else vocab.config)
    events, profiles = records_to_tables(records)
    uids = [r["user_id"] for r in records]
    if len(set(uids)) != len(uids):
        dup = next(u for u in uids if uids.count(u) > 1)
        raise RecordError(f"user_id {dup!r} appears in more than one record")
    cols = encode_columns(events, profiles, vocab, cfg, None, unk)
    where = {u: k for k, u in enumerate(cols["user_id"])}
    return columns_rows(cols, [where[u] for u in uids])


def records_to_batch(records, vocab, config=None):
    """Records -> PackedBatch (users in record order)."""
    from pragmatiq.tokenizer.collate import collate

    return collate(encode_records(records, vocab, config))
