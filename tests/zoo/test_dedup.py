from __future__ import annotations

import torch

from pragmatiq.zoo import create_model, dedup
from pragmatiq.zoo.dedup import first_occurrences, gather_segments, token_codes, unique_segments
from tests.zoo.conftest import _cu, make_batch


def _codes(*segments: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([c for s in segments for c in s], dtype=torch.int64), _cu([len(s) for s in segments])


def test_first_occurrences_number_values_by_first_appearance():
    first, inverse = first_occurrences(torch.tensor([9, -4, 9, 7, -4, 9]))
    assert first.tolist() == [0, 1, 3] and inverse.tolist() == [0, 1, 0, 2, 1, 0]
    first, inverse = first_occurrences(torch.empty(0, dtype=torch.int64))
    assert first.shape == (0,) and inverse.shape == (0,)


def test_unique_segments_in_order_of_first_appearance():
    codes, cu = _codes([7, 8], [9], [7, 8], [7, 8, 0], [9], [8, 7], [7])
    first, inverse = unique_segments(codes, cu)
    assert first.tolist() == [0, 1, 3, 5, 6]
    assert inverse.tolist() == [0, 1, 0, 2, 1, 3, 4]


def test_unique_segments_empty_segments_and_batch():
    codes, cu = _codes([], [5], [], [5])
    first, inverse = unique_segments(codes, cu)
    assert first.tolist() == [0, 1] and inverse.tolist() == [0, 1, 0, 1]
    first, inverse = unique_segments(*_codes())
    assert first.numel() == 0 and inverse.numel() == 0


def test_a_hash_collision_is_caught_not_trusted(monkeypatch):
    """With a degenerate multiplier every same-length sequence hashes alike: the token-by-token
    check must refuse the grouping instead of merging different events."""
    monkeypatch.setattr(dedup, "_MULT", 0)
    codes, cu = _codes([1, 2], [3, 4])
    assert unique_segments(codes, cu) is None
    codes, cu = _codes([1, 2], [1, 2])  # equal sequences still group
    assert unique_segments(codes, cu)[1].tolist() == [0, 0]


def test_token_codes_tell_key_value_and_position_apart():
    k = torch.tensor([5, 5, 6, 5])
    v = torch.tensor([6, 6, 5, 6])
    p = torch.tensor([0, 1, 0, 0])
    c = token_codes(k, v, p, vocab_size=10).tolist()
    assert c[0] == c[3] and len({c[0], c[1], c[2]}) == 3
    far = token_codes(torch.tensor([5, 5]), torch.tensor([6, 7]), torch.tensor([1 << 16, 0]), vocab_size=10)
    assert far[0] != far[1]  # a long position never runs into the value's place


def test_gather_segments_rows_and_offsets():
    cu = _cu([2, 3, 1])
    rows, new_cu, longest = gather_segments(cu, torch.tensor([2, 0]))
    assert rows.tolist() == [5, 0, 1] and new_cu.tolist() == [0, 1, 3] and longest == 2
    rows, new_cu, longest = gather_segments(cu, torch.zeros(0, dtype=torch.int64))
    assert rows.numel() == 0 and new_cu.tolist() == [0] and longest == 0


def test_embed_encodes_each_distinct_event_once():
    """A batch full of repeated events (few ids, short events): the user embeddings equal the
    ones computed with every event encoded, and the event encoder saw fewer events."""
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=16).eval()
    batch = make_batch(events_per_user=[9, 0, 14, 5], profile_per_user=[3, 1, 0, 2], vocab=7, seed=4,
                       force_lengths=[1, 2, 1])
    distinct = unique_segments(token_codes(batch.key_ids, batch.value_ids, batch.positions, 16), batch.cu_tokens)
    assert distinct is not None and distinct[0].numel() < batch.n_events
    seen = []
    hook = model.event_encoder.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    fast = model.embed(batch)
    assert seen == [distinct[0].numel()]
    model.distinct_events = False
    every = model.embed(batch)
    assert seen[-1] == batch.n_events
    hook.remove()
    torch.testing.assert_close(fast, every, atol=1e-6, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(fast, model(batch).user_emb, atol=1e-5, rtol=0)


def test_training_mode_never_deduplicates():
    """Dropout draws differ per row while training: every event is encoded."""
    model = create_model("nano", vocab_size=16).train()
    batch = make_batch(events_per_user=[6, 3], profile_per_user=[1, 1], vocab=7, seed=5, force_lengths=[1])
    seen = []
    model.event_encoder.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    model(batch, heads_only=True)
    assert seen == [batch.n_events]
