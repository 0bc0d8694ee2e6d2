from __future__ import annotations

import torch

from pragmatiq.zoo import create_model, dedup
from pragmatiq.zoo.dedup import segment_hashes, token_codes
from pragmatiq.zoo.event_cache import EventStateCache
from tests.zoo.conftest import _cu, make_batch


def _events(*segments: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (hashes (K,), codes (N,), cu (K+1,)) of the given code sequences."""
    codes = torch.tensor([c for s in segments for c in s], dtype=torch.int64)
    cu = _cu([len(s) for s in segments])
    return segment_hashes(codes, cu), codes, cu


def test_lookup_finds_what_add_stored():
    cache = EventStateCache()
    h, codes, cu = _events([1, 2], [3], [4, 5, 6])
    assert cache.lookup(h, codes, cu).tolist() == [-1, -1, -1]
    states = torch.arange(9, dtype=torch.float32).view(3, 3)
    cache.add(h, codes, cu, states)
    h2, codes2, cu2 = _events([4, 5, 6], [7], [1, 2])
    rows = cache.lookup(h2, codes2, cu2)
    assert rows[1] == -1
    torch.testing.assert_close(cache.states(rows[[0, 2]]), states[[2, 0]], rtol=0, atol=0)
    assert (cache.hits, cache.misses, cache.n_events) == (2, 4, 3)
    cache.add(h, codes, cu, states + 100)  # a held event keeps its state
    torch.testing.assert_close(cache.states(cache.lookup(h, codes, cu)), states, rtol=0, atol=0)


def test_a_hash_collision_is_a_miss(monkeypatch):
    """With a degenerate multiplier every same-length sequence hashes alike: a different event
    under a held hash must be encoded, not given the held one's state."""
    monkeypatch.setattr(dedup, "_MULT", 0)
    cache = EventStateCache()
    h, codes, cu = _events([1, 2])
    cache.add(h, codes, cu, torch.ones(1, 4))
    h2, codes2, cu2 = _events([2, 1], [1, 2], [9])
    assert h2[0] == h[0]
    assert cache.lookup(h2, codes2, cu2).tolist() == [-1, 0, -1]


def test_an_added_batch_keeps_the_first_of_equal_hashes(monkeypatch):
    monkeypatch.setattr(dedup, "_MULT", 0)
    cache = EventStateCache()
    h, codes, cu = _events([1, 2], [3, 4], [5])  # the first two share a hash
    cache.add(h, codes, cu, torch.arange(3, dtype=torch.float32)[:, None].expand(3, 2))
    assert cache.n_events == 2
    rows = cache.lookup(h, codes, cu)
    assert rows[1] == -1
    assert cache.states(rows[[0, 2]])[:, 0].tolist() == [0.0, 2.0]


def test_index_finds_every_key_across_merged_runs():
    from pragmatiq.zoo.event_cache import _SortedIndex

    index, g = _SortedIndex(), torch.Generator().manual_seed(0)
    keys = torch.randperm(10_000, generator=g) * 7919 - 30_000  # distinct, negative ones too
    at = 0
    for n in (1, 5, 3, 200, 50, 1000, 7, 2000):
        index.insert(keys[at:at + n], torch.arange(at, at + n))
        at += n
    assert len(index.runs) < 8
    assert torch.equal(index.find(keys[:at]), torch.arange(at))
    assert (index.find(keys[at:]) == -1).all()


def test_max_bytes_bounds_the_cache():
    h, codes, cu = _events([1], [2], [3], [4])
    full = EventStateCache(max_bytes=0)
    full.add(h, codes, cu, torch.zeros(4, 8))
    assert full.n_events == 0 and full.lookup(h, codes, cu).tolist() == [-1] * 4
    some = EventStateCache(max_bytes=2 * (16 + 16 + 8 * 4) + 8 * 2)
    some.add(h, codes, cu, torch.zeros(4, 8))
    assert some.n_events == 2 and some.nbytes <= some.max_bytes


def test_codes_with_a_fixed_span_refuse_positions_beyond_it():
    k, v = torch.tensor([5, 6]), torch.tensor([7, 8])
    assert token_codes(k, v, torch.tensor([0, 3]), vocab_size=10, span=4) is not None
    assert token_codes(k, v, torch.tensor([0, 4]), vocab_size=10, span=4) is None
    assert token_codes(k, v, torch.tensor([0, 1]), vocab_size=1 << 22, span=1 << 20) is None  # over 63 bits


def test_embed_with_a_cache_encodes_only_unseen_events():
    """Two batches sharing many events: with a cache the second encodes only the events the first
    did not hold, and both embeddings equal the ones computed without it."""
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=16).eval()
    a = make_batch(events_per_user=[9, 4], profile_per_user=[2, 1], vocab=7, seed=4, force_lengths=[1, 2])
    b = make_batch(events_per_user=[6, 8], profile_per_user=[1, 2], vocab=7, seed=9, force_lengths=[1, 2])
    with torch.inference_mode():
        plain = [model.embed(a), model.embed(b)]
        seen = []
        hook = model.event_encoder.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
        model.event_cache = cache = EventStateCache()
        cached = [model.embed(a), model.embed(b)]
        again = model.embed(b)
        hook.remove()
    assert cache.hits > 0 and cache.n_events == sum(seen)
    assert len(seen) == 2  # the repeat of b found every event held: the event encoder did not run
    for x, y in zip(plain + [plain[1]], cached + [again]):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)
