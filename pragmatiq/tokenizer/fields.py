"""Flatten a `fields`/`attributes` column into parallel (row, key, value) arrays.

Both contract forms are read alike: `map<string,string>` and a struct whose children are all
strings (what pyarrow infers from Python dicts). A null value is a missing one: its entry is
dropped in both forms, as if the key were absent. Vectorized: one pass per struct child, never
per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def flatten_kv(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """-> (row (F,) int64, keys (F,) string, values (F,) string) for the F entries with a value."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_map(column.type):
        offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        if column.null_count:  # a null map may still own offsets in some writers: drop them
            lengths = np.diff(offsets)
            lengths[~column.is_valid().to_numpy(zero_copy_only=False)] = 0
        else:
            lengths = np.diff(offsets)
        start = offsets[0]
        keys = column.keys.slice(start, offsets[-1] - start) if len(column) else column.keys
        items = column.items.slice(start, offsets[-1] - start) if len(column) else column.items
        row = np.repeat(np.arange(len(column), dtype=np.int64), np.diff(offsets))
        if column.null_count or items.null_count:
            keep = np.repeat(lengths > 0, np.diff(offsets))  # entries of null maps removed
            keep &= items.is_valid().to_numpy(zero_copy_only=False)  # and null values: missing
            row, keys, items = row[keep], keys.filter(keep), items.filter(keep)
        return row, pc.cast(keys, pa.string()), pc.cast(items, pa.string())
    if pa.types.is_struct(column.type):
        rows, keys, values = [], [], []
        parent_valid = column.is_valid().to_numpy(zero_copy_only=False)
        for i in range(column.type.num_fields):
            name = column.type.field(i).name
            child = column.field(i)
            valid = child.is_valid().to_numpy(zero_copy_only=False) & parent_valid
            idx = np.flatnonzero(valid)
            rows.append(idx)
            keys.append(pa.array([name] * len(idx), pa.string()))
            values.append(pc.cast(child.filter(pa.array(valid)), pa.string()))
        if not rows:
            return np.zeros(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string())
        row = np.concatenate(rows)
        order = np.argsort(row, kind="stable")
        return (row[order], pa.concat_arrays(keys).take(pa.array(order)),
                pa.concat_arrays(values).take(pa.array(order)))
    raise TypeError(f"expected a map<string,string> or struct of strings column, got {column.type}")
