"""Token-budget batching: users of similar cost packed into batches of ~`token_budget`."""

from __future__ import annotations

import numpy as np


class TokenBudgetSampler:
    """Yields lists of user indices whose total cost is about `token_budget`.

    Users are sorted by length band with a (seed, epoch)-random order inside each band, packed
    greedily (a user above the budget gets a batch of its own, never dropped), and the batch
    order is shuffled per (seed, epoch). With `world_size > 1` each rank takes every
    world_size-th batch; ranks get the same number of batches (the last ones wrap around).
    Resumable: `state_dict()` records the epoch and the batches already yielded.
    """

    def __init__(self, costs, token_budget: int, *, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        costs = getattr(costs, "lengths", costs)
        self.costs = np.asarray(costs, dtype=np.int64)
        if token_budget <= 0:
            raise ValueError(f"token_budget must be positive, got {token_budget}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.token_budget, self.seed, self.shuffle = int(token_budget), int(seed), shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = int(epoch), 0

    def batches(self) -> list[np.ndarray]:
        """All batches of this epoch for this rank."""
        n = len(self.costs)
        if n == 0:
            return []
        rng = np.random.default_rng([self.seed, self.epoch])
        band = np.floor(np.log2(np.maximum(self.costs, 1)) * 4)  # quarter-octave bands
        jitter = rng.random(n) if self.shuffle else np.arange(n) / n
        order = np.lexsort((jitter, band)) if self.shuffle else np.argsort(self.costs, kind="stable")
        cum = np.cumsum(self.costs[order])
        batch_id = np.zeros(n, np.int64)
        start_cost, b = 0, 0
        # greedy packing over the sorted costs, vectorized by budget windows
        i = 0
        while i < n:
            j = int(np.searchsorted(cum, start_cost + self.token_budget, side="right"))
            j = max(j, i + 1)  # oversize user: a batch of its own
            batch_id[i:j] = b
            start_cost = int(cum[j - 1])
            b, i = b + 1, j
        bounds = np.flatnonzero(np.r_[True, batch_id[1:] != batch_id[:-1], True])
        out = [order[a:z] for a, z in zip(bounds[:-1], bounds[1:])]
        if self.shuffle:
            out = [out[k] for k in rng.permutation(len(out))]
        if self.world_size > 1:
            per_rank = -(-len(out) // self.world_size)
            out = (out * self.world_size)[: per_rank * self.world_size]
            out = out[self.rank::self.world_size]
        return out

    def __len__(self) -> int:
        return len(self.batches())

    def __iter__(self):
        batches = self.batches()
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1
            yield batch.tolist()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.seed = int(state.get("seed", self.seed))
