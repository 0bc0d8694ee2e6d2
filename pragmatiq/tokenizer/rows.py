"""Token rows: the columns of one row per user (ROW_SCHEMA) built from flat NumPy arrays, as an
Arrow table for the shards or as dicts of NumPy arrays for the records path.

Shapes: U users; a list column is (counts (U,), flat values (sum counts,)).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pragmatiq.tokenizer.segments import starts

_L = pa.list_
ROW_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("n_events", pa.int32()),
    ("n_tokens", pa.int32()),
    ("n_profile", pa.int32()),
    ("cost", pa.int32()),
    ("key_ids", _L(pa.int32())),
    ("value_ids", _L(pa.int32())),
    ("positions", _L(pa.int8())),
    ("event_ntok", _L(pa.int8())),
    ("event_tau", _L(pa.float32())),
    ("event_hour", _L(pa.int8())),
    ("event_dow", _L(pa.int8())),
    ("event_dom", _L(pa.int8())),
    ("profile_key_ids", _L(pa.int32())),
    ("profile_value_ids", _L(pa.int32())),
    ("profile_positions", _L(pa.int8())),
    ("profile_tau", _L(pa.float32())),
])
TEXT_FIELDS = [("text_index", _L(pa.int32())), ("texts", _L(pa.string()))]
_NUMPY = {pa.int32(): np.int32, pa.int8(): np.int8, pa.float32(): np.float32, pa.string(): object}


def row_schema(nemotron: bool) -> pa.Schema:
    return pa.schema(list(ROW_SCHEMA) + (TEXT_FIELDS if nemotron else []))


def _lists(counts: np.ndarray, values: np.ndarray, typ: pa.DataType) -> pa.Array:
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, typ))


def user_columns(user_list, n_events, n_tokens, n_profile, tok, ev, prof, text_cols) -> dict:
    tok_key, tok_val, tok_pos = tok
    event_ntok, event_tau, hour, dow, dom = ev
    p_key, p_val, p_pos, p_tau = prof
    cost = n_tokens + 2 * n_events + n_profile + 2  # event tokens + [EVT]s, history, profile + [USR]
    cols = {
        "user_id": user_list, "n_events": n_events, "n_tokens": n_tokens, "n_profile": n_profile,
        "cost": cost,
        "key_ids": (n_tokens, tok_key), "value_ids": (n_tokens, tok_val), "positions": (n_tokens, tok_pos),
        "event_ntok": (n_events, event_ntok), "event_tau": (n_events, event_tau),
        "event_hour": (n_events, hour), "event_dow": (n_events, dow), "event_dom": (n_events, dom),
        "profile_key_ids": (n_profile, p_key), "profile_value_ids": (n_profile, p_val),
        "profile_positions": (n_profile, p_pos), "profile_tau": (n_profile, p_tau),
    }
    if text_cols is not None:
        index, texts, counts = text_cols
        cols["text_index"] = (counts, index)
        cols["texts"] = (counts, texts)
    return cols


def columns_table(cols: dict) -> pa.Table:
    """`encode_columns` -> one row per user (ROW_SCHEMA, plus the text columns if present)."""
    schema = row_schema("texts" in cols)
    arrays = [_lists(*cols[f.name], f.type.value_type) if pa.types.is_list(f.type)
              else pa.array(cols[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def columns_rows(cols: dict, users: list[int]) -> list[dict]:
    """`encode_columns` -> the rows of `users` (positions) as dicts of NumPy arrays, typed as
    `TokenDataset` returns them."""
    rows: list[dict] = [{} for _ in users]
    for f in row_schema("texts" in cols):
        if pa.types.is_list(f.type):
            counts, values = cols[f.name]
            values = np.asarray(values).astype(_NUMPY[f.type.value_type], copy=False)
            first = starts(np.asarray(counts, np.int64))
            for row, k in zip(rows, users):
                row[f.name] = values[first[k]:first[k] + counts[k]]
        else:
            col = cols[f.name]
            for row, k in zip(rows, users):
                row[f.name] = col[k] if f.name == "user_id" else int(col[k])
    return rows
