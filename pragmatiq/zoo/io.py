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


def read_model_config(model_dir: str | Path) -> ModelConfig:
    """The `model.json` of a `save_model` directory; a missing, unreadable or invalid file raises
    naming it."""
    d = Path(model_dir)
    for name in ("model.json", "model.safetensors"):
        if not (d / name).exists():
            raise FileNotFoundError(f"{d / name} is missing: expected the output of pragmatiq.zoo.save_model")
    path = d / "model.json"
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is damaged: not valid JSON ({exc}); restore it from the run "
                         "(it is written beside model.safetensors at the end of training)") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} is damaged: expected a JSON object of model settings, got "
                         f"{type(values).__name__}")
    try:
        return ModelConfig.from_dict(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def weight_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor in a safetensors file, from its header alone (no weights read);
    a truncated, empty or foreign file raises naming it."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except SafetensorError as exc:
        size = path.stat().st_size
        raise ValueError(f"{path} is damaged (truncated, empty or not a safetensors file: {exc}; "
                         f"{size:,} bytes): copy the run's model.safetensors again from where it was "
                         "trained") from None


def check_model_dir(model_dir: str | Path) -> ModelConfig:
    """The config of a `save_model` directory, checked against its weights' names and shapes
    (headers only, cheap): damage raises a ValueError naming the file and what is wrong."""
    d = Path(model_dir)
    config = read_model_config(d)
    shapes = weight_shapes(d / "model.safetensors")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in PragmaModel(config).state_dict().items()}
    problems = [f"{k}: weights {shapes[k]} vs {expected[k]} from model.json"
                for k in expected if k in shapes and shapes[k] != expected[k]]
    missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing:
        problems.append(f"{len(missing)} tensor(s) model.json needs are missing from the weights (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} tensor(s) in the weights that model.json has no place for (e.g. {extra[0]})")
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(f"{d / 'model.safetensors'} does not match {d / 'model.json'}: "
                         f"{'; '.join(problems[:3])}{more}. The two files come from different runs or sizes: "
                         "restore the run's own pair")
    return config


def load_model(model_dir: str | Path, map_location: str | torch.device = "cpu") -> PragmaModel:
    """Rebuild a model from `save_model` output: built on meta, weights assigned (mmap'd safetensors).
    A damaged or inconsistent directory raises a ValueError naming the file (`check_model_dir`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(model_dir)
    config = check_model_dir(d)
    with torch.device("meta"):
        model = PragmaModel(config)
    try:
        state = load_file(str(d / "model.safetensors"), device=str(map_location))
    except SafetensorError as exc:
        raise ValueError(f"{d / 'model.safetensors'} is damaged: {exc}") from None
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def check_run_vocab(vocab_path: str | Path, config: ModelConfig, run_dir: str | Path | None = None) -> None:
    """A run's vocabulary fits its model: as many token ids as the model has embedding rows. A
    vocab.json from another tokenization would feed the model ids it has no rows for (or the
    wrong ones): refused here, naming both files."""
    from pragmatiq.tokenizer.vocab import Vocab

    vocab_path = Path(vocab_path)
    n = len(Vocab.load(vocab_path))
    if n != config.vocab_size:
        run = Path(run_dir) if run_dir is not None else vocab_path.parent
        raise ValueError(f"{vocab_path} does not belong to the model in {run}: it has {n:,} token ids, the model "
                         f"{config.vocab_size:,} (vocab_size in model.json). Put back the vocab.json the run was "
                         f"trained with (the token directory named by tok_dir in {run / 'config.yaml'} holds it)")
