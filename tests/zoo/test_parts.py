"""Events encoded in parts on worker threads: the bounds, the same outputs and gradients as one
pass, and bitwise the same result on one thread or several, dropout included."""

import pytest
import torch

from pragmatiq.zoo import create_model
from pragmatiq.zoo.parts import part_bounds, parts_apply

from .conftest import make_batch


def _cu(lengths):
    return torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32)


@pytest.mark.parametrize("lengths,n", [([3, 1, 4, 1, 5, 9, 2, 6], 2), ([3, 1, 4, 1, 5, 9, 2, 6], 3),
                                       ([7], 4), ([1, 1], 5), ([10, 1, 1, 1], 2), ([0, 0, 4, 0], 2)])
def test_part_bounds_cover_every_segment_in_order(lengths, n):
    bounds = part_bounds(_cu(lengths), n)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(lengths)
    assert all(a < b for a, b in bounds)  # non-empty
    assert all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))  # contiguous
    assert len(bounds) <= min(n, len(lengths))


def test_part_bounds_balance_rows():
    cu = _cu([5] * 100)
    assert part_bounds(cu, 2) == [(0, 50), (50, 100)]
    assert [b - a for a, b in part_bounds(cu, 4)] == [25, 25, 25, 25]


def _model(**kw):
    torch.manual_seed(0)
    return create_model("nano", vocab_size=500, **kw)


def _loss_and_grads(model, batch):
    out = model(batch)
    loss = out.token_states.square().sum() + out.event_states.square().sum() + out.user_emb.sum()
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [out.token_states, out.event_states, out.user_emb], {n: p.grad.clone() for n, p in model.named_parameters()
                                                               if p.grad is not None}


def test_parts_give_the_one_pass_outputs_and_gradients():
    batch = make_batch(events_per_user=[9, 0, 14, 3], profile_per_user=[2, 3, 0, 4], seed=3)
    model = _model(dropout=0.0).train()
    whole_out, whole_grads = _loss_and_grads(model, batch)
    model.event_workers = 2
    parts_out, parts_grads = _loss_and_grads(model, batch)
    for a, b in zip(whole_out, parts_out):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert whole_grads.keys() == parts_grads.keys()
    assert "event_encoder.blocks.0.attn.qkv.weight" in parts_grads
    for name in whole_grads:
        torch.testing.assert_close(whole_grads[name], parts_grads[name], rtol=1e-4, atol=5e-5, msg=name)


def test_parts_are_bitwise_the_same_on_one_thread_or_two():
    """Each part draws its dropout masks from its own seeded stream: one worker running both
    parts in turn and two running them side by side give the same bits."""
    model = _model().train()  # dropout 0.1
    x = torch.randn(40, model.config.d_model)
    cu = _cu([4, 6, 3, 7, 5, 2, 8, 5])
    params = list(model.event_encoder.parameters())

    def run(bounds):
        lo, hi = bounds
        r0, r1 = int(cu[lo]), int(cu[hi])
        cu_part = (cu[lo:hi + 1] - r0).to(torch.int32)
        return (model.event_encoder(model.drop(x[r0:r1]), cu_part, 8),)

    results = []
    for workers in (1, 2, 2):
        torch.manual_seed(7)
        (y,) = parts_apply(run, part_bounds(cu, 2), params, workers)
        model.zero_grad(set_to_none=True)
        (y.square().sum()).backward()
        results.append((y.detach(), [p.grad.clone() for p in params]))
    for y, grads in results[1:]:
        assert torch.equal(y, results[0][0])
        assert all(torch.equal(a, b) for a, b in zip(grads, results[0][1]))
    assert not torch.equal(results[0][0], run((0, 8))[0].detach())  # dropout did act


def test_parts_only_where_they_apply():
    model = _model()
    model.event_workers = 2
    batch = make_batch(events_per_user=[5, 4], profile_per_user=[1, 2], seed=4)
    model.eval()
    assert not model._event_parts(batch.key_ids, None, heads=False)  # inference
    model.train()
    assert model._event_parts(batch.key_ids, None, heads=False)
    with torch.no_grad():
        assert not model._event_parts(batch.key_ids, None, heads=False)
    assert not model._event_parts(batch.key_ids, torch.tensor([0]), heads=False)  # text vectors
    with_attn_dropout = _model(attn_dropout=0.1).train()
    with_attn_dropout.event_workers = 2
    assert not with_attn_dropout._event_parts(batch.key_ids, None, heads=False)
