"""The CPU dropout: identity in eval, drops about p of the elements, unbiased, seeded, and its
gradient is the same mask and scale as its output."""

import pytest
import torch

from pragmatiq.zoo.dropout import Dropout


def test_identity_in_eval_and_at_zero():
    x = torch.randn(64, 8)
    assert Dropout(0.1).eval()(x) is x
    assert Dropout(0.0).train()(x) is x


def test_drop_rate_scale_and_gradient():
    torch.manual_seed(0)
    drop = Dropout(0.1).train()
    x = torch.ones(400_000, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 3e-3  # ~6 standard deviations
    assert torch.allclose(y[kept], torch.full_like(y[kept], drop.scale))
    assert abs(y.mean().item() - 1.0) < 5e-3  # unbiased
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(sum y)/dx = mask * scale = y for x = 1


def test_seeded():
    x = torch.randn(1000, 16)
    torch.manual_seed(3)
    a = Dropout(0.2).train()(x)
    torch.manual_seed(3)
    b = Dropout(0.2).train()(x)
    assert torch.equal(a, b)


def test_rejects_bad_probability():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_every_lane_of_a_draw_drops_at_the_rate():
    """Four elements share one 63-bit draw: each of the four positions (and an odd-sized tail)
    drops at p, none always or never."""
    from pragmatiq.zoo.dropout import keep_mask

    torch.manual_seed(0)
    threshold = round(0.25 * 2**15)
    keep = keep_mask(torch.Size([100_003]), threshold)  # not a multiple of four
    assert keep.shape == (100_003,)
    for lane in range(4):
        assert abs(1 - keep[lane::4].float().mean().item() - 0.25) < 0.01, lane  # ~4.6 std
    assert keep_mask(torch.Size([3, 5]), threshold).shape == (3, 5)
    assert keep_mask(torch.Size([0, 64]), threshold).shape == (0, 64)
