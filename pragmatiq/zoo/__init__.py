"""pragmatiq.zoo: the PRAGMA encoders at every registered size."""

from __future__ import annotations

from pragmatiq.zoo.config import ModelConfig, get_config, list_models, register_model
from pragmatiq.zoo.io import load_model, save_model
from pragmatiq.zoo.model import EncoderOutput, PragmaModel


def create_model(name: str, vocab_size: int, **overrides) -> PragmaModel:
    """Build registered size `name` ("nano", "small", "medium", "large") with config overrides."""
    return PragmaModel(get_config(name, vocab_size=vocab_size, **overrides))


def count_parameters(name: str, vocab_size: int = 28_000, **overrides) -> int:
    """Parameter count of a size without allocating weights (built on meta)."""
    import torch

    with torch.device("meta"):
        return create_model(name, vocab_size, **overrides).num_parameters()


__all__ = ["EncoderOutput", "ModelConfig", "PragmaModel", "count_parameters", "create_model", "get_config",
           "list_models", "load_model", "register_model", "save_model"]
