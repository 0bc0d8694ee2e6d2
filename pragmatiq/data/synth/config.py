"""`SynthConfig`: every knob of the synthetic bank, its defaults and its checks.

A config comes from a dict of overrides, a YAML file, or None (the bundled
`configs/data/synthetic.yaml`). Unknown keys are an error that lists the valid keys
(`load_synth_config`); impossible values (shares that do not sum to 1, negative rates) raise
`ValueError` naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pragmatiq.data.synth import catalog as C

DEFAULT_CONFIG = "configs/data/synthetic.yaml"


def _shares(names, values) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, values)}


@dataclass
class SynthConfig:
    """Parameters of the synthetic bank. Rates are per user unless said otherwise."""

    n_users: int = 2000
    seed: int = 0
    # Reseeds only the realized outcomes (default, churn) and their post-eval consequences,
    # leaving every cause and all pre-eval history untouched. None: derived from `seed`.
    outcome_seed: int | None = None
    start: str = "2024-01-01"  # first day of the window (UTC)
    n_months: int = 25
    block_size: int = 250  # users per generation block (part of the output's identity)
    compression: str = "zstd"
    # Behaviour priors.
    events_per_user_month: float = 40.0  # mean over active user-months
    activity_sigma: float = 0.6  # lognormal spread of per-user activity (heavy tail)
    persona_shares: dict = field(
        default_factory=lambda: _shares(
            C.PERSONAS, (0.14, 0.26, 0.24, 0.10, 0.12, 0.14)
        )
    )
    country_mix: dict = field(default_factory=lambda: _shares(C.COUNTRIES, C.COUNTRY_MIX))
    category_mix: dict = field(default_factory=lambda: _shares(C.CAT_NAMES, C.CAT_SHARE))
    mean_ticket: dict = field(default_factory=lambda: _shares(C.CAT_NAMES, C.CAT_TICKET))
    # Outcomes.
    default_rate: float = 0.03  # P(default within 12 months of eval) among eligible users
    churn_rate: float = 0.11  # P(churn within 6 months of eval) among active users
    fraud_rate: float = 0.02  # share of users with an account-takeover episode in the window
    mule_rings_per_1000: float = 1.0  # money-mule rings per 1,000 users
    ltv_cost_per_month: float = 12.5  # EUR servicing cost per active month (sets ltv_positive)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


VALID_KEYS = tuple(f.name for f in fields(SynthConfig))
_SHARE_KEYS = {
    "persona_shares": C.PERSONAS,
    "country_mix": C.COUNTRIES,
    "category_mix": C.CAT_NAMES,
}


def _check_shares(key: str, value: Any, names: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"synth config `{key}` must be a mapping of name -> share, got {value!r}")
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(
            f"synth config `{key}` has unknown names {unknown}; valid names: {list(names)}"
        )
    out = {n: float(value.get(n, 0.0)) for n in names}
    neg = [n for n, v in out.items() if v < 0]
    if neg:
        raise ValueError(f"synth config `{key}`: shares must be >= 0, got negative {neg}")
    total = sum(out.values())
    if abs(total - 1.0) > 1e-3:
        raise ValueError(
            f"synth config `{key}`: shares sum to {total:.4f}, must sum to 1 "
            f"(divide each share by {total:.4f})"
        )
    return {n: v / total for n, v in out.items()}


def validate_config(cfg: SynthConfig) -> SynthConfig:
    """Raise `ValueError` on impossible values; returns `cfg` with shares normalized."""
    if not isinstance(cfg.n_users, int) or cfg.n_users < 1:
        raise ValueError(f"synth config `n_users` must be a positive integer, got {cfg.n_users!r}")
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"synth config `seed` must be a non-negative integer, got {cfg.seed!r}")
    if cfg.outcome_seed is not None and (not isinstance(cfg.outcome_seed, int)
                                         or cfg.outcome_seed < 0):
        raise ValueError("synth config `outcome_seed` must be null or a non-negative integer")
    if not isinstance(cfg.n_months, int) or cfg.n_months < 20:
        raise ValueError(
            f"synth config `n_months` must be an integer >= 20 (the label horizons need 12 "
            f"months of history before a 12-month outcome window), got {cfg.n_months!r}"
        )
    if not isinstance(cfg.block_size, int) or cfg.block_size < 1:
        raise ValueError(f"synth config `block_size` must be a positive integer, got {cfg.block_size!r}")
    cfg.start = str(cfg.start)  # YAML reads an unquoted 2024-01-01 as a date
    try:
        first = np.datetime64(cfg.start, "D")
    except ValueError:
        raise ValueError(f"synth config `start` must be a date like 2024-01-01, got {cfg.start!r}") from None
    if first != first.astype("datetime64[M]").astype("datetime64[D]"):
        raise ValueError(f"synth config `start` must be the first day of a month, got {cfg.start}")
    for key in ("events_per_user_month", "activity_sigma", "ltv_cost_per_month",
                "mule_rings_per_1000"):
        v = getattr(cfg, key)
        if not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"synth config `{key}` must be a non-negative number, got {v!r}")
    if cfg.events_per_user_month <= 0:
        raise ValueError("synth config `events_per_user_month` must be > 0")
    for key in ("default_rate", "churn_rate", "fraud_rate"):
        v = getattr(cfg, key)
        if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
            raise ValueError(f"synth config `{key}` is a probability in [0, 1), got {v!r}")
    for key, names in _SHARE_KEYS.items():
        setattr(cfg, key, _check_shares(key, getattr(cfg, key), names))
    if not isinstance(cfg.mean_ticket, dict):
        raise ValueError("synth config `mean_ticket` must be a mapping category -> EUR")
    unknown = sorted(set(cfg.mean_ticket) - set(C.CAT_NAMES))
    if unknown:
        raise ValueError(
            f"synth config `mean_ticket` has unknown categories {unknown}; valid: "
            f"{list(C.CAT_NAMES)}"
        )
    tickets = {n: float(cfg.mean_ticket.get(n, t)) for n, t in zip(C.CAT_NAMES, C.CAT_TICKET)}
    bad = [n for n, v in tickets.items() if v <= 0]
    if bad:
        raise ValueError(f"synth config `mean_ticket` must be > 0, got non-positive for {bad}")
    cfg.mean_ticket = tickets
    if cfg.compression not in ("zstd", "snappy", "gzip", "none", "lz4", "brotli"):
        raise ValueError(f"synth config `compression` must be zstd|snappy|gzip|lz4|brotli|none, "
                         f"got {cfg.compression!r}")
    return cfg


def load_synth_config(config: dict | str | os.PathLike | SynthConfig | None = None
                      ) -> SynthConfig:
    """Resolve a config: None (bundled defaults), a YAML path, a dict of overrides, or a
    `SynthConfig`. Dict overrides apply on top of the bundled `synthetic.yaml`."""
    from pragmatiq.configs import config_path, read_yaml

    if isinstance(config, SynthConfig):
        return validate_config(dataclasses.replace(config))
    base: dict[str, Any] = {}
    try:
        base = read_yaml(config_path(DEFAULT_CONFIG)) or {}
    except FileNotFoundError:
        base = {}
    if config is None:
        overrides: dict[str, Any] = {}
    elif isinstance(config, dict):
        overrides = dict(config)
    elif isinstance(config, (str, os.PathLike)):
        path = config_path(config)
        overrides = read_yaml(path) or {}
        if not isinstance(overrides, dict):
            raise ValueError(f"{path}: a synth config must be a YAML mapping")
    else:
        raise TypeError(f"config must be a dict, a YAML path or None, got {type(config).__name__}")
    merged = {**base, **overrides}
    unknown = sorted(set(merged) - set(VALID_KEYS))
    if unknown:
        raise ValueError(
            f"unknown synth config keys {unknown}; valid keys: {', '.join(VALID_KEYS)}"
        )
    return validate_config(SynthConfig(**merged))


def dump_config(cfg: SynthConfig, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
