"""Parity of an exported encoder against the native model on random ragged batches.

`random_batches` draws PackedBatches of mixed shapes — always including one user with one
event — and `measure` reports the worst max |Δ| and the lowest per-user cosine over them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from pragmatiq.tokenizer.packed import PackedBatch

N_SPECIAL = 5  # ids 0-4 are [PAD] [UNK] [MASK] [EVT] [USR]


def ragged_batch(events: list[int], profile: list[int], vocab_size: int, rng: np.random.Generator,
                 max_event_tokens: int = 12) -> PackedBatch:
    """A batch of len(events) users with the given event and profile-token counts, random content."""
    n_ev = np.asarray(events, np.int64)  # (U,)
    n_p = np.asarray(profile, np.int64)  # (U,)
    E, P = int(n_ev.sum()), int(n_p.sum())
    ntok = rng.integers(1, max_event_tokens + 1, size=E)  # (E,)
    T = int(ntok.sum())
    ids = lambda n: torch.from_numpy(rng.integers(N_SPECIAL, vocab_size, size=n))  # noqa: E731
    cu = lambda c: torch.from_numpy(np.r_[0, np.cumsum(c)].astype(np.int32))  # noqa: E731
    pos = torch.from_numpy((rng.random(T) < 0.2) * rng.integers(0, 4, size=T))
    return PackedBatch(
        key_ids=ids(T), value_ids=ids(T), positions=pos, cu_tokens=cu(ntok), max_tokens=int(ntok.max(initial=0)),
        event_tau=torch.from_numpy(np.sort(rng.random(E) * 120).astype(np.float32)[::-1].copy()),
        event_hour=torch.from_numpy(rng.integers(0, 24, E)), event_dow=torch.from_numpy(rng.integers(0, 7, E)),
        event_dom=torch.from_numpy(rng.integers(1, 32, E)), cu_events=cu(n_ev), max_events=int(n_ev.max(initial=0)),
        profile_key_ids=ids(P), profile_value_ids=ids(P), profile_positions=torch.zeros(P, dtype=torch.int64),
        profile_tau=torch.from_numpy((rng.random(P) * 100).astype(np.float32)), cu_profile=cu(n_p),
        max_profile=int(n_p.max(initial=0)), user_ids=[f"u{i}" for i in range(len(events))])


def random_batches(vocab_size: int, n: int = 5, seed: int = 0, max_users: int = 16,
                   max_events: int = 64) -> list[PackedBatch]:
    """n ragged batches: the first is 1 user with 1 event, the rest random sizes."""
    rng = np.random.default_rng(seed)
    out = [ragged_batch([1], [2], vocab_size, rng)]
    for _ in range(n - 1):
        u = int(rng.integers(2, max_users + 1))
        out.append(ragged_batch(rng.integers(1, max_events + 1, u).tolist(), rng.integers(1, 24, u).tolist(),
                                vocab_size, rng))
    return out


@dataclass
class Parity:
    variant: str
    batches: int
    max_abs: float
    min_cosine: float
    tolerance: dict
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def compare(want: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(max |Δ|, min per-row cosine) of two (U, d) arrays."""
    if want.shape != got.shape:
        return float("inf"), -1.0
    dot = (want * got).sum(1)
    norm = np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1)
    cos = dot / np.maximum(norm, 1e-12)
    return float(np.abs(want - got).max(initial=0.0)), float(cos.min(initial=1.0))


def measure(variant: str, reference, runner, batches: list[PackedBatch], *, max_abs: float | None = 1e-4,
            min_cosine: float | None = None) -> Parity:
    """Run both callables on every batch; passed when within the given tolerances."""
    worst_abs, worst_cos = 0.0, 1.0
    for b in batches:
        a, c = compare(reference(b), runner(b))
        worst_abs, worst_cos = max(worst_abs, a), min(worst_cos, c)
    ok = (max_abs is None or worst_abs <= max_abs) and (min_cosine is None or worst_cos >= min_cosine)
    tol = {k: v for k, v in (("max_abs", max_abs), ("min_cosine", min_cosine)) if v is not None}
    return Parity(variant, len(batches), worst_abs, worst_cos, tol, ok)
