"""Token-budget sampler, collation into PackedBatch, the prefetching loader."""

import numpy as np
import pytest
import torch

from pragmatiq.tokenizer import BatchLoader, TokenBudgetSampler, TokenDataset, collate


def test_every_user_once_budget_respected_oversize_alone():
    rng = np.random.default_rng(0)
    costs = np.r_[rng.integers(10, 500, 300), [5000, 7000]]
    s = TokenBudgetSampler(costs, token_budget=1000, seed=1)
    batches = list(s)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(costs)))  # none dropped, none twice
    for b in batches:
        assert costs[b].sum() <= 1000 or len(b) == 1
    assert [300] in [list(b) for b in batches] and [301] in [list(b) for b in batches]


def test_order_depends_on_seed_and_epoch_only():
    costs = np.arange(1, 200)
    a = list(TokenBudgetSampler(costs, 300, seed=0))
    b = list(TokenBudgetSampler(costs, 300, seed=0))
    assert a == b
    s = TokenBudgetSampler(costs, 300, seed=0)
    s.set_epoch(1)
    assert list(s) != a
    assert list(TokenBudgetSampler(costs, 300, seed=2)) != a


def test_ranks_get_disjoint_equal_shares():
    costs = np.full(101, 10)
    parts = [list(TokenBudgetSampler(costs, 40, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1])
    covered = set(np.concatenate(parts[0] + parts[1]).tolist())
    assert covered == set(range(101))


def test_resume_mid_epoch():
    costs = np.arange(1, 120)
    full = list(TokenBudgetSampler(costs, 200, seed=4))
    s = TokenBudgetSampler(costs, 200, seed=4)
    it = iter(s)
    head = [next(it) for _ in range(5)]
    state = s.state_dict()
    resumed = TokenBudgetSampler(costs, 200, seed=4)
    resumed.load_state_dict(state)
    assert head + list(resumed) == full


def test_collate_offsets_match_rows(tok):
    ds = TokenDataset(tok)
    rows = ds.read([0, 5, 9])
    b = collate(rows)
    assert b.n_users == 3 and b.cu_events.dtype == torch.int32
    assert b.cu_events.tolist() == np.r_[0, np.cumsum([r["n_events"] for r in rows])].tolist()
    assert int(b.cu_tokens[-1]) == b.n_tokens == sum(r["n_tokens"] for r in rows)
    assert int(b.cu_profile[-1]) == b.profile_key_ids.shape[0]
    assert b.max_tokens == max(int(r["event_ntok"].max()) for r in rows)
    first = rows[0]
    assert b.key_ids[: first["n_tokens"]].tolist() == first["key_ids"].tolist()


def test_loader_yields_every_user_and_resumes(tok):
    ds = TokenDataset(tok)
    sampler = TokenBudgetSampler(ds, token_budget=30_000, seed=0)
    loader = BatchLoader(ds, sampler, prefetch=3)
    seen = []
    for k, batch in enumerate(loader):
        seen.extend(batch.user_ids)
        if k == 1:
            state = loader.state_dict()
            break
    assert state["position"] == 2  # prefetched batches are not counted as consumed
    sampler2 = TokenBudgetSampler(ds, token_budget=30_000, seed=0)
    loader2 = BatchLoader(ds, sampler2)
    loader2.load_state_dict(state)
    rest = [u for b in loader2 for u in b.user_ids]
    assert sorted(seen + rest) == sorted(ds.user_ids)


def test_bad_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="token_budget"):
        TokenBudgetSampler([1, 2], 0)
