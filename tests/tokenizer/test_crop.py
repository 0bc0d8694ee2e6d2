"""crop_row: a user above the budget keeps its newest events that fit, every column consistent."""

from __future__ import annotations

import numpy as np

from pragmatiq.tokenizer import collate
from pragmatiq.tokenizer.crop import crop_row, events_within


def _row(ntok: list[int], n_profile: int = 3, texts: bool = False) -> dict:
    ntok = np.array(ntok, np.int8)
    n_tokens, n_events = int(ntok.sum()), len(ntok)
    row = {"user_id": "u", "n_events": np.int32(n_events), "n_tokens": np.int32(n_tokens),
           "n_profile": np.int32(n_profile), "cost": np.int32(n_tokens + 2 * n_events + n_profile + 2),
           "key_ids": np.arange(n_tokens, dtype=np.int32), "value_ids": np.arange(n_tokens, dtype=np.int32) + 100,
           "positions": np.zeros(n_tokens, np.int8), "event_ntok": ntok,
           "event_tau": np.arange(n_events, 0, -1).astype(np.float32),
           "event_hour": np.arange(n_events, dtype=np.int8),
           "event_dow": np.zeros(n_events, np.int8), "event_dom": np.ones(n_events, np.int8),
           "profile_key_ids": np.arange(n_profile, dtype=np.int32),
           "profile_value_ids": np.arange(n_profile, dtype=np.int32),
           "profile_positions": np.zeros(n_profile, np.int8), "profile_tau": np.zeros(n_profile, np.float32)}
    if texts:  # a sentinel in the first and in the last event
        row["text_index"] = np.array([0, n_tokens - 1], np.int32)
        row["texts"] = np.array(["old shop", "new shop"], object)
    return row


def test_events_within_counts_the_newest_events_that_fit():
    ntok = np.array([5, 4, 3], np.int8)  # costs 7, 6, 5 newest first: 5, 11, 18
    assert events_within(ntok, n_profile=3, budget=5 + 5) == 1  # profile + 2 leave 5
    assert events_within(ntok, 3, 5 + 11) == 2
    assert events_within(ntok, 3, 5 + 18) == 3
    assert events_within(ntok, 3, 1) == 1  # never none


def test_crop_keeps_the_newest_events_and_renumbers_what_points_into_them():
    row = _row([5, 4, 3], texts=True)  # cost 12 + 6 + 3 + 2 = 23
    assert crop_row(row, 23) is row
    out = crop_row(row, 5 + 11)  # the two newest events
    assert out["event_ntok"].tolist() == [4, 3] and out["event_tau"].tolist() == [2.0, 1.0]
    assert out["key_ids"].tolist() == list(range(5, 12)) and out["value_ids"].tolist() == list(range(105, 112))
    assert (out["n_events"], out["n_tokens"], out["cost"]) == (2, 7, 7 + 4 + 3 + 2)
    assert out["profile_key_ids"].tolist() == [0, 1, 2]  # the profile stays whole
    assert out["text_index"].tolist() == [6] and out["texts"].tolist() == ["new shop"]
    batch = collate([out, row])
    assert batch.n_tokens == 7 + 12 and batch.cu_events.tolist() == [0, 2, 5]
    assert batch.text_token_index.tolist() == [6, 7, 18] and batch.texts == ["new shop", "old shop", "new shop"]
