"""Random ragged PackedBatch instances built directly (no tokenizer dependency)."""

from __future__ import annotations

import pytest
import torch

from pragmatiq.tokenizer.packed import PackedBatch


def _cu(lengths: list[int]) -> torch.Tensor:
    return torch.tensor([0] + torch.tensor(lengths, dtype=torch.int64).cumsum(0).tolist(), dtype=torch.int32)


def make_batch(events_per_user: list[int], profile_per_user: list[int], vocab: int = 500, seed: int = 0,
               max_event_tokens: int = 24, force_lengths: list[int] | None = None, d_text: int = 0):
    """A random PackedBatch: users with the given event counts and profile lengths.

    Event token counts are drawn from 1..max_event_tokens unless `force_lengths` cycles fixed ones.
    """
    g = torch.Generator().manual_seed(seed)
    n_ev = sum(events_per_user)
    if force_lengths:
        tok_lens = [force_lengths[i % len(force_lengths)] for i in range(n_ev)]
    else:
        tok_lens = torch.randint(1, max_event_tokens + 1, (n_ev,), generator=g).tolist()
    T, P = sum(tok_lens), sum(profile_per_user)
    ids = lambda n: torch.randint(5, vocab, (n,), generator=g)  # noqa: E731
    batch = PackedBatch(
        key_ids=ids(T), value_ids=ids(T), positions=torch.randint(0, 6, (T,), generator=g),
        cu_tokens=_cu(tok_lens), max_tokens=max(tok_lens, default=0),
        event_tau=torch.rand(n_ev, generator=g) * 120, event_hour=torch.randint(0, 24, (n_ev,), generator=g),
        event_dow=torch.randint(0, 7, (n_ev,), generator=g), event_dom=torch.randint(1, 32, (n_ev,), generator=g),
        cu_events=_cu(events_per_user), max_events=max(events_per_user, default=0),
        profile_key_ids=ids(P), profile_value_ids=ids(P), profile_positions=torch.zeros(P, dtype=torch.int64),
        profile_tau=torch.rand(P, generator=g) * 100, cu_profile=_cu(profile_per_user),
        max_profile=max(profile_per_user, default=0), user_ids=[f"u{i}" for i in range(len(events_per_user))],
    )
    if d_text and T:
        n = min(3, T)
        batch.text_token_index = torch.randperm(T, generator=g)[:n]
        batch.texts = ["x"] * n
        batch.text_vectors = torch.randn(n, d_text, generator=g)
    return batch


def user_slice(b: PackedBatch, u: int) -> PackedBatch:
    """The sub-batch holding only user u (for one-at-a-time parity)."""
    e0, e1 = int(b.cu_events[u]), int(b.cu_events[u + 1])
    t0, t1 = int(b.cu_tokens[e0]), int(b.cu_tokens[e1])
    p0, p1 = int(b.cu_profile[u]), int(b.cu_profile[u + 1])
    cu_t = (b.cu_tokens[e0:e1 + 1] - t0).to(torch.int32)
    lens = (cu_t[1:] - cu_t[:-1]).tolist()
    return PackedBatch(
        key_ids=b.key_ids[t0:t1], value_ids=b.value_ids[t0:t1], positions=b.positions[t0:t1], cu_tokens=cu_t,
        max_tokens=max(lens, default=0), event_tau=b.event_tau[e0:e1], event_hour=b.event_hour[e0:e1],
        event_dow=b.event_dow[e0:e1], event_dom=b.event_dom[e0:e1],
        cu_events=torch.tensor([0, e1 - e0], dtype=torch.int32), max_events=e1 - e0,
        profile_key_ids=b.profile_key_ids[p0:p1], profile_value_ids=b.profile_value_ids[p0:p1],
        profile_positions=b.profile_positions[p0:p1], profile_tau=b.profile_tau[p0:p1],
        cu_profile=torch.tensor([0, p1 - p0], dtype=torch.int32), max_profile=p1 - p0, user_ids=[b.user_ids[u]],
    )


@pytest.fixture
def ragged_batch():
    """5 users: 1 event, 0 events (empty history), empty profile, many events, 24-token events."""
    return make_batch(events_per_user=[1, 0, 7, 12, 3], profile_per_user=[4, 2, 0, 9, 5], seed=1,
                      force_lengths=None)


@pytest.fixture
def capped_batch():
    """Every event at the 24-token cap, plus 1-token events."""
    return make_batch(events_per_user=[2, 0, 4], profile_per_user=[0, 3, 1], seed=2, force_lengths=[24, 1, 24])
