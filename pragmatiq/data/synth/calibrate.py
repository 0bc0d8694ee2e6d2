"""`calibrate`: fit the synthetic bank's priors to aggregates a bank can share.

The aggregates (see `configs/data/aggregates.example.yaml`) are shares and means, never
records: persona shares, events per user-month, fraud and default rates, home-country mix,
merchant-category mix of card payments and mean ticket per category (EUR). Shares and rates
map onto the generator directly (personas, countries and takeovers are drawn at exact rates;
default and churn intercepts are solved for the target rate). Events per user-month, the
category mix and the mean tickets are bent by everything else the generator does (fading
users, planted subscriptions, income-scaled tickets), so they are fitted by pilot simulations:
generate a pilot book in memory, compare its aggregates with the targets, rescale, repeat.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import yaml

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.config import SynthConfig, load_synth_config, validate_config

AGGREGATE_KEYS = ("persona_shares", "events_per_user_month", "fraud_rate", "default_rate",
                  "churn_rate", "country_mix", "category_mix", "mean_ticket")
_SHARES = {"persona_shares": C.PERSONAS, "country_mix": C.COUNTRIES, "category_mix": C.CAT_NAMES}
_RATES = ("fraud_rate", "default_rate", "churn_rate")


def load_aggregates(stats: str | os.PathLike | dict) -> dict:
    """Read and check an aggregates file. Unknown keys warn; impossible values raise."""
    from pragmatiq.configs import config_path, read_yaml

    if isinstance(stats, dict):
        data, where = dict(stats), "aggregates"
    else:
        path = config_path(stats)
        data, where = read_yaml(path) or {}, str(path)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: aggregates must be a YAML mapping of key -> value")
    unknown = sorted(set(data) - set(AGGREGATE_KEYS))
    if unknown:
        warnings.warn(f"{where}: ignoring unknown aggregate keys {unknown}; known keys: "
                      f"{', '.join(AGGREGATE_KEYS)}", stacklevel=2)
    out = {}
    for key, names in _SHARES.items():
        if key not in data:
            continue
        v = data[key]
        if not isinstance(v, dict):
            raise ValueError(f"{where}: `{key}` must be a mapping name -> share, got {v!r}")
        bad = sorted(set(v) - set(names))
        if bad:
            raise ValueError(f"{where}: `{key}` has unknown names {bad}; valid: {list(names)}")
        vals = {n: float(v.get(n, 0.0)) for n in names}
        neg = [n for n, x in vals.items() if x < 0]
        if neg:
            raise ValueError(f"{where}: `{key}` shares must be >= 0, negative for {neg}")
        total = sum(vals.values())
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"{where}: `{key}` shares sum to {total:.4f}; they must sum to 1 "
                             f"(divide each by {total:.4f})")
        out[key] = vals
    for key in _RATES:
        if key in data:
            v = data[key]
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ValueError(f"{where}: `{key}` is a rate in [0, 1), got {v!r}")
            out[key] = float(v)
    if "events_per_user_month" in data:
        v = data["events_per_user_month"]
        if not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"{where}: `events_per_user_month` must be > 0, got {v!r}")
        out["events_per_user_month"] = float(v)
    if "mean_ticket" in data:
        v = data["mean_ticket"]
        if not isinstance(v, dict):
            raise ValueError(f"{where}: `mean_ticket` must be a mapping category -> EUR")
        bad = sorted(set(v) - set(C.CAT_NAMES))
        if bad:
            raise ValueError(f"{where}: `mean_ticket` has unknown categories {bad}; valid: "
                             f"{list(C.CAT_NAMES)}")
        neg = [n for n, x in v.items() if not isinstance(x, (int, float)) or x <= 0]
        if neg:
            raise ValueError(f"{where}: `mean_ticket` must be positive EUR amounts; bad: {neg}")
        out["mean_ticket"] = {n: float(x) for n, x in v.items()}
    return out


def pilot_aggregates(cfg: SynthConfig, progress=None) -> dict:
    """Aggregates of the book `cfg` describes, simulated in memory (no files, no strings)."""
    from pragmatiq.data.synth.block import _stats
    from pragmatiq.data.synth.user import simulate_block, simulate_user
    from pragmatiq.data.synth.world import build_world
    from pragmatiq.data.synth.writer import aggregates

    w = build_world(cfg)
    totals: dict = {}
    pos = rows = 0
    for lo in range(0, cfg.n_users, cfg.block_size):
        draws = [simulate_user(i, w) for i in range(lo, min(lo + cfg.block_size, cfg.n_users))]
        ev, local, _ = simulate_block(draws, w)
        for k, v in _stats(draws, ev, local, w).items():
            if isinstance(v, list):
                totals[k] = [a + b for a, b in zip(totals[k], v)] if k in totals else list(v)
            else:
                totals[k] = totals.get(k, 0) + v
        labels = [d.default[0] for d in draws if d.default is not None]
        pos, rows = pos + sum(labels), rows + len(labels)
        if progress is not None:
            progress.update(len(draws))
    return aggregates(totals, {"default_12m": pos}, {"default_12m": rows})


def calibrate(stats, out=None, *, progress: bool = True, base=None, pilot_users: int = 1500,
              iterations: int = 4) -> dict:
    """Fit the generator's priors to `stats` (an aggregates YAML or dict) and return the
    config as a dict; also written as YAML to `out` if given (`synth generate --config`).

    `base`: the config to start from (None: the bundled defaults). Pilot books of
    `pilot_users` users are simulated `iterations` times to fit events per user-month, the
    category mix and the mean tickets."""
    from tqdm import tqdm

    targets = load_aggregates(stats)
    cfg = load_synth_config(base)
    for key in ("persona_shares", "country_mix", "fraud_rate", "default_rate", "churn_rate",
                "events_per_user_month", "category_mix"):
        if key in targets:
            setattr(cfg, key, targets[key])
    if "mean_ticket" in targets:
        cfg.mean_ticket = {**cfg.mean_ticket, **targets["mean_ticket"]}
    cfg = validate_config(cfg)
    pilot = dataclasses.replace(cfg, n_users=pilot_users)
    bar = tqdm(total=iterations * pilot_users, unit="user", desc="calibrate",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    history = []
    try:
        for _ in range(iterations):
            agg = pilot_aggregates(pilot, bar)
            history.append(_errors(agg, targets))
            if "events_per_user_month" in targets:
                pilot.events_per_user_month *= targets["events_per_user_month"] / agg[
                    "events_per_user_month"]
            if "category_mix" in targets:
                mix = {c: pilot.category_mix[c] * _ratio(targets["category_mix"][c],
                                                         agg["category_mix"][c])
                       for c in C.CAT_NAMES}
                total = sum(mix.values())
                pilot.category_mix = {c: v / total for c, v in mix.items()}
            if "mean_ticket" in targets:
                pilot.mean_ticket = {
                    c: pilot.mean_ticket[c] * (_ratio(targets["mean_ticket"][c],
                                                      agg["mean_ticket"][c])
                                               if c in targets["mean_ticket"] else 1.0)
                    for c in C.CAT_NAMES}
    finally:
        bar.close()
    fitted = dataclasses.replace(pilot, n_users=cfg.n_users)
    result = _rounded(validate_config(fitted).to_dict())
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as f:
            f.write("# Synthetic bank config fitted by `pragmatiq synth calibrate` to shared\n"
                    "# aggregates; use with `pragmatiq synth generate --config`.\n")
            f.write("# pilot relative errors by iteration (max over keys): "
                    + ", ".join(f"{max(h.values()) if h else 0:.3f}" for h in history) + "\n")
            yaml.safe_dump(result, f, sort_keys=False)
    return result


def _ratio(target: float, realized: float) -> float:
    if realized <= 0:
        return 1.0 if target <= 0 else 2.0
    return float(np.clip(target / realized, 0.2, 5.0))


def _rounded(d):
    if isinstance(d, dict):
        return {k: _rounded(v) for k, v in d.items()}
    if isinstance(d, float):
        return float(f"{d:.6g}")
    return d


def _errors(agg: dict, targets: dict) -> dict[str, float]:
    """Largest relative error per aggregate (shares and tickets: over their entries)."""
    err = {}
    for key, t in targets.items():
        if key not in agg:
            continue
        a = agg[key]
        if isinstance(t, dict):
            err[key] = max((abs(a[k] - v) / v for k, v in t.items() if v > 0.01), default=0.0)
        elif t > 0:
            err[key] = abs(a - t) / t
    return err
