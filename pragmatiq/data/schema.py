"""The parquet data contract (DESIGN §2) as Arrow schemas.

A dataset is one directory:

    events.parquet      required   user_id, ts, source, fields
    profiles.parquet    required   user_id, as_of, attributes, lifelong
    transfers.parquet   optional   from_user, to_user, ts, amount
    labels/<task>.parquet optional  user_id + task columns (LABEL_SCHEMAS)

Timestamps are `timestamp[us]`; a timezone-aware `timestamp[us, tz]` is accepted wherever a
timestamp is required (`is_timestamp_us`). Field and attribute values are raw strings.

`fields` and `attributes` are `map<string, string>`. A struct whose children are all strings is
accepted too: that is what pyarrow infers from a list of Python dicts (the tutorial's
`pa.table({... "fields": [{...}, {...}]})`). Each child is a key; a null child means the key is
absent from that row. Readers (validate, tokenizer) treat both forms alike.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us")
STR_MAP = pa.map_(pa.string(), pa.string())
LIFELONG = pa.list_(pa.struct([("key", pa.string()), ("ts", TS)]))

EVENTS_FILE = "events.parquet"
PROFILES_FILE = "profiles.parquet"
TRANSFERS_FILE = "transfers.parquet"
LABELS_DIR = "labels"

SOURCES = ("transaction", "app", "trading", "communication")

# A number as field and attribute values write it (what the tokenizer parses): optional sign,
# digits with an optional decimal point, optional exponent. Not "1,566.20", "£12", "NaN", "inf".
NUMBER_PATTERN = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
# a number written for people: a currency sign or code, thousands separators, a decimal comma,
# accounting parentheses ('£1,234.50', 'EUR 12.50', '(45.00)'); plain numbers match too
FORMATTED_NUMBER_PATTERN = (r"^\s*[-+(]?\s*(?:[$£€¥₹]|[A-Z]{3}\s?)?\s*[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)"
                            r"(?:\.\d+|,\d{1,2})?\s*(?:[A-Z]{3})?\)?\s*$")

EVENTS = pa.schema(
    [("user_id", pa.string()), ("ts", TS), ("source", pa.string()), ("fields", STR_MAP)]
)
PROFILES = pa.schema(
    [
        ("user_id", pa.string()),
        ("as_of", TS),
        ("attributes", STR_MAP),
        ("lifelong", LIFELONG),
    ]
)
TRANSFERS = pa.schema(
    [("from_user", pa.string()), ("to_user", pa.string()), ("ts", TS), ("amount", pa.float64())]
)

# Label tables by task. Columns beyond these are allowed; an unknown task needs only user_id.
_FORECAST = [("user_id", pa.string()), ("eval_ts", TS), ("label", pa.int8())]
LABEL_SCHEMAS: dict[str, pa.Schema] = {
    "default_12m": pa.schema(_FORECAST),
    "churn_6m": pa.schema(_FORECAST),
    "ltv_positive": pa.schema(_FORECAST + [("profit_6m", pa.float64())]),
    "aml": pa.schema(
        [("user_id", pa.string()), ("observed_through", TS), ("label", pa.int8())]
    ),
    "fraud": pa.schema([("user_id", pa.string()), ("ts", TS), ("label", pa.int8())]),
    "recurring": pa.schema(
        [("user_id", pa.string()), ("ts", TS), ("series_id", pa.string()), ("label", pa.int8())]
    ),
    "comm_uplift": pa.schema(
        [
            ("user_id", pa.string()),
            ("campaign_id", pa.string()),
            ("ts", TS),
            ("treated", pa.int8()),
            ("y0", pa.int8()),
            ("y1", pa.int8()),
        ]
    ),
}
# Columns whose values must be 0 or 1, by task.
BINARY_COLUMNS: dict[str, tuple[str, ...]] = {
    "default_12m": ("label",),
    "churn_6m": ("label",),
    "ltv_positive": ("label",),
    "aml": ("label",),
    "fraud": ("label",),
    "recurring": ("label",),
    "comm_uplift": ("treated", "y0", "y1"),
}
# Tasks whose label carries a cut time: histories are truncated to ts < eval_ts.
FORECAST_TASKS = ("default_12m", "churn_6m", "ltv_positive")

REQUIRED_FILES: dict[str, pa.Schema] = {EVENTS_FILE: EVENTS, PROFILES_FILE: PROFILES}
OPTIONAL_FILES: dict[str, pa.Schema] = {TRANSFERS_FILE: TRANSFERS}


def is_timestamp_us(t: pa.DataType) -> bool:
    """timestamp[us] with or without a timezone."""
    return pa.types.is_timestamp(t) and t.unit == "us"


def types_match(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Contract equality: exact, except timestamps may carry a timezone and map/list field
    names may differ (pyarrow writes `entries`/`element`, other writers `key_value`/`item`)."""
    if is_timestamp_us(expected):
        return is_timestamp_us(actual)
    if pa.types.is_map(expected):
        return (
            pa.types.is_map(actual)
            and types_match(actual.key_type, expected.key_type)
            and types_match(actual.item_type, expected.item_type)
        )
    if pa.types.is_list(expected):
        return pa.types.is_list(actual) and types_match(actual.value_type, expected.value_type)
    if pa.types.is_struct(expected):
        if not pa.types.is_struct(actual) or actual.num_fields != expected.num_fields:
            return False
        return all(
            actual.field(i).name == expected.field(i).name
            and types_match(actual.field(i).type, expected.field(i).type)
            for i in range(expected.num_fields)
        )
    return actual.equals(expected)
