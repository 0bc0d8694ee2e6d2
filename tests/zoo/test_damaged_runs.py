"""A damaged or inconsistent model directory (truncated weights, invalid model.json, weights of
another size, a vocabulary of another tokenization) and out-of-range config values: one
ValueError naming the file or the setting, never a traceback from safetensors or torch."""

from __future__ import annotations

import json

import pytest
import torch

from pragmatiq.zoo import create_model, get_config, load_model, save_model
from pragmatiq.zoo.io import check_model_dir, check_run_vocab


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    return save_model(create_model("nano", vocab_size=300), tmp_path / "run")


@pytest.mark.parametrize("keep", [0.5, 0.0, 0.999])
def test_truncated_or_empty_weights_name_the_file(model_dir, keep):
    path = model_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"model\.safetensors is damaged \(truncated, empty"):
        load_model(model_dir)


def test_invalid_model_json_names_the_file(model_dir):
    path = model_dir / "model.json"
    path.write_text(path.read_text()[:60])  # cut mid-object
    with pytest.raises(ValueError, match=r"model\.json is damaged: not valid JSON"):
        load_model(model_dir)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_model(model_dir)


@pytest.mark.parametrize("change, message", [
    ({"d_model": 32}, r"tok_embed\.weight: weights \(300, 64\) vs \(300, 32\) from model\.json"),
    ({"vocab_size": 500}, r"weights \(300, 64\) vs \(500, 64\)"),
    ({"user_head": True}, "model.json needs are missing from the weights"),
    ({"d_model": -8}, "d_model must be >= 1, got -8"),
])
def test_model_json_that_does_not_fit_the_weights(model_dir, change, message):
    path = model_dir / "model.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(ValueError, match=message) as err:
        load_model(model_dir)
    assert "model.json" in str(err.value)


def test_an_intact_directory_loads_as_before(model_dir):
    assert check_model_dir(model_dir).vocab_size == 300
    assert load_model(model_dir).config == get_config("nano", vocab_size=300)


def test_a_vocabulary_of_another_size_is_refused(model_dir):
    from pragmatiq.tokenizer.vocab import Vocab

    small = Vocab.build([("mcc", "categorical", ["5411", "5812"])], None, 0, {})
    small.save(model_dir / "vocab.json")
    with pytest.raises(ValueError, match=rf"vocab\.json does not belong to the model in .*: it has {len(small)} "
                                         "token ids, the model 300"):
        check_run_vocab(model_dir / "vocab.json", check_model_dir(model_dir))


@pytest.mark.parametrize("override, message", [
    ({"d_model": -8}, "model config: d_model must be >= 1, got -8"),
    ({"n_heads": 0}, "model config: n_heads must be >= 1, got 0"),
    ({"n_layers_event": 0}, "n_layers_event must be >= 1"),
    ({"ffn_mult": 2.5}, "ffn_mult must be an int, got 2.5"),
    ({"d_model": "64"}, "d_model must be an int, got '64'"),
    ({"dropout": 1.5}, r"dropout must be in \[0.0, 1.0\), got 1.5"),
    ({"rope_base": 0}, "rope_base must be > 0.0"),
    ({"recency_freqs": -1}, "recency_freqs must be >= 0"),
    ({"user_head": "yes"}, "user_head must be a bool"),
    ({"vocab_size": 3}, "vocab_size 3 leaves no room for the special tokens"),
])
def test_config_values_are_checked_by_name(override, message):
    with pytest.raises(ValueError, match=message):
        create_model("nano", vocab_size=override.pop("vocab_size", 300), **override)
