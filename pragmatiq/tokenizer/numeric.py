"""Numeric values: parse raw strings and bucket them by percentile edges."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.data.schema import NUMBER_PATTERN as _NUMBER


def parse_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(numbers (F,) float64, ok (F,) bool). Not ok: null, empty, unparsable, NaN/inf, overflow
    (e.g. "1e400")."""
    values = pc.cast(values, pa.string())
    match = pc.fill_null(pc.match_substring_regex(values, _NUMBER), False)
    ok = match.to_numpy(zero_copy_only=False)
    out = np.zeros(len(values), np.float64)
    if ok.any():
        nums = pc.cast(pc.utf8_trim_whitespace(values.filter(match)), pa.float64())
        out[ok] = nums.to_numpy(zero_copy_only=False)
        ok = ok & np.isfinite(out)
        out[~ok] = 0.0
    return out, ok


def bucketize(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Value index within a numeric key: 0 for exactly zero, else 1 + percentile bucket
    (values beyond the edges clip to the end buckets)."""
    idx = np.searchsorted(edges, x, side="right") + 1
    return np.where(x == 0, 0, idx).astype(np.int64)
