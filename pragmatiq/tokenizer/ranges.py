"""Row ranges of a parquet file: split it into units that workers read on their own.

Fit reads `batch_units` (whole batches of rows); encoding reads `spans` of user-aligned
chunks (`user_chunks`).

A worker reads a unit `[start, stop)` by decoding from the start of the row group that holds
`start` (parquet cannot seek inside a row group), so units begin near row-group starts; a row
group larger than `max_rows` is split too, at the cost of decoding its head once per unit.
Batches inside a unit are cut at `start + k * batch_size`, whatever the file's row groups, so
a unit starting at a multiple of `batch_size` sees exactly the batches a sequential
`ParquetFile.iter_batches(batch_size)` would.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

READ_ROWS = 16_384  # rows decoded per read: bounds the overshoot past a unit's end


def row_group_starts(pf: pq.ParquetFile) -> np.ndarray:
    """(G+1,) first row of every row group, then the number of rows."""
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
    return np.r_[0, np.cumsum(sizes, dtype=np.int64)].astype(np.int64)


def cut_points(pf: pq.ParquetFile, max_rows: int) -> np.ndarray:
    """Candidate unit starts (sorted, unique): every row-group start, and every `max_rows`
    rows inside a larger row group."""
    rg = row_group_starts(pf)
    cuts = [np.arange(a, b, max_rows) for a, b in zip(rg[:-1], rg[1:])]
    return np.unique(np.concatenate(cuts)) if cuts else np.zeros(0, np.int64)


def batch_units(pf: pq.ParquetFile, batch_size: int, max_rows: int) -> list[tuple[int, int]]:
    """Units made of whole batches of `batch_size` rows (counted from row 0)."""
    n = pf.metadata.num_rows
    first = np.unique(-(-cut_points(pf, max_rows) // batch_size) * batch_size)  # round up
    bounds = np.r_[first[first < n], n] if n else np.zeros(1, np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def user_codes(users: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(N,) user ids -> (codes (N,) int, -1 for a null; the distinct users (U,) they index)."""
    enc = pc.dictionary_encode(users)
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), enc.dictionary


def user_chunks(users: pa.Array | np.ndarray, chunk_rows: int) -> np.ndarray:
    """(C+1,) row bounds of user-aligned chunks: batch k of `chunk_rows` rows (counted from row 0)
    is added to what is left over and cut before the first row of its last user, so a user never
    spans two chunks; the rest is the last chunk. The same cut a sequential read makes.
    `users`: the ids, or their `user_codes`."""
    n = len(users)
    codes = users if isinstance(users, np.ndarray) else user_codes(users)[0]  # (N,)
    bounds, carry = [0], 0
    for end in range(chunk_rows, n + chunk_rows, chunk_rows):  # one step per chunk, not per row
        end = min(end, n)
        cut = carry + int(np.argmax(codes[carry:end] == codes[end - 1]))  # the last user's first row
        if cut > carry:
            bounds.append(cut)
            carry = cut
    if n > carry:
        bounds.append(n)
    return np.asarray(bounds, np.int64)


def spans(bounds: np.ndarray, cuts: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Consecutive chunks (`bounds` (C+1,)) grouped into spans for the workers: a span starts
    at the first chunk bound at or after each cut (`cut_points`), so a worker reading it decodes
    less than one chunk it does not need. -> (start, stop, chunk bounds inside) per span."""
    if len(bounds) < 2:
        return []
    at = np.minimum(np.searchsorted(bounds, cuts, side="left"), len(bounds) - 1)
    first = np.unique(np.r_[0, at])
    first = first[first < len(bounds) - 1]
    last = np.r_[first[1:], len(bounds) - 1]
    return [(int(bounds[i]), int(bounds[j]), bounds[i:j + 1]) for i, j in zip(first, last)]


def iter_rows(pf: pq.ParquetFile, start: int, stop: int, columns: list[str], batch_size: int):
    """Record batches covering rows [start, stop), cut at start + k * batch_size (contiguous)."""
    rg = row_group_starts(pf)
    if stop <= start:
        return
    g0 = int(np.searchsorted(rg, start, side="right")) - 1
    g1 = int(np.searchsorted(rg, stop, side="left"))
    pos, pending, n_pending = int(rg[g0]), [], 0
    reader = pf.iter_batches(batch_size=min(READ_ROWS, batch_size), row_groups=list(range(g0, g1)),
                             columns=columns)
    for batch in reader:
        a, b = max(start - pos, 0), min(stop - pos, batch.num_rows)
        pos += batch.num_rows
        if b <= a:
            continue
        piece = batch.slice(a, b - a)
        while piece.num_rows:
            take = min(batch_size - n_pending, piece.num_rows)
            pending.append(piece.slice(0, take))
            n_pending += take
            piece = piece.slice(take)
            if n_pending == batch_size:
                yield _combine(pending)
                pending, n_pending = [], 0
        if pos >= stop:
            break
    if n_pending:
        yield _combine(pending)


def _combine(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def ordered_map(fn, tasks, pool=None, window: int = 4):
    """fn(*task) for every task, results in task order; with a pool at most `window` tasks
    are in flight, so results never pile up faster than they are consumed."""
    if pool is None:
        for task in tasks:
            yield fn(*task)
        return
    pending: deque = deque()
    for task in tasks:
        pending.append(pool.apply_async(fn, task))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()
