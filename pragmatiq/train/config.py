"""`PretrainConfig`: configs/pretrain.yaml, then configs/train/<size>.yaml, then overrides."""

from __future__ import annotations

import dataclasses
import numbers
import os
from dataclasses import dataclass, field

from pragmatiq.configs import check_range
from pragmatiq.zoo.text_encoder import DEFAULT_TEXT_ENCODER


@dataclass(frozen=True)
class PretrainConfig:
    max_steps: int = 1000
    token_budget: int = 16_384  # tokens per micro-batch (per process)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3  # AdamW: embeddings, norms, biases, calendar input layer
    muon_lr: float = 0.02  # Muon: 2-D hidden weights
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to this share of the peak
    grad_clip: float = 1.0
    label_smoothing: float = 0.1
    token_rate: float = 0.15  # masking: share of tokens
    event_rate: float = 0.10  # share of whole events
    group_rate: float = 0.10  # share of (user, key) groups
    unk_share: float = 0.10  # of the selected: [UNK] with no target (the rest [MASK] with a target)
    text_mse_weight: float = 1.0  # lambda of the Nemotron MSE term
    # Nemotron variant (token shards made with nemotron: true): the frozen sentence-transformers
    # model (Hugging Face id or local directory) that maps each text sentinel's string to a vector
    text_encoder: str = DEFAULT_TEXT_ENCODER
    # weight of the user-view term: every masked token also predicted from its user's embedding
    # alone (train/loss.py); 0 = the 3-view objective alone, and no user head in the model
    user_loss_weight: float = 0.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 100
    eval_users: int = 64  # held-out users for the held-out loss
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    stop_after: int | None = None  # stop (with a checkpoint) at this step, as a spot interruption would
    compile: bool = False  # torch.compile the model
    num_threads: int | None = None  # torch CPU threads (None: leave torch's default)
    head_workers: int | None = None  # threads for the fused MLM head's row blocks (None: this process's cores)
    # CPU: the events of each batch are encoded in this many parts side by side, one thread each
    # (None: this process's cores; 1: one pass). Results depend on it, as on num_threads
    event_workers: int | None = None
    # the fused MLM head's matmuls: "auto" (bf16 on a CPU that multiplies bf16 natively, else the
    # autocast dtype: bf16 on CUDA, fp32 on other CPUs), "fp32" or "bf16"; softmax always fp32
    head_precision: str = "auto"
    fsdp: bool = False  # fully_shard the model (large sizes, several GPUs)
    prefetch: int = 2
    # a user above token_budget trains on its newest events that fit the budget (tokenizer/crop.py),
    # so no batch outgrows it; off: such a user is a batch of its own, as long as its history
    crop_to_budget: bool = False
    model: dict = field(default_factory=dict)  # ModelConfig overrides

    def __post_init__(self):
        from pragmatiq.train.fused_ce import HEAD_PRECISIONS

        _check_values(self)
        if self.head_precision not in HEAD_PRECISIONS:
            raise ValueError(f"pretraining config: head_precision must be one of {list(HEAD_PRECISIONS)}, "
                             f"got {self.head_precision!r}")
        _check_model_overrides(self.model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# the allowed range of each numeric setting: (lowest, highest, whether the lowest itself is allowed)
_AT_LEAST_1 = (1, None, True)
_AT_LEAST_0 = (0, None, True)
_SHARE = (0.0, 1.0, True)
_RANGES = {
    "max_steps": _AT_LEAST_1, "token_budget": _AT_LEAST_1, "grad_accum": _AT_LEAST_1, "log_every": _AT_LEAST_1,
    "checkpoint_every": _AT_LEAST_1, "keep_checkpoints": _AT_LEAST_1, "stop_after": _AT_LEAST_1,
    "num_threads": _AT_LEAST_1, "head_workers": _AT_LEAST_1, "event_workers": _AT_LEAST_1,
    "warmup_steps": _AT_LEAST_0, "eval_every": _AT_LEAST_0, "eval_users": _AT_LEAST_0, "prefetch": _AT_LEAST_0,
    "seed": _AT_LEAST_0, "lr": (0.0, None, False), "grad_clip": (0.0, None, False), "muon_lr": _AT_LEAST_0,
    "weight_decay": _AT_LEAST_0, "text_mse_weight": _AT_LEAST_0, "user_loss_weight": _AT_LEAST_0,
    "min_lr_ratio": _SHARE, "token_rate": _SHARE, "event_rate": _SHARE, "group_rate": _SHARE,
    "unk_share": _SHARE, "label_smoothing": (0.0, 1.0, True),
}


def _check_values(cfg: "PretrainConfig") -> None:
    """Every setting of the type its default has, numbers in their range: a one-line error naming
    the key, not a failure deep inside training."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        optional = "None" in str(f.type)
        if value is None and optional:
            continue
        kind = str(f.type).replace(" | None", "")
        if kind in ("int", "float"):  # numpy numbers too, stored as Python's
            ok = isinstance(value, numbers.Integral if kind == "int" else numbers.Real) and not isinstance(value, bool)
            if ok:
                value = int(value) if kind == "int" else float(value)
                object.__setattr__(cfg, f.name, value)
        else:
            ok = isinstance(value, {"str": str, "bool": bool, "dict": dict}[kind])
        if not ok:
            raise ValueError(f"pretraining config: {f.name} must be {'an' if kind == 'int' else 'a'} {kind}"
                             f"{' or null' if optional else ''}, got {value!r}")
        if f.name in _RANGES:
            check_range("pretraining config: ", f.name, value, _RANGES[f.name])


# ModelConfig fields a pretraining config may not override, and why
_MODEL_FIXED = {
    "user_head": "model.user_head follows user_loss_weight (> 0: the model has the user-view head); set "
                 "user_loss_weight instead",
    "vocab_size": "model.vocab_size comes from the token directory's vocabulary (one embedding row per token "
                  "id of its vocab.json); remove it",
    "d_text": "model.d_text comes from the frozen text encoder of Nemotron-variant shards (tokenized with "
              "nemotron: true); remove it",
    "text_encoder": "model.text_encoder is the pretraining setting text_encoder; set that instead",
}


def _check_model_overrides(model: dict) -> None:
    """The `model:` overrides by name: known ModelConfig fields, none of those the run sets itself,
    each value of its type and in its range (pragmatiq.zoo.config.check_model_values)."""
    from pragmatiq.zoo.config import ModelConfig, check_model_values

    for name, why in _MODEL_FIXED.items():
        if name in model:
            raise ValueError(f"pretraining config: {why}")
    valid = {f.name for f in dataclasses.fields(ModelConfig)} - set(_MODEL_FIXED)
    unknown = sorted(set(model) - valid)
    if unknown:
        raise ValueError(f"pretraining config: unknown model setting(s) {unknown}; valid: {sorted(valid)}")
    check_model_values(model, where="pretraining config: model.")


def _read_yaml(path) -> dict:
    from pragmatiq.configs import config_path, read_yaml

    data = read_yaml(config_path(path)) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of pretraining settings")
    return data


def _is_defaults_file(path) -> bool:
    """Whether `path` is the bundled defaults file itself (configs/pretrain.yaml)."""
    from pragmatiq.configs import CONFIG_DIR, config_path

    try:
        return config_path(path).resolve() == (CONFIG_DIR / "pretrain.yaml").resolve()
    except FileNotFoundError:
        return False


def load_pretrain_config(model_size: str = "small", config=None) -> PretrainConfig:
    """Defaults (configs/pretrain.yaml) < the size's recipe (configs/train/<size>.yaml) < `config`
    (a dict of overrides, a YAML path or a PretrainConfig). Unknown keys are errors.
    A YAML file overrides the recipe for every key it sets, so it should hold only the keys to
    change; the bundled defaults file itself is the base and overrides nothing."""
    if isinstance(config, PretrainConfig):
        return config
    values = _read_yaml("configs/pretrain.yaml")
    from pragmatiq.configs import CONFIG_DIR

    recipe = CONFIG_DIR / "train" / f"{model_size}.yaml"
    if recipe.exists():
        values.update(_read_yaml(recipe))
    if isinstance(config, (str, os.PathLike)):
        if not _is_defaults_file(config):
            values.update(_read_yaml(config))
    elif isinstance(config, dict):
        values.update(config)
    elif config is not None:
        raise TypeError(f"pretrain config must be a dict, a YAML path or None, not {type(config).__name__}")
    valid = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"unknown pretraining config key(s) {unknown}; valid keys: {sorted(valid)}")
    return PretrainConfig(**values)
