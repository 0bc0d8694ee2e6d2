"""Masking, optimizer grouping, schedule, config and atomic checkpoints."""

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
    changed = m.value_ids != batch.value_ids
    assert torch.equal(changed, m.selected & (batch.value_ids != MASK) & (batch.value_ids != UNK)) or changed.sum() <= m.selected.sum()
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
    loss, _ = mlm_loss_sum(model, batch, m)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.ndim == 2
               and not p.shape[0] == len(ds.vocab))


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
