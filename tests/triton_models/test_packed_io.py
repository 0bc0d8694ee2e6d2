"""The wire format between the Triton steps: PackedBatch <-> arrays, checks, request packing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pragmatiq.tokenizer import Vocab, records_to_batch
from pragmatiq.triton_models.packed_io import (
    PACKED_TENSORS, TENSOR_NAMES, USER_IDS, arrays_to_batch, batch_to_arrays, check_arrays, concat_arrays)


@pytest.fixture(scope="module")
def vocab(tiny_run):
    return Vocab.load(tiny_run / "vocab.json")


def _same_batch(a, b) -> None:
    for name in TENSOR_NAMES:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert (a.max_tokens, a.max_events, a.max_profile) == (b.max_tokens, b.max_events, b.max_profile)
    assert list(a.user_ids) == list(b.user_ids)


def test_round_trip_keeps_every_tensor_and_dtype(tiny_records, vocab):
    batch = records_to_batch(tiny_records, vocab)
    arrays = batch_to_arrays(batch)
    assert list(arrays) == list(TENSOR_NAMES) + [USER_IDS]
    for name, dtype, _, _ in PACKED_TENSORS:
        assert arrays[name].dtype == dtype and arrays[name].ndim == 1, name
    check_arrays(arrays)
    _same_batch(arrays_to_batch(arrays), batch)


def test_concat_equals_packing_all_users_at_once(tiny_records, vocab):
    parts = [batch_to_arrays(records_to_batch(tiny_records[a:b], vocab)) for a, b in ((0, 2), (2, 3), (3, 5))]
    packed, counts = concat_arrays(parts)
    assert counts == [2, 1, 2]
    check_arrays(packed)
    _same_batch(arrays_to_batch(packed), records_to_batch(tiny_records, vocab))


def test_concat_of_one_part_is_that_part(tiny_records, vocab):
    arrays = batch_to_arrays(records_to_batch(tiny_records[:1], vocab))
    assert concat_arrays([arrays]) == (arrays, [1])


@pytest.mark.parametrize("name, change, message", [
    ("cu_tokens", lambda a: a[:-1], "cu_tokens"),
    ("cu_events", lambda a: a + 1, "cu_events: offsets must start at 0"),
    ("cu_profile", lambda a: a[:1], "cu_profile"),
    ("key_ids", lambda a: a.reshape(1, -1), "key_ids: expected a 1-D tensor"),
    (USER_IDS, lambda a: a[:1], "user_ids has 1 entries for 5 users"),
])
def test_inconsistent_tensors_are_named(tiny_records, vocab, name, change, message):
    arrays = batch_to_arrays(records_to_batch(tiny_records, vocab))
    arrays[name] = change(arrays[name])
    with pytest.raises(ValueError, match=message):
        check_arrays(arrays)


def test_without_user_ids_users_are_numbered(tiny_records, vocab):
    arrays = batch_to_arrays(records_to_batch(tiny_records[:3], vocab))
    del arrays[USER_IDS]
    assert arrays_to_batch(arrays).user_ids == ["0", "1", "2"]
    assert np.array_equal(arrays["cu_events"], batch_to_arrays(arrays_to_batch(arrays))["cu_events"])
