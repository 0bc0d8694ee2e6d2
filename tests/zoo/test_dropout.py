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
