"""Column types: what the contract accepts, the exact cast that fixes a wrong one, and how to
coerce a mistyped column well enough to keep checking its content.

Accepted beyond `schema.types_match`: a struct whose children are all strings wherever the
contract says map<string,string> (`fields`, `attributes`). That is what pyarrow infers from
python dicts (`pa.table({"fields": [{"amount": "42.10"}, ...]})`, the tutorial's code); each
child is a key and a null child means the key is absent from that row.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.data import schema

# Formats tried, in order, to suggest a `pc.strptime` for string timestamps.
_TS_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
)


def is_string_struct(t: pa.DataType) -> bool:
    """struct<k1: string, k2: string, ...> — pyarrow's inference for dicts of strings."""
    return pa.types.is_struct(t) and all(
        pa.types.is_string(t.field(i).type) for i in range(t.num_fields)
    )


def accepts(actual: pa.DataType, expected: pa.DataType) -> bool:
    """The contract check for one column (see module docstring for the struct exception)."""
    if schema.types_match(actual, expected):
        return True
    return expected.equals(schema.STR_MAP) and is_string_struct(actual)


def _is_string_like(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or (pa.types.is_dictionary(t) and _is_string_like(t.value_type))
    )


def coerce(arr: pa.Array, expected: pa.DataType) -> pa.Array | None:
    """A version of `arr` that content checks can use, or None when that is not possible.

    Timestamps -> naive timestamp[us] (tz dropped: values are UTC instants either way);
    string-like or integer ids -> string; integer/bool flags -> int64 (so 300 stays 300);
    map and struct columns pass through unchanged (the fields checks read both).
    """
    t = arr.type
    try:
        if schema.is_timestamp_us(expected):
            if pa.types.is_timestamp(t):
                return pc.cast(arr, pa.timestamp("us"), safe=False)
            if pa.types.is_date(t):
                return pc.cast(arr, pa.timestamp("us"))
            if _is_string_like(t):
                return pc.cast(pc.cast(arr, pa.string()), pa.timestamp("us"))
            return None
        if pa.types.is_string(expected):
            if _is_string_like(t) or pa.types.is_integer(t):
                return pc.cast(arr, pa.string())
            return None
        if pa.types.is_integer(expected):
            if pa.types.is_integer(t) or pa.types.is_boolean(t):
                return pc.cast(arr, pa.int64())
            if pa.types.is_floating(t):
                return arr
            return None
        if pa.types.is_floating(expected):
            numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
            return pc.cast(arr, pa.float64()) if numeric else None
        if accepts(t, expected) or pa.types.is_map(t) or pa.types.is_struct(t) \
                or pa.types.is_list(t):
            return arr  # a list here is a map read as its keys only (scan.map_keys_leaf)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None


def dtype_hint(actual: pa.DataType, expected: pa.DataType) -> str:
    """Where a wrong type usually comes from, to append to the message ("" if unknown)."""
    if pa.types.is_timestamp(actual) and actual.unit == "ns":
        return " (pandas' default unit)"
    if pa.types.is_timestamp(actual) or pa.types.is_date(actual):
        return f" (unit '{getattr(actual, 'unit', 'day')}'; the contract uses microseconds)"
    if schema.is_timestamp_us(expected) and _is_string_like(actual):
        return " (timestamps written as text)"
    numeric = pa.types.is_integer(actual) or pa.types.is_floating(actual)
    if schema.is_timestamp_us(expected) and numeric:
        return " (epoch numbers)"
    if pa.types.is_string(expected) and pa.types.is_integer(actual):
        return " (ids must be strings)"
    if pa.types.is_dictionary(actual):
        return " (a pandas categorical)"
    if expected.equals(schema.STR_MAP) and (pa.types.is_struct(actual) or pa.types.is_map(actual)):
        return " (values must be raw strings such as '42.10', never numbers)"
    return ""


def type_code(t: pa.DataType) -> str:
    """The pyarrow expression that builds `t`, for fix messages."""
    if t.equals(schema.STR_MAP):
        return "pa.map_(pa.string(), pa.string())"
    if t.equals(schema.LIFELONG):
        return "pragmatiq.data.schema.LIFELONG"
    if pa.types.is_timestamp(t):
        return f'pa.timestamp("{t.unit}", tz="{t.tz}")' if t.tz else f'pa.timestamp("{t.unit}")'
    names = {pa.string(): "pa.string()", pa.int8(): "pa.int8()", pa.float64(): "pa.float64()"}
    for k, v in names.items():
        if t.equals(k):
            return v
    return f"pa.{t}()"


def _set(col: str, expr: str) -> str:
    return f'table = table.set_column(table.schema.get_field_index("{col}"), "{col}", {expr})'


def _cast(col: str, target: str, extra: str = "") -> str:
    return _set(col, f'pc.cast(table["{col}"], {target}{extra})')


def _numeric_ts_fix(col: str, sample: pa.Array | None) -> str:
    """Epoch numbers: guess the unit from the magnitude (1.7e9 s, 1.7e12 ms, 1.7e15 us)."""
    mag = None
    if sample is not None and len(sample.drop_null()):
        mag = abs(float(pc.max(pc.abs(pc.cast(sample.drop_null(), pa.float64()))).as_py()))
    us = 'pa.timestamp("us")'
    if mag is not None and mag < 1e11:
        expr = f'pc.cast(pc.cast(pc.multiply(table["{col}"], 1_000_000), pa.int64()), {us})'
        unit = "epoch seconds"
    elif mag is not None and mag < 1e14:
        expr = f'pc.cast(pc.cast(pc.multiply(table["{col}"], 1_000), pa.int64()), {us})'
        unit = "epoch milliseconds"
    elif mag is not None and mag >= 1e17:
        expr = f'pc.cast(pc.divide(pc.cast(table["{col}"], pa.int64()), 1_000), {us})'
        unit = "epoch nanoseconds"
    else:
        expr = f'pc.cast(pc.cast(table["{col}"], pa.int64()), {us})'
        unit = "epoch microseconds"
    return _set(col, expr) + f"  # values look like {unit}"


def _string_ts_fix(col: str, sample: pa.Array | None) -> str:
    """Find a parse that works on the sample: a plain ISO cast, else a strptime format."""
    s = None if sample is None else pc.cast(sample.drop_null(), pa.string())
    if s is not None and len(s):
        try:
            pc.cast(s, pa.timestamp("us"))
            return _cast(col, 'pa.timestamp("us")')
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        for fmt in _TS_FORMATS:
            try:
                pc.strptime(s, format=fmt, unit="us")
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            return _set(col, f'pc.strptime(table["{col}"], format="{fmt}", unit="us")')
    fmt = "<your format, e.g. %Y-%m-%d %H:%M:%S>"
    return _set(col, f'pc.strptime(table["{col}"], format="{fmt}", unit="us")')


def dtype_fix(col: str, actual: pa.DataType, expected: pa.DataType, schema_name: str,
              sample: pa.Array | None = None) -> str:
    """The exact code that turns column `col` of type `actual` into `expected`.

    `schema_name` is the contract schema's import path (`pragmatiq.data.schema.EVENTS`) for
    fixes that are easiest as a rebuild; `sample` (a few values) refines timestamp fixes.
    """
    rebuild = f"build the table with schema={schema_name} (pa.table({{...}}, schema={schema_name}))"
    if schema.is_timestamp_us(expected):
        tz = f', tz="{actual.tz}"' if pa.types.is_timestamp(actual) and actual.tz else ""
        target = f'pa.timestamp("us"{tz})'
        if pa.types.is_timestamp(actual) and actual.unit == "ns":
            return (_cast(col, target, ", safe=False") + "  # drops sub-microsecond digits; "
                    f"in pandas: df['{col}'] = df['{col}'].astype('datetime64[us]')")
        if pa.types.is_timestamp(actual) or pa.types.is_date(actual):
            return _cast(col, target)
        if _is_string_like(actual):
            return _string_ts_fix(col, sample)
        if pa.types.is_integer(actual) or pa.types.is_floating(actual):
            return _numeric_ts_fix(col, sample)
        return rebuild
    if pa.types.is_string(expected) and (_is_string_like(actual) or pa.types.is_integer(actual)):
        return _cast(col, "pa.string()")
    if pa.types.is_integer(expected) and (
        pa.types.is_integer(actual) or pa.types.is_boolean(actual) or pa.types.is_floating(actual)
    ):
        return _cast(col, type_code(expected))
    numeric = pa.types.is_integer(actual) or pa.types.is_floating(actual)
    if pa.types.is_floating(expected) and numeric:
        return _cast(col, type_code(expected))
    if expected.equals(schema.STR_MAP) and pa.types.is_map(actual):
        return _cast(col, type_code(expected)) + "  # values become strings: 42.1 -> '42.1'"
    if expected.equals(schema.LIFELONG) and pa.types.is_list(actual):
        return _cast(col, type_code(expected), ", safe=False")
    return rebuild
