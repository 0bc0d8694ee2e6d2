"""Checks of a pretraining run's inputs before anything is written: the run's name, the model
the config asks for, the token directory and the crop budget. Each raises a ValueError naming
the setting or the directory and what to change, or warns in the eval package's style."""

from __future__ import annotations

import os
import warnings

import numpy as np

from pragmatiq.train.config import PretrainConfig


def check_run_name(name) -> str:
    """A run's name is one directory under runs_root: not empty, no path separator, not `.`/`..`
    (an unset `--name $RUN` would write the run straight into runs_root, among the other runs)."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise ValueError(f"run name must be a string, got {type(name).__name__} {name!r}")
    if not name.strip():
        raise ValueError(f"run name {name!r} is empty: name the run (--name NAME); it is written to RUNS_ROOT/NAME")
    seps = [s for s in ("/", "\\", os.sep, os.altsep) if s and s in name]
    if seps or name in (".", "..") or "\0" in name:
        raise ValueError(f"run name {name!r} must be a single directory name (no path separator, not '.' or "
                         "'..'): the run is written to RUNS_ROOT/NAME; choose the parent directory with --runs-root")
    return name


def check_model(model_size: str, cfg: PretrainConfig) -> None:
    """The size and its `model:` overrides together (n_heads dividing d_model, ...), before the run
    directory is made: a ValueError naming the setting."""
    from pragmatiq.zoo import get_config

    try:
        get_config(model_size, **cfg.model)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith("unknown model size") else
                         f"pretraining config: model overrides {cfg.model} on size {model_size}: {msg}") from None


def check_token_dir(ds, tok_dir) -> None:
    """A token directory with users and event tokens: training on none would end with loss 0 and a
    run that learnt nothing."""
    n_users, n_events = len(ds), int(np.asarray(ds.n_events).sum())
    if n_users == 0 or n_events == 0:
        tokens = ds.manifest.get("tokens", "?")
        raise ValueError(f"{tok_dir}: nothing to train on ({n_users} users, {n_events} events, {tokens} event "
                         "tokens in its manifest): was events.parquet empty, or tokenized with cuts before every "
                         "event? Tokenize a book with events")


# with crop_to_budget, warn when the budget keeps less than this share of the book's tokens
CROP_WARN_SHARE = 0.25


def check_crop_budget(ds, cfg: PretrainConfig, tok_dir, *, warn: bool = True) -> None:
    """With `crop_to_budget`, a token_budget that holds an (average) profile and at least one event:
    below it every cropped user would train on its single newest event, over the budget anyway. A
    budget that keeps under CROP_WARN_SHARE of the book's tokens warns with the share."""
    if not cfg.crop_to_budget:
        return
    m = ds.manifest
    users, events, tokens = int(m.get("users") or len(ds)), int(m.get("events") or 0), int(m.get("tokens") or 0)
    if users and events:
        profile = m.get("profile_tokens", 0) / users + 2  # a user's [USR] and history slot (tokenizer/crop.py)
        event = tokens / events + 2  # [EVT] and the history slot
        if cfg.token_budget < profile + event:
            need = int(np.ceil(profile + 16 * event))
            raise ValueError(
                f"crop_to_budget: token_budget {cfg.token_budget:,} does not hold a user's profile (~{profile:.0f} "
                f"tokens in {tok_dir}) and one event (~{event:.0f} tokens): every user would train on its single "
                f"newest event. Raise token_budget (--token-budget; {need:,} holds a profile and 16 events) or set "
                "crop_to_budget: false")
    costs = np.asarray(ds.lengths, np.int64)
    total = int(costs.sum())
    if total:
        kept = int(np.minimum(costs, cfg.token_budget).sum()) / total
        if kept < CROP_WARN_SHARE and warn:
            cropped = int((costs > cfg.token_budget).sum())
            warnings.warn(f"crop_to_budget: token_budget {cfg.token_budget:,} keeps about {kept:.0%} of the tokens of "
                          f"{tok_dir}: {cropped:,} of {len(costs):,} users train on their newest events within it "
                          "only. Raise token_budget (grad_accum keeps the step's size) for more history per user",
                          stacklevel=2)
