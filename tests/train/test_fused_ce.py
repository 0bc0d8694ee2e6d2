"""The fused, chunked head loss equals `F.cross_entropy(F.linear(...), label_smoothing=...)`.

Loss and gradients in h, weight and bias are compared with the reference in fp32 at fp32
tolerance, over chunk sizes that do and do not divide M, several worker threads, with and
without bias and label smoothing, and for large logits (the float64 reference is the oracle).
"""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from pragmatiq._hardware import cpu_has_bf16
from pragmatiq.tokenizer import TokenDataset, collate
from pragmatiq.train.fused_ce import FLUSH_ROWS, _bounds, head_dtype, linear_cross_entropy
from pragmatiq.train.loss import mlm_loss_sum
from pragmatiq.train.masking import mask_batch, step_generator
from pragmatiq.zoo import create_model

RTOL, ATOL = 1e-5, 1e-6


def _inputs(m=70, v=300, d=16, scale=1.0, bias=True, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = (torch.randn(m, d, generator=g, dtype=dtype) * scale).requires_grad_()  # (M, d)
    w = (torch.randn(v, d, generator=g, dtype=dtype) * 0.5).requires_grad_()  # (V, d)
    b = (torch.randn(v, generator=g, dtype=dtype) * 0.1).requires_grad_() if bias else None  # (V,)
    y = torch.randint(0, v, (m,), generator=g)  # (M,)
    return h, w, b, y


def _reference(h, w, b, y, eps, grad_scale=1.0):
    z = F.linear(h, w, b)  # (M, V)
    loss = F.cross_entropy(z, y, label_smoothing=eps, reduction="sum")
    (loss * grad_scale).backward()
    correct = (z.argmax(-1) == y).sum()
    return loss.detach(), correct, [t.grad.clone() for t in (h, w, b) if t is not None]


def _fused(h, w, b, y, eps, grad_scale=1.0, **kw):
    for t in (h, w, b):
        if t is not None:
            t.grad = None
    loss, correct = linear_cross_entropy(h, w, b, y, label_smoothing=eps, **kw)
    (loss * grad_scale).backward()
    return loss.detach(), correct, [t.grad.clone() for t in (h, w, b) if t is not None]


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("chunk,workers", [(1, 1), (7, 1), (64, 1), (500, 1), (7, 2), (16, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_reference_loss_and_gradients(eps, chunk, workers, bias):
    h, w, b, y = _inputs(bias=bias)
    ref_loss, ref_correct, ref_grads = _reference(h, w, b, y, eps, grad_scale=0.37)
    loss, correct, grads = _fused(h, w, b, y, eps, grad_scale=0.37, chunk=chunk, workers=workers)
    torch.testing.assert_close(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert int(correct) == int(ref_correct)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=RTOL, atol=ATOL)


def test_large_logits_against_a_float64_oracle():
    h, w, b, y = _inputs(m=40, v=1000, scale=60.0)  # logit spreads of hundreds: exp underflows
    hd, wd, bd = (t.detach().double().requires_grad_() for t in (h, w, b))
    ref_loss, _, ref_grads = _reference(hd, wd, bd, y, 0.1)
    loss, _, grads = _fused(h, w, b, y, 0.1, chunk=16)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=RTOL, atol=1e-3)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g.double(), r, rtol=1e-4, atol=1e-3)


def test_empty_rows_give_zero_loss_and_zero_gradients():
    h, w, b, y = _inputs(m=0)
    loss, correct, grads = _fused(h, w, b, y, 0.1)
    assert loss.item() == 0.0 and int(correct) == 0
    assert all(torch.count_nonzero(g) == 0 for g in grads)


@pytest.mark.parametrize("frozen", ["h", "weight", "bias", "weight and bias"])
def test_frozen_inputs_get_no_gradient_and_the_rest_match(frozen):
    """Only the inputs that require grad get one (a frozen bias still shifts the logits)."""
    h, w, b, y = _inputs(m=90)
    for name, t in (("h", h), ("weight", w), ("bias", b)):
        if name in frozen.split(" and "):
            t.requires_grad_(False)
    live = [t for t in (h, w, b) if t.requires_grad]
    ref = F.cross_entropy(F.linear(h, w, b), y, label_smoothing=0.1, reduction="sum")
    ref_grads = torch.autograd.grad(ref, live)
    loss, _ = linear_cross_entropy(h, w, b, y, label_smoothing=0.1, chunk=16, workers=2)
    grads = torch.autograd.grad(loss, live)
    torch.testing.assert_close(loss, ref, rtol=RTOL, atol=ATOL)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=RTOL, atol=ATOL)


def test_bitwise_equal_for_any_number_of_worker_threads():
    h, w, b, y = _inputs(m=301)
    runs = [_fused(h, w, b, y, 0.1, chunk=8, workers=k) for k in (1, 2, 3, 2)]
    for other in runs[1:]:
        assert torch.equal(runs[0][0], other[0])
        assert all(torch.equal(a, c) for a, c in zip(runs[0][2], other[2]))


def test_blocks_are_the_same_whatever_the_callers_thread_count():
    """On CPU each row block runs with one intra-op thread, inline or pooled, and the caller's
    thread count is left as it was."""
    h, w, b, y = _inputs(m=301)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads, workers in ((2, 1), (1, 2), (2, 2), (1, 1)):
            torch.set_num_threads(threads)
            runs.append(_fused(h, w, b, y, 0.1, chunk=8, workers=workers))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    for other in runs[1:]:
        assert torch.equal(runs[0][0], other[0])
        assert all(torch.equal(a, c) for a, c in zip(runs[0][2], other[2]))


@pytest.mark.parametrize("chunk,workers", [(64, 1), (7, 1), (64, 2), (500, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_bf16_matmuls_match_the_reference_at_bf16_tolerance(chunk, workers, bias):
    # several flushes of the gathered probabilities (M > FLUSH_ROWS), chunks that do not divide them
    h, w, b, y = _inputs(m=3 * FLUSH_ROWS + 37, v=500, d=32, bias=bias)
    # the reference sees the same bf16-rounded operands: what is left is the products' rounding
    hr, wr = (t.detach().bfloat16().float().requires_grad_() for t in (h, w))
    br = b.detach().clone().requires_grad_() if bias else None
    ref_loss, _, ref_grads = _reference(hr, wr, br, y, 0.1)
    loss, _, grads = _fused(h, w, b, y, 0.1, chunk=chunk, workers=workers, dtype=torch.bfloat16)
    assert loss.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads)
    torch.testing.assert_close(loss, ref_loss, rtol=2e-3, atol=0)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=0, atol=2e-2 * r.abs().max().item())


def test_bf16_loss_without_gradients_is_the_same_loss():
    h, w, b, y = _inputs(m=2 * FLUSH_ROWS + 45)
    with_grad, _ = linear_cross_entropy(h, w, b, y, label_smoothing=0.1, chunk=8, dtype=torch.bfloat16)
    with torch.no_grad():
        without, _ = linear_cross_entropy(h, w, b, y, label_smoothing=0.1, chunk=8, dtype=torch.bfloat16)
    assert torch.equal(with_grad.detach(), without)


def test_bf16_is_bitwise_equal_for_any_number_of_worker_threads():
    h, w, b, y = _inputs(m=2 * FLUSH_ROWS + 45)
    runs = [_fused(h, w, b, y, 0.1, chunk=8, workers=k, dtype=torch.bfloat16) for k in (1, 2, 3)]
    for other in runs[1:]:
        assert torch.equal(runs[0][0], other[0])
        assert all(torch.equal(a, c) for a, c in zip(runs[0][2], other[2]))


def test_head_precision_settings():
    cpu = torch.device("cpu")
    assert head_dtype("fp32", cpu) is torch.float32 and head_dtype("bf16", cpu) is torch.bfloat16
    assert head_dtype("auto", cpu) is (torch.bfloat16 if cpu_has_bf16() else None)
    assert head_dtype("auto", torch.device("cuda")) is None  # autocast decides there
    with pytest.raises(ValueError, match="head_precision"):
        head_dtype("fp16", cpu)


def test_no_grad_call_and_bad_shapes():
    h, w, b, y = _inputs()
    with torch.no_grad():
        loss, _ = linear_cross_entropy(h, w, b, y, label_smoothing=0.1)
    assert not loss.requires_grad
    with pytest.raises(ValueError, match="target"):
        linear_cross_entropy(h, w, b, y[:-1])
    with pytest.raises(ValueError, match="must be"):
        linear_cross_entropy(h, w[:, :-1], b, y)


@pytest.mark.parametrize("m,chunk,blocks", [(10, 4, 2), (100, 64, 2), (129, 64, 3), (5, 64, 8), (3241, 64, 4)])
def test_row_blocks_cover_every_row_once(m, chunk, blocks):
    bounds = _bounds(m, chunk, blocks)
    assert bounds[0][0] == 0 and bounds[-1][1] == m and len(bounds) <= blocks
    assert all(a[1] == c[0] for a, c in zip(bounds, bounds[1:]))
    assert all(lo % chunk == 0 for lo, _ in bounds)


def test_mlm_loss_equals_the_logits_reference(small_tok):
    """The training loss through the fused head equals cross-entropy on `mlm_logits`, gradients
    of every parameter included."""
    ds = TokenDataset(small_tok)
    batch = collate(ds.read([0, 1, 2]))
    masked = mask_batch(batch, step_generator(0, 1, 0))
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=len(ds.vocab), dropout=0.0)
    loss, correct, _ = mlm_loss_sum(model, batch, masked, label_smoothing=0.1)
    loss.backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    inputs = replace(batch, value_ids=masked.value_ids)
    out = model(inputs)
    logits = model.mlm_logits(out, inputs, masked.target_index)  # (M, V)
    ref = F.cross_entropy(logits, masked.target_ids, label_smoothing=0.1, reduction="sum")
    (ref + 0.0 * out.user_emb.sum()).backward()
    torch.testing.assert_close(loss, ref, rtol=RTOL, atol=1e-4)
    assert int(correct) == int((logits.argmax(-1) == masked.target_ids).sum())
    for n, p in model.named_parameters():  # fp32 rounding through the encoders: relative to the largest entry
        if p.grad is not None:
            scale = p.grad.abs().max().item()
            torch.testing.assert_close(fused[n], p.grad, rtol=0, atol=1e-5 * scale + 1e-7, msg=n)
