"""Bad pretraining inputs are refused before anything is written, with one line naming what is
wrong and how to fix it: damaged checkpoints, run names that are not one directory, model
overrides, a token directory without events, a crop budget that holds no event."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from pragmatiq import api
from pragmatiq.cli import cli
from pragmatiq.tokenizer import TokenDataset
from pragmatiq.train import load_pretrain_config
from pragmatiq.train.checkpoint import load_checkpoint, save_checkpoint
from pragmatiq.train.checks import check_crop_budget

from .conftest import TINY


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(b"" if how == "empty" else data[:len(data) // 3])


@pytest.mark.parametrize("how", ["empty", "truncated"])
def test_a_damaged_checkpoint_names_itself_and_the_intact_step_beside_it(tmp_path, how):
    ckpt = tmp_path / "checkpoints"
    for step in (2, 4):
        save_checkpoint(ckpt / f"step-{step}.pt", {"step": step, "w": torch.zeros(100)})
    save_checkpoint(ckpt / "last.pt", {"step": 6, "w": torch.zeros(100)})
    _damage(ckpt / "step-4.pt", "truncated")  # the newest step is damaged too: step-2.pt is named
    assert load_checkpoint(ckpt / "last.pt")["step"] == 6
    _damage(ckpt / "last.pt", how)
    with pytest.raises(ValueError, match=r"last\.pt is damaged .* the newest intact checkpoint beside it is "
                                         r"step-2\.pt \(step 2\): copy it over last\.pt") as err:
        load_checkpoint(ckpt / "last.pt")
    assert ("the file is empty" if how == "empty" else "the file ends early") in str(err.value)
    (ckpt / "step-2.pt").unlink()
    with pytest.raises(ValueError, match="no intact step-N.pt is beside it; start over with --no-resume"):
        load_checkpoint(ckpt / "last.pt")


def test_an_empty_last_checkpoint_is_one_line_not_aborted(small_tok, tmp_path):
    """torch.load of an empty file raises EOFError, which click turned into a bare 'Aborted!'."""
    ckpt = tmp_path / "r" / "checkpoints"
    save_checkpoint(ckpt / "step-5.pt", {"step": 5})
    (ckpt / "last.pt").write_bytes(b"")
    result = CliRunner().invoke(cli, ["pretrain", str(small_tok), "--name", "r", "--model-size", "nano",
                                      "--max-steps", "6", "--runs-root", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert f"error: {ckpt / 'last.pt'} is damaged (0 bytes" in result.output
    assert f"cp {ckpt / 'step-5.pt'} {ckpt / 'last.pt'}" in result.output


@pytest.mark.parametrize("name", ["", "  ", "a/b", "../up", "..", "."])
def test_a_run_name_must_be_one_directory(small_tok, tmp_path, name):
    root = tmp_path / "runs"
    with pytest.raises(ValueError, match="run name .*(is empty|must be a single directory name)"):
        api.pretrain(small_tok, name, model_size="nano", config={**TINY, "max_steps": 1}, runs_root=root,
                     progress=False)
    assert not root.exists() and not (tmp_path / "up").exists()  # nothing written anywhere


@pytest.mark.parametrize("model, message", [
    ({"d_model": -8}, "pretraining config: model.d_model must be >= 1, got -8"),
    ({"n_layers_event": "2"}, "pretraining config: model.n_layers_event must be an int, got '2'"),
    ({"dropout": 2.0}, r"pretraining config: model.dropout must be in \[0.0, 1.0\)"),
    ({"vocab_size": 100}, "model.vocab_size comes from the token directory's vocabulary"),
    ({"d_text": 16}, "model.d_text comes from the frozen text encoder"),
    ({"width": 3}, r"pretraining config: unknown model setting\(s\) \['width'\]"),
])
def test_model_overrides_are_checked_by_name(model, message):
    with pytest.raises(ValueError, match=message):
        load_pretrain_config("nano", {"model": model})


def test_model_overrides_that_do_not_fit_the_size_are_refused_before_the_run_is_written(small_tok, tmp_path):
    with pytest.raises(ValueError, match="model overrides {'n_heads': 3} on size nano: d_model 64 is not "
                                         "divisible by n_heads 3"):
        api.pretrain(small_tok, "r", model_size="nano", config={**TINY, "max_steps": 1, "model": {"n_heads": 3}},
                     runs_root=tmp_path, progress=False)
    assert not (tmp_path / "r").exists()


def test_a_token_directory_without_events_is_refused(small_tok, tmp_path):
    tok = tmp_path / "tok"
    shutil.copytree(small_tok, tok)
    index = pq.read_table(tok / "index.parquet")  # as if events.parquet had no rows: profiles only
    i = index.column_names.index("n_events")
    pq.write_table(index.set_column(i, "n_events", pa.array(np.zeros(index.num_rows), index.schema[i].type)),
                   tok / "index.parquet")
    with pytest.raises(ValueError, match=r"tok: nothing to train on \(40 users, 0 events"):
        api.pretrain(tok, "r", model_size="nano", config={**TINY, "max_steps": 1}, runs_root=tmp_path / "runs",
                     progress=False)
    assert not (tmp_path / "runs" / "r").exists()


def test_a_crop_budget_that_holds_no_event_is_refused(small_tok, tmp_path):
    with pytest.raises(ValueError, match="crop_to_budget: token_budget 1 does not hold a user's profile .* every "
                                         "user would train on its single newest event"):
        api.pretrain(small_tok, "r", model_size="nano",
                     config={**TINY, "max_steps": 1, "crop_to_budget": True, "token_budget": 1},
                     runs_root=tmp_path, progress=False)
    assert not (tmp_path / "r").exists()


def test_a_crop_budget_that_keeps_little_history_warns(small_tok):
    ds = TokenDataset(small_tok)
    low = load_pretrain_config("nano", {"crop_to_budget": True, "token_budget": 200})
    with pytest.warns(UserWarning, match=r"crop_to_budget: token_budget 200 keeps about \d+% of the tokens .* "
                                         r"40 of 40 users train on their newest events"):
        check_crop_budget(ds, low, small_tok)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recipe's budget, and cropping off: silent
        check_crop_budget(ds, load_pretrain_config("nano", {"crop_to_budget": True}), small_tok)
        check_crop_budget(ds, load_pretrain_config("nano", {"token_budget": 1}), small_tok)
