"""`EventStateCache`: [EVT] states of events already encoded, shared across batches and cuts.

In eval mode an event's `[EVT]` state depends on its tokens and the weights alone (see
zoo/dedup.py), so when a book is embedded batch after batch, or at two cuts for two label tables,
an event seen before need not be encoded again. On the quickstart book 1.57M events are 995k
distinct within their batches and 719k across the whole book (one pass over it: 33–36 s against
39–41 s without the cache, 2-core Zen 4), and the probes' second cut finds most of its events
held. Set one on a model in eval mode:

    model.event_cache = EventStateCache()   # model.embed(batch) now reads and fills it

Entries are keyed by a 64-bit hash of the event's (key, value, position) codes and checked code
by code against the stored event, so a hash collision is a miss, never a wrong state. The cache
stops growing at `max_bytes`; it belongs to one model's weights (use a new one when they change).
"""

from __future__ import annotations

import torch

from pragmatiq.zoo.dedup import first_occurrences, gather_segments, segment_layout

# position range of the codes a cache compares (token_codes' `span`): batches then agree on codes
POSITION_SPAN = 1 << 20
# bytes a stored event takes besides its state and codes: its start and length, and the index's
# hash and row, int64 each
_EVENT_BYTES = 32


def _grown(t: torch.Tensor, need: int) -> torch.Tensor:
    """t (n, ...) with at least `need` rows, by doubling; the first rows are kept."""
    if t.shape[0] >= need:
        return t
    out = t.new_empty((max(need, 2 * t.shape[0], 1024),) + tuple(t.shape[1:]))
    out[: t.shape[0]] = t
    return out


class _SortedIndex:
    """hash -> row for distinct int64 hashes, as sorted runs merged like a binary counter (a new
    run merges with the one before while it is at least half that one's size): lookups and
    inserts are a searchsorted per run, O(log n) runs, O(n log n) sorting in all; no Python loop
    per entry."""

    def __init__(self):
        self.runs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (hashes sorted (n,), rows (n,)), largest first

    def find(self, keys: torch.Tensor) -> torch.Tensor:
        """(K,) int64 hashes -> (K,) int64 their rows, -1 where not held."""
        out = torch.full_like(keys, -1)
        for k, r in self.runs:
            at = torch.searchsorted(k, keys).clamp_(max=k.shape[0] - 1)  # (K,)
            out = torch.where(k[at] == keys, r[at], out)
        return out

    def insert(self, keys: torch.Tensor, rows: torch.Tensor) -> None:
        """Add (K,) hashes, none held and no two equal, with their (K,) rows."""
        if not keys.shape[0]:
            return
        order = torch.argsort(keys)
        self.runs.append((keys[order], rows[order]))
        while len(self.runs) > 1 and 2 * self.runs[-1][0].shape[0] >= self.runs[-2][0].shape[0]:
            (k2, r2), (k1, r1) = self.runs.pop(), self.runs.pop()
            k, r = torch.cat([k1, k2]), torch.cat([r1, r2])
            order = torch.argsort(k)
            self.runs.append((k[order], r[order]))


class EventStateCache:
    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self._index = _SortedIndex()  # hash -> row of the stored event
        self._states: torch.Tensor | None = None  # (capacity, d)
        self._codes = torch.empty(0, dtype=torch.int64)  # (capacity tokens,) codes of stored events
        self._start = torch.empty(0, dtype=torch.int64)  # (capacity,) first code of each event
        self._length = torch.empty(0, dtype=torch.int64)  # (capacity,)
        self.n_events = 0
        self.n_codes = 0
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        per_event = _EVENT_BYTES + (0 if self._states is None else self._states[0].nbytes)
        return self.n_events * per_event + 8 * self.n_codes

    def lookup(self, hashes: torch.Tensor, codes: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
        """Events hashes (K,), their codes (N,) packed by cu (K+1,) -> (K,) int64 row of each in
        `states` (-1 where not held: unseen, or a different event under the same hash)."""
        hashes, codes, cu = hashes.cpu(), codes.cpu(), cu.cpu()
        rows = self._index.find(hashes)  # (K,)
        held = torch.nonzero(rows >= 0).squeeze(1)  # (H,)
        if held.numel():
            lengths = (cu[1:] - cu[:-1]).to(torch.int64)[held]  # (H,)
            same = self._length[rows[held]] == lengths
            rows[held[~same]] = -1
            held = held[same]
            q_rows, q_cu, _ = gather_segments(cu, held)  # (N_H,) codes of the held events, in order
            _, _, seg, place = segment_layout(q_cu, q_rows.shape[0])  # (N_H,) event and place of each code
            stored = self._codes[self._start[rows[held]][seg] + place]  # (N_H,)
            differs = torch.zeros(held.shape[0], dtype=torch.int64).index_add_(
                0, seg, (stored != codes[q_rows]).to(torch.int64))  # (H,)
            rows[held[differs > 0]] = -1
        n_held = int((rows >= 0).sum())
        self.hits += n_held
        self.misses += rows.shape[0] - n_held
        return rows

    def states(self, rows: torch.Tensor) -> torch.Tensor:
        """(K,) rows from `lookup`, all held -> (K, d) their [EVT] states."""
        return self._states[rows.to(self._states.device)]

    def add(self, hashes: torch.Tensor, codes: torch.Tensor, cu: torch.Tensor, states: torch.Tensor) -> None:
        """Store events hashes (K,), codes (N,) packed by cu (K+1,), states (K, d), as far as
        `max_bytes` allows; a hash already held keeps its event."""
        if not states.shape[0]:
            return
        hashes, codes, cu = hashes.cpu(), codes.cpu(), cu.cpu()
        per_event = _EVENT_BYTES + states[0].nbytes
        room = max(0, (self.max_bytes - self.nbytes) // per_event)
        which = torch.nonzero(self._index.find(hashes) < 0).squeeze(1)  # hashes not held
        which = which[first_occurrences(hashes[which])[0]][:room]  # (k,) the first event of each such hash, in order
        if not which.shape[0]:
            return
        rows, sub_cu, _ = gather_segments(cu, which)  # codes of the new events, in order
        k, n, n0, c0 = which.shape[0], rows.shape[0], self.n_events, self.n_codes
        if self._states is None:
            self._states = states.new_empty((0, states.shape[1]))
        self._states = _grown(self._states, n0 + k)
        self._start, self._length = _grown(self._start, n0 + k), _grown(self._length, n0 + k)
        self._codes = _grown(self._codes, c0 + n)
        self._states[n0:n0 + k] = states[which.to(states.device)]
        self._start[n0:n0 + k] = c0 + sub_cu[:-1].to(torch.int64)
        self._length[n0:n0 + k] = (sub_cu[1:] - sub_cu[:-1]).to(torch.int64)
        self._codes[c0:c0 + n] = codes[rows]
        self._index.insert(hashes[which], torch.arange(n0, n0 + k))
        self.n_events, self.n_codes = n0 + k, c0 + n
