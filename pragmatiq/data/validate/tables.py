"""profiles.parquet and transfers.parquet content checks.

Profiles hold one row per user, so their user ids (O(users)) are kept whole to find
duplicates; transfers are streamed and only their distinct endpoints are kept.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.data.validate.fields import KeyValueChecks
from pragmatiq.data.validate.report import ERROR, Finding
from pragmatiq.data.validate.scan import IdSet, TableScan, quote


def check_profiles(scan: TableScan) -> tuple[list[Finding], pa.Array | None]:
    """Nulls, types, duplicate users and identifier-like attributes; returns the user ids."""
    attributes = KeyValueChecks(scan.rel, "attributes", report_empty=False, unit="profiles")
    ids: list[pa.Array] = []
    for offset, cols in scan.batches():
        if "user_id" in cols:
            ids.append(cols["user_id"].drop_null())
        attributes.update(offset, cols)
    out = scan.finish() + attributes.findings()
    if "user_id" not in scan.plan or not ids:
        return out, None
    counts = pc.value_counts(pa.concat_arrays(ids))
    return out + duplicate_profiles(counts, scan.rel), counts.field("values")


def duplicate_profiles(counts: pa.StructArray, rel: str) -> list[Finding]:
    """The error for users with more than one profile row; `counts` is `pc.value_counts` of
    the non-null profile user ids."""
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if not len(dup):
        return []
    ex = tuple(f"{quote(d['values'])} ({d['counts']} rows)" for d in dup.slice(0, 3).to_pylist())
    return [Finding(
        ERROR, rel, "user_id", "duplicate-profile",
        "users with more than one profile row (one row per user)", len(dup), ex,
        "keep one row per user, e.g. the latest: df.sort_values('as_of')"
        ".drop_duplicates('user_id', keep='last')", "users")]


def check_transfers(scan: TableScan) -> tuple[list[Finding], pa.Array | None]:
    """Types and nulls; returns the distinct users on either side of a transfer."""
    ends = IdSet()
    for _, cols in scan.batches():
        for side in ("from_user", "to_user"):
            if side in cols:
                ends.add(cols[side])
    users = ends.values() if {"from_user", "to_user"} & set(scan.plan) else None
    return scan.finish(), users
