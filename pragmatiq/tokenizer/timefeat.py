"""Time features: log-seconds `tau` and the calendar (hour, day of week, day of month)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

US = 1_000_000


def tau(seconds: np.ndarray) -> np.ndarray:
    """tau(dt) = 8 * ln(1 + dt / 8), dt in seconds (negative dt clipped to 0) -> float32."""
    dt = np.maximum(np.asarray(seconds, dtype=np.float64), 0.0)
    return (8.0 * np.log1p(dt / 8.0)).astype(np.float32)


def calendar(ts_us: np.ndarray, tz: str = "UTC") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hour 0..23, day of week 0..6 Monday=0, day of month 1..31) in timezone `tz`, int8."""
    arr = pa.array(np.asarray(ts_us, dtype=np.int64), pa.timestamp("us", tz=tz))
    hour = pc.hour(arr).to_numpy(zero_copy_only=False).astype(np.int8)
    dow = pc.day_of_week(arr).to_numpy(zero_copy_only=False).astype(np.int8)
    dom = pc.day(arr).to_numpy(zero_copy_only=False).astype(np.int8)
    return hour, dow, dom
