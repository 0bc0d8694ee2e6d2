"""`TokenizerConfig`: how fields become tokens (configs/data/tokenizer.yaml)."""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from pragmatiq.configs import check_range

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
        _check_values(self)
        for key, kind in self.kinds.items():
            if not isinstance(key, str) or kind not in KINDS:
                raise ValueError(
                    f"tokenizer config: kind of key {key!r} is {kind!r}; expected one of {KINDS}")
        _check_timezone(self.calendar_tz)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# the allowed range of each numeric setting: (lowest, highest, whether the lowest itself is allowed).
# Token positions and tokens per event are stored as int8: at most 127 tokens per event, 128 pieces.
_RANGES = {
    "target_vocab": (1, None, True), "n_buckets": (1, None, True), "categorical_max": (0, None, True),
    "numeric_min_parse": (0.0, 1.0, False), "numeric_min_distinct": (0, None, True),
    "max_event_tokens": (2, 127, True), "max_profile_tokens": (0, None, True), "max_events": (1, None, True),
    "max_text_pieces": (1, 128, True), "sample_size": (1, None, True), "distinct_cap": (1, None, True),
    "min_value_count": (0, None, True), "seed": (0, None, True),
}
_TYPES = {"int": numbers.Integral, "float": numbers.Real, "str": str, "bool": bool, "dict[str, str]": dict}
_WHAT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
         "dict[str, str]": "a mapping of key: kind"}


def _check_values(cfg: "TokenizerConfig") -> None:
    """Every setting of its type, numbers in their range: a one-line error naming the setting, not
    a failure deep inside fitting or encoding. NumPy scalars are stored as Python's."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, np.generic):
            value = value.item()
            object.__setattr__(cfg, f.name, value)
        kind = str(f.type)
        if not isinstance(value, _TYPES[kind]) or (kind in ("int", "float") and isinstance(value, bool)):
            raise ValueError(f"tokenizer config: {f.name} must be {_WHAT[kind]}, got {value!r}")
        if f.name in _RANGES:
            check_range("tokenizer config: ", f.name, value, _RANGES[f.name])


@lru_cache(maxsize=32)
def _check_timezone(tz: str) -> None:
    """calendar_tz must name a timezone Arrow knows (checked once per name)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.hour(pa.array([0], pa.timestamp("us", tz=tz)))
    except (pa.ArrowException, ValueError) as exc:
        raise ValueError(f"tokenizer config: calendar_tz {tz!r} is not a timezone ({exc}); use an IANA "
                         "name such as 'UTC' or 'Europe/London'") from None


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
    if not isinstance(values, dict):
        raise ValueError(f"{source}: expected a mapping of tokenizer settings (key: value), got a "
                         f"{type(values).__name__}: {values!r:.80}")
    valid = {f.name for f in dataclasses.fields(TokenizerConfig)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"{source}: unknown tokenizer config key(s) {unknown}; valid keys: {sorted(valid)}")
    try:
        return TokenizerConfig(**values)
    except ValueError as exc:
        if isinstance(config, (str, os.PathLike)):
            raise ValueError(f"{source}: {exc}") from None
        raise


def read_yaml(path: Path) -> dict:
    """A YAML file's mapping (a fresh copy), parsed once per (path, mtime, size): the serving
    path resolves the defaults on every request."""
    st = path.stat()
    return copy.deepcopy(_parse_yaml(str(path.resolve()), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=16)
def _parse_yaml(path: str, mtime_ns: int, size: int) -> dict:
    from pragmatiq.configs import read_yaml as load

    return load(path) or {}
