"""`TokenizerConfig`: how fields become tokens (configs/data/tokenizer.yaml)."""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


KINDS = ("numeric", "categorical", "text")


@dataclass(frozen=True)
class TokenizerConfig:
    target_vocab: int = 28_000  # total ids: specials + keys + values + BPE pieces
    n_buckets: int = 64  # numeric percentile buckets (plus one zero bucket)
    categorical_max: int = 1000  # at most this many distinct values -> categorical
    numeric_min_parse: float = 0.98  # share of values that must parse as numbers
    numeric_min_distinct: int = 64  # fewer distinct numbers than this -> categorical
    max_event_tokens: int = 24  # source token included
    max_profile_tokens: int = 200  # whole items only
    max_events: int = 6500  # most recent events kept per user
    max_text_pieces: int = 8  # BPE pieces kept per text value
    sample_size: int = 20_000  # reservoir sample per key for numeric quantiles
    distinct_cap: int = 50_000  # distinct values tracked per key while fitting
    min_value_count: int = 1  # categorical values seen fewer times map to [UNK]
    calendar_tz: str = "UTC"
    seed: int = 0
    nemotron: bool = False  # text fields -> one sentinel token carrying the raw string
    kinds: dict[str, str] = field(default_factory=dict)  # per-key override: key -> kind

    def __post_init__(self):
        for key, kind in self.kinds.items():
            if kind not in KINDS:
                raise ValueError(
                    f"tokenizer config: kind of key {key!r} is {kind!r}; expected one of {KINDS}")
        if self.max_event_tokens < 2:
            raise ValueError("tokenizer config: max_event_tokens must be at least 2")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_tokenizer_config(config=None) -> TokenizerConfig:
    """A config from a TokenizerConfig, a dict of overrides, a YAML path, or None (defaults
    from configs/data/tokenizer.yaml). Unknown keys are errors naming the valid ones."""
    if isinstance(config, TokenizerConfig):
        return config
    from pragmatiq.configs import config_path

    values: dict = {}
    source = "configs/data/tokenizer.yaml"
    if config is None or isinstance(config, dict):
        values = read_yaml(config_path(source))
        values.update(config or {})
    elif isinstance(config, (str, os.PathLike)):
        source = str(config)
        values = read_yaml(config_path(config))
    else:
        raise TypeError(f"tokenizer config must be a dict, a YAML path or None, not {type(config)}")
    valid = {f.name for f in dataclasses.fields(TokenizerConfig)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"{source}: unknown tokenizer config key(s) {unknown}; valid keys: {sorted(valid)}")
    return TokenizerConfig(**values)


def read_yaml(path: Path) -> dict:
    """A YAML file's mapping (a fresh copy), parsed once per (path, mtime, size): the serving
    path resolves the defaults on every request."""
    st = path.stat()
    return copy.deepcopy(_parse_yaml(str(path.resolve()), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=16)
def _parse_yaml(path: str, mtime_ns: int, size: int) -> dict:
    from pragmatiq.configs import read_yaml as load

    return load(path) or {}
