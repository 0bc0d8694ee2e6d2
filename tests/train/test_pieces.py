"""Masking, optimizer grouping, schedule, config and atomic checkpoints."""

import dataclasses

import pytest
import torch

from pragmatiq.tokenizer import TokenDataset, collate
from pragmatiq.tokenizer.vocab import MASK, UNK
from pragmatiq.train import load_pretrain_config, mask_batch
from pragmatiq.train.checkpoint import load_checkpoint, save_checkpoint
from pragmatiq.train.masking import step_generator
from pragmatiq.train.optim import Muon, lr_factor, newton_schulz_dtype, orthogonalize, split_parameters
from pragmatiq.zoo import create_model


def test_masking_rates_rules_and_determinism(small_tok):
    ds = TokenDataset(small_tok)
    batch = collate(ds.read(list(range(len(ds)))))
    m = mask_batch(batch, step_generator(0, 3, 0))
    share = m.selected.float().mean().item()
    assert 0.25 < share < 0.5  # 15% tokens + 10% events + 10% (user, key) groups, overlapping
    # only selected tokens change, each to [MASK] or [UNK]; masking sees the event tokens alone
    # (profile tokens live in profile_value_ids, which it never returns)
    assert m.selected.shape == m.value_ids.shape == batch.value_ids.shape
    assert torch.equal(m.value_ids[~m.selected], batch.value_ids[~m.selected])
    assert ((m.value_ids[m.selected] == MASK) | (m.value_ids[m.selected] == UNK)).all()
    masked_share = (m.value_ids[m.selected] == MASK).float().mean().item()
    assert 0.85 < masked_share < 0.95  # 90% [MASK], 10% [UNK]
    assert torch.equal(m.target_ids, batch.value_ids[m.target_index])
    assert (m.value_ids[m.target_index] == MASK).all()
    again = mask_batch(batch, step_generator(0, 3, 0))
    assert torch.equal(again.value_ids, m.value_ids)
    assert not torch.equal(mask_batch(batch, step_generator(0, 4, 0)).value_ids, m.value_ids)
    # profile tokens are never touched: masking only returns event-token values


def test_nothing_selected_still_gives_a_graph(small_tok):
    from pragmatiq.train.loss import mlm_loss_sum

    ds = TokenDataset(small_tok)
    batch = collate(ds.read([0, 1]))
    m = mask_batch(batch, step_generator(0, 0, 0), token_rate=0, event_rate=0, group_rate=0)
    assert len(m.target_index) == 0
    model = create_model("nano", vocab_size=len(ds.vocab))
    loss, _, _ = mlm_loss_sum(model, batch, m)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.ndim == 2
               and not p.shape[0] == len(ds.vocab))


def test_user_loss_sum_is_cross_entropy_of_each_targets_user():
    from pragmatiq.train.loss import user_loss_sum

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 11, generator=g, requires_grad=True)  # (U, V)
    owners = torch.tensor([2, 0, 2, 2, 1, 0])  # (M,)
    targets = torch.randint(0, 11, (6,), generator=g)  # (M,)
    got = user_loss_sum(logits, owners, targets, label_smoothing=0.1)
    want = torch.nn.functional.cross_entropy(logits[owners], targets, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(got, want)
    (g_got,) = torch.autograd.grad(got, logits)
    (g_want,) = torch.autograd.grad(want, logits)
    torch.testing.assert_close(g_got, g_want)
    empty = user_loss_sum(logits, owners[:0], targets[:0])
    assert empty.item() == 0.0 and empty.requires_grad  # nothing masked: still a graph


def test_user_view_term_adds_each_targets_user_prediction(small_tok):
    """mlm_loss_sum(user_weight=w) = the 3-view loss + w * CE of every target against the logits
    of its own user's view, the user found by walking the batch's offsets by hand."""
    from pragmatiq.train.loss import mlm_loss_sum

    ds = TokenDataset(small_tok)
    batch = collate(ds.read([0, 1, 2]))
    m = mask_batch(batch, step_generator(0, 1, 0))
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=len(ds.vocab), user_head=True).eval()
    with torch.no_grad():  # logits of a few units, not ~0.01: the CE then tells one user state from another
        model.tok_embed.weight.mul_(50.0)
    base, _, none = mlm_loss_sum(model, batch, m)
    both, _, user = mlm_loss_sum(model, batch, m, user_weight=0.5)
    cu_t, cu_e = batch.cu_tokens.tolist(), batch.cu_events.tolist()
    event = [next(e for e in range(len(cu_t) - 1) if cu_t[e] <= t < cu_t[e + 1]) for t in m.target_index.tolist()]
    owner = torch.tensor([next(u for u in range(len(cu_e) - 1) if cu_e[u] <= e < cu_e[u + 1]) for e in event])
    inputs = dataclasses.replace(batch, value_ids=m.value_ids)  # what the model saw: the masked values
    logits = model.user_hidden(model(inputs)) @ model.tok_embed.weight.T + model.head_bias  # (U, V)
    ce = torch.nn.functional.cross_entropy(logits[owner], m.target_ids, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(both - base, 0.5 * ce)
    assert none is None  # the term is off by default
    torch.testing.assert_close(user, ce.detach())  # returned unweighted, for the log
    both.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.user_head.parameters())
    with pytest.raises(RuntimeError, match="user-view head"):
        mlm_loss_sum(create_model("nano", vocab_size=len(ds.vocab)), batch, m, user_weight=1.0)


def test_nemotron_term_is_lambda_mse_of_the_masked_sentinels(nemotron_tok, text_encoder_dir):
    """mlm_loss_sum with text vectors = the CE terms + lambda * MSE (per vector width) between the
    text head's prediction at each masked sentinel and its frozen vector; a masked sentinel's
    own vector is hidden from the input; with no sentinel masked the term is 0 and the text head
    stays in the graph (DDP needs every parameter)."""
    from pragmatiq.train.loss import mlm_loss_sum
    from pragmatiq.zoo.text_encoder import FrozenTextEncoder, with_text_vectors

    ds = TokenDataset(nemotron_tok)
    enc = FrozenTextEncoder(str(text_encoder_dir))
    batch = with_text_vectors(collate(ds.read([0, 1, 2])), enc)
    assert batch.text_vectors.shape == (len(batch.texts), 16) and len(batch.texts) > 0
    m = mask_batch(batch, step_generator(0, 1, 0))
    hit = m.selected[batch.text_token_index]  # (N,) masked sentinels
    assert hit.any() and not hit.all()
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=len(ds.vocab), d_text=16).eval()
    ce, _, _ = mlm_loss_sum(model, batch, m, text_weight=0.0)
    both, _, _ = mlm_loss_sum(model, batch, m, text_weight=0.3)
    shown = batch.text_vectors.masked_fill(hit[:, None], 0.0)
    out = model(dataclasses.replace(batch, value_ids=m.value_ids, text_vectors=shown))
    pred = model.text_out(out.token_states[batch.text_token_index[hit]])
    mse = ((pred - batch.text_vectors[hit]) ** 2).sum() / 16
    torch.testing.assert_close(both - ce, 0.3 * mse, rtol=0, atol=1e-3)  # fp32 sums of ~1e3 differenced
    nothing = dataclasses.replace(m, selected=torch.zeros_like(m.selected))
    loss, _, _ = mlm_loss_sum(model, batch, nothing)
    loss.backward()
    assert all(p.grad is not None for p in model.text_out.parameters())


def test_nemotron_step_runs_under_bf16_autocast(nemotron_tok, text_encoder_dir):
    """As the loop runs a CUDA step (bf16 autocast), on CPU: the text projection comes out in bf16
    and must still add into the fp32 token states (it raised a dtype error before)."""
    from pragmatiq.train.loss import mlm_loss_sum
    from pragmatiq.zoo.text_encoder import FrozenTextEncoder, with_text_vectors

    ds = TokenDataset(nemotron_tok)
    batch = with_text_vectors(collate(ds.read([0, 1, 2])), FrozenTextEncoder(str(text_encoder_dir)))
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=len(ds.vocab), d_text=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _, _ = mlm_loss_sum(model, batch, mask_batch(batch, step_generator(0, 1, 0)), text_weight=0.5)
    loss.backward()
    assert torch.isfinite(loss) and model.text_in.weight.grad is not None


def test_a_step_with_the_user_view_runs_under_bf16_autocast(small_tok):
    """The dtypes of a CUDA step (bf16 autocast around the model and the loss), checked on CPU:
    the encoders, the fused head in bf16, the user-view logits, backward, then both optimizers."""
    from pragmatiq.train.loss import mlm_loss_sum
    from pragmatiq.train.optim import build_optimizers

    ds = TokenDataset(small_tok)
    batch = collate(ds.read([0, 1, 2, 3]))
    torch.manual_seed(0)
    model = create_model("nano", vocab_size=len(ds.vocab), user_head=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, ok, user = mlm_loss_sum(model, batch, mask_batch(batch, step_generator(0, 1, 0)), user_weight=1.0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and user is not None
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == p.dtype for p in model.parameters() if p.requires_grad)
    for opt in build_optimizers(model, load_pretrain_config("nano")):
        opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_optimizer_groups():
    model = create_model("nano", vocab_size=500)
    muon, adamw = split_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim == 2 for p in muon)
    assert not any(names[id(p)].startswith(("tok_embed", "calendar.0")) for p in muon)
    assert any(names[id(p)] == "tok_embed.weight" for p in adamw)
    assert len(muon) + len(adamw) == len(list(model.parameters()))


def test_schedule_warmup_then_cosine_to_ten_percent():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, 0.1) == pytest.approx(0.55)


def test_config_layers_and_unknown_keys():
    cfg = load_pretrain_config("nano", {"max_steps": 7})
    assert cfg.max_steps == 7 and cfg.token_budget == 8192  # nano recipe, then the override
    with pytest.raises(ValueError, match="unknown pretraining config key"):
        load_pretrain_config("nano", {"max_stpes": 7})
    with pytest.raises(ValueError, match="head_precision must be one of"):
        load_pretrain_config("nano", {"head_precision": "fp16"})
    with pytest.raises(ValueError, match="user_loss_weight must be >= 0"):
        load_pretrain_config("nano", {"user_loss_weight": -1})
    with pytest.raises(ValueError, match="set user_loss_weight instead"):
        load_pretrain_config("nano", {"model": {"user_head": True}})


@pytest.mark.parametrize("key, value, message", [
    ("max_steps", 0, "max_steps must be >= 1, got 0"),
    ("max_steps", "300", "max_steps must be an int, got '300'"),
    ("max_steps", 2.5, "max_steps must be an int, got 2.5"),
    ("lr", 0, "lr must be > 0.0, got 0"),
    ("lr", True, "lr must be a float, got True"),
    ("token_rate", 1.5, r"token_rate must be in \[0.0, 1.0\], got 1.5"),
    ("grad_clip", -1.0, "grad_clip must be > 0.0"),
    ("num_threads", 0, "num_threads must be >= 1"),
    ("stop_after", "x", "stop_after must be an int or null"),
    ("compile", "yes", "compile must be a bool"),
    ("model", [], "model must be a dict"),
])
def test_config_values_are_checked_by_name(key, value, message):
    """A wrong type or an out-of-range number is a one-line error naming the key, before training."""
    with pytest.raises(ValueError, match=f"pretraining config: {message}"):
        load_pretrain_config("nano", {key: value})


def test_config_numbers_are_stored_as_python_numbers():
    import numpy as np

    cfg = load_pretrain_config("nano", {"max_steps": np.int64(5), "lr": 1, "stop_after": None})
    assert (cfg.max_steps, cfg.lr, cfg.stop_after) == (5, 1.0, None)
    assert type(cfg.max_steps) is int and type(cfg.lr) is float


def test_config_file_overrides_the_recipe_only_where_it_says(tmp_path):
    # the issue's own command passes the bundled defaults: nano's recipe must survive it
    assert load_pretrain_config("nano", "configs/pretrain.yaml") == load_pretrain_config("nano")
    own = tmp_path / "own.yaml"
    own.write_text("max_steps: 5\nlr: 0.01\n")
    cfg = load_pretrain_config("nano", own)
    assert (cfg.max_steps, cfg.lr, cfg.token_budget, cfg.warmup_steps) == (5, 0.01, 8192, 30)


def test_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 1


@pytest.mark.parametrize("nesterov", [True, False])
def test_muon_in_bf16_is_torch_muon(nesterov):
    """Our Muon with a bf16 iteration takes torch.optim.Muon's steps bit for bit (tall, wide and
    square matrices, two of a shape orthogonalized as one stack, weight decay, both momentum
    forms), and leaves the same state."""
    torch.manual_seed(0)
    shapes = [(96, 32), (32, 80), (48, 48), (96, 32), (48, 48)]
    ours = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    kw = dict(lr=0.02, weight_decay=0.01, nesterov=nesterov)
    opt, opt_ref = Muon(ours, ns_dtype=torch.bfloat16, **kw), torch.optim.Muon(ref, **kw)
    for _ in range(3):
        for a, b in zip(ours, ref):
            a.grad = torch.randn(a.shape)
            b.grad = a.grad.clone()
        opt.step()
        opt_ref.step()
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
        assert torch.equal(opt.state[a]["momentum_buffer"], opt_ref.state[b]["momentum_buffer"])


def test_muon_fp32_iteration_matches_bf16():
    """In fp32 the orthogonalized update is the bf16 one to bf16 precision, and it does not
    touch its input (without Nesterov the input is the momentum buffer itself)."""
    torch.manual_seed(0)
    g = torch.randn(64, 256)
    before = g.clone()
    coeffs = (3.4445, -4.7750, 2.0315)
    o32 = orthogonalize(g, coeffs, 5, 1e-7, torch.float32)
    o16 = orthogonalize(g, coeffs, 5, 1e-7, torch.bfloat16)
    assert torch.equal(g, before)
    assert o32.dtype == torch.float32 and o32.shape == g.shape
    assert torch.allclose(o32, o16.float(), atol=0.03, rtol=0.03)
    # the iteration's fixed band: singular values of the update lie roughly in [0.5, 1.5]
    sv = torch.linalg.svdvals(o32)
    assert 0.3 < sv.min() and sv.max() < 1.6


def test_newton_schulz_dtype_follows_the_hardware(monkeypatch):
    import pragmatiq.train.optim as optim

    monkeypatch.setattr(optim, "cpu_has_bf16", lambda: False)
    assert newton_schulz_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setattr(optim, "cpu_has_bf16", lambda: True)
    assert newton_schulz_dtype(torch.device("cpu")) == torch.bfloat16
    assert newton_schulz_dtype(torch.device("meta")) == torch.bfloat16


def test_process_group_backend_has_a_cpu_path_on_cuda():
    """The loop all-reduces small CPU tensors every step: NCCL alone cannot, so CUDA runs pair it
    with gloo (not run on GPUs here)."""
    from pragmatiq.train.loop import process_group_backend

    assert process_group_backend(torch.device("cpu")) == "gloo"
    assert process_group_backend(torch.device("cuda", 1)) == "cpu:gloo,cuda:nccl"


def test_masks_move_to_the_batch_device():
    """The loop draws masks on the CPU batch (where the seeded generator lives) and moves both to the
    accelerator; every mask tensor must follow (here to the meta device, as no GPU is at hand)."""
    from pragmatiq.train.masking import Masked

    mk = Masked(torch.arange(4), torch.tensor([1]), torch.tensor([7]), torch.tensor([False, True, False, False]))
    moved = mk.to("meta")
    assert all(t.device.type == "meta" for t in (moved.value_ids, moved.target_index, moved.target_ids,
                                                 moved.selected))
    assert moved.selected.dtype == torch.bool and mk.value_ids.device.type == "cpu"
