"""The size registry: every registered size is exercised, parameter counts match the paper sizes."""

from __future__ import annotations

import pytest
import torch
import yaml

from pragmatiq.configs import CONFIG_DIR
from pragmatiq.zoo import ModelConfig, count_parameters, create_model, get_config, list_models
from tests.zoo.conftest import make_batch

VOCAB = 28_000
TARGETS = {"small": 10e6, "medium": 100e6, "large": 1e9}
RUN_ON_CPU = {"nano", "small"}


def test_registry_lists_the_design_sizes():
    assert list_models()[:4] == ["nano", "small", "medium", "large"]


def test_unknown_size_and_override_raise_listing_valid_names():
    with pytest.raises(ValueError, match="nano, small, medium, large"):
        create_model("huge", VOCAB)
    with pytest.raises(ValueError, match="d_model"):
        create_model("nano", VOCAB, width=3)


@pytest.mark.parametrize("name", list_models())
def test_every_size(name):
    cfg = get_config(name)
    assert cfg.name == name and cfg.d_model % cfg.n_heads == 0
    if name in RUN_ON_CPU:
        torch.manual_seed(0)
        model = create_model(name, 300).eval()
        b = make_batch([3, 0, 1], [2, 0, 4], vocab=300, seed=5)
        emb = model.embed(b)
        assert emb.shape == (3, cfg.d_model) and torch.isfinite(emb).all()
    elif name == "medium":
        with torch.device("meta"):
            model = create_model(name, VOCAB)
        assert model.num_parameters() == count_parameters(name, VOCAB)
    else:
        assert count_parameters(name, VOCAB) > 0  # large: only counted, never run on CPU


@pytest.mark.parametrize("name", list(TARGETS))
def test_parameter_counts_within_10_percent(name):
    n = count_parameters(name, VOCAB)
    assert abs(n - TARGETS[name]) <= 0.10 * TARGETS[name], n


def test_nano_is_about_2m():
    assert 1.5e6 <= count_parameters("nano", VOCAB) <= 2.5e6


@pytest.mark.parametrize("name", list_models())
def test_yaml_config_matches_registry(name):
    path = CONFIG_DIR / "model" / f"{name}.yaml"
    cfg = ModelConfig.from_dict(yaml.safe_load(path.read_text()))
    assert cfg == get_config(name)
