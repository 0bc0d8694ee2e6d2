"""`crop_row`: a user row cut to its most recent events that fit a token budget.

A user's cost (rows.user_columns) is its event tokens + 2 per event ([EVT] and its history
slot) + profile tokens + 2. A user above the training budget would be a batch of its own, as
large as its history; cropped, it keeps the profile and the newest events whose cost fits (at
least one event), so no batch exceeds the budget by more than one event.
"""

from __future__ import annotations

import numpy as np

EVENT_COLUMNS = ("event_ntok", "event_tau", "event_hour", "event_dow", "event_dom")  # one value per event
TOKEN_COLUMNS = ("key_ids", "value_ids", "positions")  # one value per event token


def events_within(event_ntok: np.ndarray, n_profile: int, budget: int) -> int:
    """How many of the newest events (the list's tail) fit `budget` with the profile: at least 1
    when there are events."""
    per_event = event_ntok[::-1].astype(np.int64) + 2  # newest first
    fits = int(np.searchsorted(np.cumsum(per_event), budget - n_profile - 2, side="right"))
    return min(len(event_ntok), max(fits, 1))


def crop_row(row: dict, budget: int) -> dict:
    """A `TokenDataset` row whose cost exceeds `budget` -> the same row with only its newest
    events that fit (`events_within`); a row within the budget is returned as is."""
    if int(row["cost"]) <= budget:
        return row
    ntok = row["event_ntok"]
    keep = events_within(ntok, len(row["profile_tau"]), budget)
    first_event = len(ntok) - keep
    first_token = int(ntok[:first_event].astype(np.int64).sum())
    out = dict(row)
    for name in EVENT_COLUMNS:
        out[name] = row[name][first_event:]
    for name in TOKEN_COLUMNS:
        out[name] = row[name][first_token:]
    n_tokens = len(out["key_ids"])
    out["n_events"], out["n_tokens"] = np.int32(keep), np.int32(n_tokens)
    out["cost"] = np.int32(n_tokens + 2 * keep + len(row["profile_tau"]) + 2)
    if "text_index" in row:  # sentinels among the kept tokens, renumbered
        kept = row["text_index"] >= first_token
        out["text_index"] = (row["text_index"][kept] - first_token).astype(row["text_index"].dtype)
        out["texts"] = row["texts"][kept]
    return out
