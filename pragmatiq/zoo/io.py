"""Save and load model weights as safetensors + a JSON config (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from pragmatiq.zoo.config import ModelConfig
from pragmatiq.zoo.model import PragmaModel


def save_model(model: PragmaModel, out_dir: str | Path) -> Path:
    """Write `model.safetensors` and `model.json` (the config) into out_dir."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    (out / "model.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    return out


def load_model(model_dir: str | Path, map_location: str | torch.device = "cpu") -> PragmaModel:
    """Rebuild a model from `save_model` output: built on meta, weights assigned (mmap'd safetensors)."""
    from safetensors.torch import load_file

    d = Path(model_dir)
    for name in ("model.json", "model.safetensors"):
        if not (d / name).exists():
            raise FileNotFoundError(f"{d / name} is missing: expected the output of pragmatiq.zoo.save_model")
    config = ModelConfig.from_dict(json.loads((d / "model.json").read_text()))
    with torch.device("meta"):
        model = PragmaModel(config)
    state = load_file(str(d / "model.safetensors"), device=str(map_location))
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
