"""PragmaModel: packed == one user at a time, exportable == varlen, heads, save/load."""

from __future__ import annotations

import json

import pytest
import torch

from pragmatiq.zoo import create_model, load_model, save_model
from tests.zoo.conftest import make_batch, user_slice

V = 500


def _model(**kw):
    torch.manual_seed(0)
    return create_model("nano", V, **kw).eval()


@pytest.mark.parametrize("fixture", ["ragged_batch", "capped_batch"])
def test_packed_equals_one_user_at_a_time(fixture, request):
    batch = request.getfixturevalue(fixture)
    model = _model()
    with torch.no_grad():
        out = model(batch)
        for u in range(batch.n_users):
            one = model(user_slice(batch, u))
            e0, e1 = int(batch.cu_events[u]), int(batch.cu_events[u + 1])
            t0, t1 = int(batch.cu_tokens[e0]), int(batch.cu_tokens[e1])
            assert (one.user_emb[0] - out.user_emb[u]).abs().max() <= 1e-5
            torch.testing.assert_close(one.event_states, out.event_states[e0:e1], atol=1e-5, rtol=0)
            torch.testing.assert_close(one.token_states, out.token_states[t0:t1], atol=1e-5, rtol=0)


def test_shapes_and_empty_users(ragged_batch):
    b = ragged_batch
    out = _model()(b)
    d = 64
    assert out.user_emb.shape == (b.n_users, d) and out.user_states is out.user_emb
    assert out.token_states.shape == (b.n_tokens, d)
    assert out.event_states.shape == (b.n_events, d)
    assert torch.isfinite(out.user_emb).all()


def test_every_user_without_events():
    b = make_batch([0, 0], [3, 0], seed=3)
    out = _model()(b)
    assert out.user_emb.shape == (2, 64) and torch.isfinite(out.user_emb).all()


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
def test_backends_agree_inside_model(backend, ragged_batch):
    ref = _model(attn_backend="reference")(ragged_batch).user_emb
    got = _model(attn_backend=backend)(ragged_batch).user_emb
    assert (ref - got).abs().max() <= 1e-5


def test_exportable_equals_varlen(ragged_batch):
    model = _model()
    with torch.no_grad():
        a = model(ragged_batch)
        b = model.set_exportable(True)(ragged_batch)
    for x, y in zip((a.user_emb, a.token_states, a.event_states), (b.user_emb, b.token_states, b.event_states)):
        assert (x - y).abs().max() <= 1e-5


@pytest.mark.parametrize("exportable", [False, True])
def test_forward_tensors_equals_forward(exportable, ragged_batch):
    b = ragged_batch
    model = _model().set_exportable(exportable)
    with torch.no_grad():
        emb = model.forward_tensors(b.key_ids, b.value_ids, b.positions, b.cu_tokens, b.event_tau, b.event_hour,
                                    b.event_dow, b.event_dom, b.cu_events, b.profile_key_ids,
                                    b.profile_value_ids, b.profile_positions, b.profile_tau, b.cu_profile)
        assert (emb - model.embed(b)).abs().max() <= 1e-5


def test_mlm_head_is_three_view_and_tied(ragged_batch):
    model = _model().train()
    out = model(ragged_batch)
    idx = torch.tensor([0, 3, ragged_batch.n_tokens - 1])
    logits = model.mlm_logits(out, ragged_batch, idx)
    assert logits.shape == (3, V)
    logits.logsumexp(-1).sum().backward()
    assert model.tok_embed.weight.grad is not None and model.tok_embed.weight.grad.abs().sum() > 0
    assert model.head[0].in_features == 3 * 64
    # the user view matters: changing another event of the same user changes the logits
    model.eval()
    with torch.no_grad():
        base = model.mlm_logits(model(ragged_batch), ragged_batch, idx)
        ragged_batch.event_tau[-1] += 5.0
        moved = model.mlm_logits(model(ragged_batch), ragged_batch, idx)
    assert (base[-1] - moved[-1]).abs().max() > 0


@pytest.mark.parametrize("event_workers", [1, 2])
def test_token_rows_give_the_full_forward_at_those_rows(event_workers, ragged_batch):
    """Training reads token states at the masked rows only: the event encoder's last block then
    computes those and the [EVT] rows alone. Same head input, same gradients (in float64, where
    rounding does not blur the comparison), in one pass or in parts; asking the head for other
    rows is an error, not a silent misread."""
    b = ragged_batch
    b.event_tau, b.profile_tau = b.event_tau.double(), b.profile_tau.double()
    idx = torch.tensor([b.n_tokens - 1, 0, 5, 17, 40])  # any order
    results = []
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for rows in (None, idx):
            model = _model(dropout=0.0).train()
            model.event_workers = event_workers
            out = model(b, token_rows=rows)
            h = model.mlm_hidden(out, b, idx)  # (M, d)
            h.square().sum().backward()
            results.append((h.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    finally:
        torch.set_default_dtype(default)
    (h_full, g_full), (h_rows, g_rows) = results
    torch.testing.assert_close(h_rows, h_full, rtol=1e-10, atol=1e-12)
    assert g_rows.keys() == g_full.keys()
    for name in g_full:
        torch.testing.assert_close(g_rows[name], g_full[name], rtol=1e-9, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="token_rows"):
        model.mlm_hidden(out, b, idx[:2])


def test_nemotron_text_path():
    b = make_batch([2, 3], [1, 2], seed=4, d_text=16)
    model = _model(d_text=16)
    with torch.no_grad():
        out = model(b)
        pred = model.text_prediction(out, b, b.text_token_index)
        assert pred.shape == (b.text_token_index.shape[0], 16)
        b0 = make_batch([2, 3], [1, 2], seed=4)
        assert (model(b0).user_emb - out.user_emb).abs().max() > 0  # the text vectors reach the embedding
    with pytest.raises(RuntimeError, match="d_text"):
        _model().text_prediction(out, b, b.text_token_index)


@pytest.mark.parametrize("heads", [{"d_text": 8}, {"user_head": True}])
def test_save_load_round_trip(heads, tmp_path, ragged_batch):
    model = _model(**heads)
    save_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_model(tmp_path / "m")
    assert loaded.config == model.config
    assert (loaded.embed(ragged_batch) - model.embed(ragged_batch)).abs().max() == 0
    if model.config.user_head:  # training-only, but part of the weights: a run resumes or fine-tunes with it
        out = model(ragged_batch)
        assert torch.equal(loaded.user_hidden(loaded(ragged_batch)), model.user_hidden(out))


def test_event_vectors_carry_recency():
    # one event, only its tau moved: the history's value for it changes with recency_freqs, not without
    b = make_batch([1], [2], seed=5)
    later = make_batch([1], [2], seed=5)
    later.event_tau = later.event_tau + 20.0
    for freqs, moved in ((4, True), (0, False)):
        model = _model(recency_freqs=freqs)
        vec = lambda x: model._calendar(x.event_hour, x.event_dow, x.event_dom, x.event_tau)  # noqa: E731
        assert model.calendar[0].in_features == 6 + 2 * freqs
        assert bool((vec(b) - vec(later)).abs().max() > 0) is moved


def test_runs_saved_before_recency_load_without_it(tmp_path, ragged_batch):
    model = _model(recency_freqs=0)
    save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    del meta["recency_freqs"]  # what model.json held before the field existed
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    loaded = load_model(tmp_path / "m")
    assert loaded.config.recency_freqs == 0
    assert (loaded.embed(ragged_batch) - model.embed(ragged_batch)).abs().max() == 0


def test_load_missing_files_says_what(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_model"):
        load_model(tmp_path)


def test_training_step_with_attention_dropout(ragged_batch):
    model = _model(attn_dropout=0.1).train()
    out = model(ragged_batch)
    loss = model.mlm_logits(out, ragged_batch, torch.arange(5)).logsumexp(-1).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads if g is not None)
    assert model.history_encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("fixture", ["ragged_batch", "capped_batch"])
def test_heads_only_equals_the_full_forward(fixture, request):
    """`embed` runs the encoders' last blocks at their head rows alone: same user embeddings."""
    batch = request.getfixturevalue(fixture)
    model = _model()
    with torch.no_grad():
        full = model(batch)
        heads = model(batch, heads_only=True)
    assert heads.token_states is None and heads.event_states is None
    torch.testing.assert_close(heads.user_emb, full.user_emb, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.embed(batch), full.user_emb, atol=1e-5, rtol=0)
    b = make_batch([0, 0], [3, 0], seed=3)  # users without events: history of the profile slot alone
    with torch.no_grad():
        torch.testing.assert_close(model.embed(b), model(b).user_emb, atol=1e-5, rtol=0)
