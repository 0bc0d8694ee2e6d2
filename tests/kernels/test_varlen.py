"""varlen_attention: every backend that can run here against the per-segment fp32 reference."""

from __future__ import annotations

import pytest
import torch

from pragmatiq.kernels import (
    BACKENDS, TimeRoPE, apply_rope, backend_report, exportable_attention, refuse_reasons, segment_ids,
    segment_ids_dense, select_backend, varlen_attention,
)
from tests.kernels._ragged import BY_LENGTH, EVENT_LENGTHS, HISTORY_LENGTHS, MANY_LENGTHS, WITH_EMPTY, ragged

CASES = {"events": EVENT_LENGTHS, "history": HISTORY_LENGTHS, "many": MANY_LENGTHS, "by_length": BY_LENGTH,
         "with_empty": WITH_EMPTY}


def _runnable(device="cpu", dtype=torch.float32):
    q, _, _, _, cu, m = ragged([3, 4], dtype=dtype, device=device)
    return [n for n, why in refuse_reasons(q, cu, m).items() if why is None and n != "reference"]


def _fwd_bwd(backend, q, k, v, do, cu, m):
    q, k, v = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    o = varlen_attention(q, k, v, cu, m, backend=backend)
    return (o, *torch.autograd.grad(o, (q, k, v), do))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("backend", _runnable())
def test_backend_matches_reference_fp32(backend, case):
    args = ragged(CASES[case])
    ref = _fwd_bwd("reference", *args)
    got = _fwd_bwd(backend, *args)
    for name, a, b in zip(("out", "dq", "dk", "dv"), ref, got):
        assert (a - b).abs().max().item() <= 1e-5, (backend, case, name)


def _plain_bf16(q, k, v, cu):
    """Plain PyTorch attention computed in bf16 (the precision yardstick)."""
    out = torch.empty_like(q)
    b = cu.tolist()
    for s, e in zip(b[:-1], b[1:]):
        qs, ks, vs = (t[s:e].transpose(0, 1) for t in (q, k, v))
        p = torch.softmax(qs @ ks.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
        out[s:e] = (p @ vs).transpose(0, 1)
    return out


@pytest.mark.parametrize("backend", _runnable(dtype=torch.bfloat16))
def test_backend_bf16_within_twice_plain_pytorch(backend):
    q, k, v, do, cu, m = ragged(EVENT_LENGTHS)
    oracle = varlen_attention(q, k, v, cu, m, backend="reference")
    qb, kb, vb = (t.bfloat16() for t in (q, k, v))
    plain_err = (_plain_bf16(qb, kb, vb, cu).float() - oracle).abs().max().item()
    err = (varlen_attention(qb, kb, vb, cu, m, backend=backend).float() - oracle).abs().max().item()
    assert err <= 2 * plain_err + 1e-3, (err, plain_err)


def test_auto_on_cpu_picks_sdpa_and_reports_all_backends():
    q, k, v, do, cu, m = ragged(EVENT_LENGTHS)
    assert select_backend(q, cu, m) == "sdpa"
    report = backend_report()
    assert set(report) == set(BACKENDS)
    assert report["sdpa"] == "available"


def test_no_backend_fits_lists_every_reason():
    q = torch.zeros(5, 2, 4, dtype=torch.int32)
    cu = torch.tensor([0, 5], dtype=torch.int32)
    with pytest.raises(RuntimeError) as err:
        varlen_attention(q, q, q, cu, 5)
    for name in BACKENDS:
        assert f"  {name}:" in str(err.value)


def test_bad_inputs_and_unknown_backend():
    q, k, v, do, cu, m = ragged([3, 4])
    with pytest.raises(ValueError, match="unknown attention backend"):
        varlen_attention(q, k, v, cu, m, backend="nope")
    with pytest.raises(ValueError, match="int32"):
        varlen_attention(q, k, v, cu.long(), m)


def test_dense_exportable_form_equals_varlen():
    q, k, v, do, cu, m = ragged(EVENT_LENGTHS + HISTORY_LENGTHS[:2])
    ref = varlen_attention(q, k, v, cu, m, backend="reference")
    assert (exportable_attention(q, k, v, cu) - ref).abs().max().item() <= 1e-5


def test_segment_ids_dense_equals_repeat_interleave():
    cu = torch.tensor([0, 0, 3, 4, 4, 9], dtype=torch.int32)
    a = segment_ids(cu, 9)
    assert torch.equal(a, segment_ids_dense(cu, 9))
    assert a.tolist() == [1, 1, 1, 2, 4, 4, 4, 4, 4]


def test_time_rope_is_relative_in_tau():
    rope = TimeRoPE(16)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 16, generator=g), torch.randn(1, 1, 16, generator=g)

    def score(tq, tk):
        cq, sq = rope.cos_sin(torch.tensor([tq]))
        ck, sk = rope.cos_sin(torch.tensor([tk]))
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()

    assert score(10.0, 3.5) == pytest.approx(score(56.5, 50.0), abs=1e-4)
    assert score(0.0, 0.0) == pytest.approx((q * k).sum().item(), abs=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", ["torch_varlen", "flash_attn", "triton", "sdpa"])
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_backend_bf16_vs_reference(backend, case):
    args = ragged(CASES[case], heads=3, head_dim=64, device="cuda")
    q, k, v, do, cu, m = args
    qb = q.bfloat16()
    why = BACKENDS[backend].refuse_reason(qb, cu, m, 0.0)
    if why:
        pytest.skip(why)
    oracle = _fwd_bwd("reference", *args)
    plain = _plain_bf16(qb, k.bfloat16(), v.bfloat16(), cu).float()
    plain_err = (plain - oracle[0]).abs().max().item()
    got = _fwd_bwd(backend, qb, k.bfloat16(), v.bfloat16(), do.bfloat16(), cu, m)
    assert (got[0].float() - oracle[0]).abs().max().item() <= 2 * plain_err + 1e-3
    for a, b in zip(oracle[1:], got[1:]):
        scale = a.abs().max().item()
        assert (a - b.float()).abs().max().item() <= 2e-2 * max(scale, 1.0)


def test_refusals_name_the_reason_on_cpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q, k, v, do, cu, m = ragged([3, 4])
    reasons = refuse_reasons(q, cu, m, dropout_p=0.1)
    if not torch.cuda.is_available():
        assert "CUDA" in reasons["triton"] and "CUDA" in reasons["torch_varlen"]
    assert reasons["sdpa"] is None and reasons["reference"] is None


@pytest.mark.parametrize("backend", ["sdpa", "reference"])
def test_dropout_runs_and_drops(backend):
    q, k, v, do, cu, m = ragged(EVENT_LENGTHS)
    torch.manual_seed(0)
    a = varlen_attention(q, k, v, cu, m, dropout_p=0.5, backend=backend)
    b = varlen_attention(q, k, v, cu, m, backend=backend)
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_segment_ids_dense_with_empty_segments_at_both_ends():
    cu = torch.tensor([0, 0, 2, 5, 5, 5], dtype=torch.int32)
    assert segment_ids_dense(cu, 5).tolist() == segment_ids(cu, 5).tolist() == [1, 1, 2, 2, 2]


@pytest.mark.parametrize("case", list(CASES))
def test_first_query_attention_is_varlen_at_the_head_rows(case):
    from pragmatiq.kernels import first_query_attention

    q, k, v, _, cu, m = ragged(CASES[case])
    lengths = cu[1:] - cu[:-1]
    cu = cu[torch.cat([torch.ones(1, dtype=torch.bool), lengths > 0])]  # heads need non-empty segments
    full = varlen_attention(q, k, v, cu, m, backend="reference")  # (N, H, D)
    heads = cu[:-1].long()
    got = first_query_attention(q[heads], k, v, cu)  # (S, H, D)
    torch.testing.assert_close(got, full[heads], atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_first_query_attention_gradients_match_the_reference(case):
    # the profile encoder trains through it: gradients in q, k and v, not only the values
    from pragmatiq.kernels import first_query_attention

    q, k, v, do, cu, m = ragged(CASES[case])
    lengths = cu[1:] - cu[:-1]
    cu = cu[torch.cat([torch.ones(1, dtype=torch.bool), lengths > 0])]
    heads = cu[:-1].long()
    _, gq, gk, gv = _fwd_bwd("reference", q, k, v, torch.zeros_like(do).index_copy(0, heads, do[heads]), cu, m)
    qh, k2, v2 = (t.detach().clone().requires_grad_(True) for t in (q[heads], k, v))
    got = torch.autograd.grad(first_query_attention(qh, k2, v2, cu), (qh, k2, v2), do[heads])
    # the reference's query gradient is non-zero at the head rows only
    for g, r in zip(got, (gq[heads], gk, gv)):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)


def test_sdpa_takes_runs_of_equal_length_as_dense_blocks():
    from pragmatiq.kernels.varlen import MAX_RUNS, _equal_length_runs

    cu = ragged(BY_LENGTH)[4]
    runs = _equal_length_runs(cu)
    assert len(runs) == len(set(BY_LENGTH)) <= MAX_RUNS
    assert sum(n * length for _, n, length in runs) == int(cu[-1])
    assert _equal_length_runs(ragged(MANY_LENGTHS)[4]) is None  # length buckets instead
    assert _equal_length_runs(ragged(WITH_EMPTY)[4]) == [(0, 1, 0), (0, 2, 3), (6, 1, 0), (6, 3, 5), (21, 1, 0)]


def test_triton_refuses_inputs_its_int32_offsets_cannot_address(monkeypatch):
    """2^31 elements or more (a few million packed rows at d = 1024): auto takes another backend."""
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # so that a CPU tensor is no reason to refuse
    big = torch.empty(1, 1, 1).expand(2**20, 16, 128)  # 2^31 elements, no memory
    cu = torch.tensor([0, 2**20], dtype=torch.int32)
    assert "int32 offsets reach 2^31" in refuse_reasons(big, cu, 2**20)["triton"]
    assert refuse_reasons(big[:-1], torch.tensor([0, 2**20 - 1], dtype=torch.int32), 2**20)["triton"] is None
