"""`ModelConfig` and the size registry (DESIGN §5). Sizes are registered by decorator."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields, replace
from typing import Callable

from pragmatiq.configs import check_range


@dataclass
class ModelConfig:
    name: str = "custom"
    vocab_size: int = 28_000
    d_model: int = 64  # d
    n_heads: int = 2  # H; head dim D = d / H
    n_layers_profile: int = 1
    n_layers_event: int = 2
    n_layers_history: int = 1
    ffn_mult: int = 4
    dropout: float = 0.1
    attn_dropout: float = 0.0  # 0 keeps every attention backend (triton, torch_varlen) eligible
    rope_base: float = 10_000.0
    d_text: int = 0  # Nemotron variant: width of the frozen text vectors (0 = off)
    text_encoder: str = ""  # Nemotron variant: the frozen sentence-transformers model that makes them
    # event vectors also get sin/cos of their tau (log-seconds to the cut) at this many
    # frequencies, so the history's values, not only its attention, know when (0 = off)
    recency_freqs: int = 4
    # a user-view head (training only): predicts every masked token of a user from the user
    # embedding alone, through the tied output layer (PretrainConfig.user_loss_weight)
    user_head: bool = False
    attn_backend: str = "auto"
    pad_id: int = 0
    mask_id: int = 1
    unk_id: int = 2
    usr_id: int = 3
    evt_id: int = 4

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def __post_init__(self):
        check_model_values(self.to_dict())
        specials = {n: getattr(self, n) for n in SPECIAL_IDS}
        if max(specials.values()) >= self.vocab_size:
            raise ValueError(f"model config: vocab_size {self.vocab_size} leaves no room for the special tokens "
                             f"({', '.join(f'{n} {i}' for n, i in specials.items())})")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head dim {self.head_dim} must be even for TimeRoPE")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; valid: {sorted(known)}")
        return cls(**({"recency_freqs": 0} | d))  # runs saved before the field existed had none


SPECIAL_IDS = ("pad_id", "mask_id", "unk_id", "usr_id", "evt_id")
# the allowed range of each numeric field: (lowest, highest, whether each end itself is allowed)
_AT_LEAST_1 = (1, None, True, True)
_AT_LEAST_0 = (0, None, True, True)
_RANGES = {
    "vocab_size": _AT_LEAST_1, "d_model": _AT_LEAST_1, "n_heads": _AT_LEAST_1, "n_layers_profile": _AT_LEAST_1,
    "n_layers_event": _AT_LEAST_1, "n_layers_history": _AT_LEAST_1, "ffn_mult": _AT_LEAST_1,
    "dropout": (0.0, 1.0, True, False), "attn_dropout": (0.0, 1.0, True, False), "rope_base": (0.0, None, False, True),
    "d_text": _AT_LEAST_0, "recency_freqs": _AT_LEAST_0, **{name: _AT_LEAST_0 for name in SPECIAL_IDS},
}


def check_model_values(values: dict, where: str = "model config: ") -> None:
    """Each ModelConfig field in `values` of its type (ints for int fields, numbers for float
    fields, ...) and in its range, by name: a one-line error naming the field (`where` prefixes
    it), not a negative tensor dimension deep inside torch. Unknown names are left to the caller."""
    types = {f.name: f.type for f in fields(ModelConfig)}
    for name, value in values.items():
        kind = str(types.get(name, ""))
        if kind == "int":
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        elif kind in ("str", "bool"):
            ok = isinstance(value, {"str": str, "bool": bool}[kind])
        else:
            continue
        if not ok:
            raise ValueError(f"{where}{name} must be {'an' if kind == 'int' else 'a'} {kind}, got {value!r}")
        if name in _RANGES:
            check_range(where, name, value, _RANGES[name])


_REGISTRY: dict[str, Callable[[], ModelConfig]] = {}


def register_model(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
    """Decorator: register a size under the function's name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return list(_REGISTRY)


def get_config(name: str, **overrides) -> ModelConfig:
    """The registered config `name` with `overrides` applied; unknown names/fields raise listing valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model size {name!r}; valid: {', '.join(_REGISTRY)}")
    cfg = _REGISTRY[name]()
    known = {f.name for f in fields(ModelConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown ModelConfig overrides {bad}; valid: {sorted(known)}")
    return replace(cfg, **overrides)


@register_model
def nano() -> ModelConfig:  # ~2M params at 28k vocab; CPU and CI
    return ModelConfig(name="nano", d_model=64, n_heads=2, n_layers_profile=1, n_layers_event=2,
                       n_layers_history=1)


@register_model
def small() -> ModelConfig:  # paper 10M
    return ModelConfig(name="small", d_model=192, n_heads=3, n_layers_profile=1, n_layers_event=5,
                       n_layers_history=2)


@register_model
def medium() -> ModelConfig:  # paper 100M
    return ModelConfig(name="medium", d_model=512, n_heads=8, n_layers_profile=3, n_layers_event=16,
                       n_layers_history=6)


@register_model
def large() -> ModelConfig:  # paper 1B
    return ModelConfig(name="large", d_model=1024, n_heads=16, n_layers_profile=9, n_layers_event=45,
                       n_layers_history=18)
