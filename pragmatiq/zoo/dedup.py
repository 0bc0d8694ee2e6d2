"""Identical packed segments, found once: inference encodes each distinct event a single time.

The event encoder sees one event alone (block-diagonal attention, no time input), so in eval
mode two events with the same `(key, value, position)` tokens get the same `[EVT]` state. A
quickstart batch holds each distinct event ~1.6 times (recurring bills, the same merchant and
amount bucket), so encoding the distinct ones and gathering back saves that share of the work.

Segments are grouped by a 64-bit polynomial hash of their tokens, then every segment is compared
token by token with its group's first member: a hash collision is detected, never trusted.
"""

from __future__ import annotations

import torch

from pragmatiq.kernels import segment_ids

_MULT = 0x9E3779B97F4A7C15 - (1 << 64)  # odd 64-bit constant (golden ratio), as a signed int64


def token_codes(key_ids: torch.Tensor, value_ids: torch.Tensor, positions: torch.Tensor,
                vocab_size: int, span: int | None = None) -> torch.Tensor | None:
    """(T,) ids below vocab_size, positions >= 0 -> (T,) int64 code, one per distinct (key, value,
    position) triple. `span` fixes the positions' range, so that codes of different batches compare
    (default: this batch's longest); None when a position reaches it or the code would not fit 63 bits."""
    longest = int(positions.max()) + 1 if positions.numel() else 1
    span = longest if span is None else span
    if longest > span or vocab_size * vocab_size * span >= 1 << 63:
        return None
    return (key_ids.to(torch.int64) * vocab_size + value_ids.to(torch.int64)) * span + positions.to(torch.int64)


def segment_layout(cu: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """cu (S+1,) over n rows -> (starts (S,), lengths (S,), segment of every row (n,), its place
    within the segment (n,)), int64."""
    starts = cu[:-1].to(torch.int64)
    lengths = cu[1:].to(torch.int64) - starts
    seg = segment_ids(cu, n)
    return starts, lengths, seg, torch.arange(n, device=cu.device) - starts[seg]


def segment_hashes(codes: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    """codes (T,) int64 packed by cu (S+1,) -> (S,) int64 hash of every segment's sequence:
    sum_j codes_j * M**(j+1) + length, a distinct odd multiplier per place (wrapping modulo 2**64)."""
    _, lengths, seg, slot = segment_layout(cu, codes.shape[0])
    return _hashes(codes, lengths, seg, slot)


def _hashes(codes, lengths, seg, slot) -> torch.Tensor:
    powers = torch.full((int(slot.max()) + 1 if codes.shape[0] else 1,), _MULT, dtype=torch.int64,
                        device=codes.device).cumprod(0)  # (L,) M, M**2, ...
    return lengths.clone().index_add_(0, seg, codes * powers[slot])  # (S,)


def first_occurrences(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """values (S,) -> `(first (S',), inverse (S,))` int64: the index of each distinct value's first
    occurrence, in order of appearance (so the numbering does not depend on the values), and
    for every element the index of its value in `first`."""
    s = values.shape[0]
    _, inverse = torch.unique(values, return_inverse=True)  # (S,) ids in value order
    k = int(inverse.max()) + 1 if s else 0
    first = torch.full((k,), s, dtype=torch.int64, device=values.device).scatter_reduce_(
        0, inverse, torch.arange(s, device=values.device), "amin")  # (S',) in value order
    sort = torch.argsort(first)
    rank = torch.empty_like(first)
    rank[sort] = torch.arange(k, device=values.device)
    return first[sort], rank[inverse]


def unique_segments(codes: torch.Tensor, cu: torch.Tensor,
                    hashes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """codes (T,) int64 packed by cu (S+1,) int32 -> `(first (S',), inverse (S,))` int64: the
    first segment of each distinct token sequence, in order, and for every segment the index of
    its distinct one in `first`; None when two different sequences share a hash (then encode
    them all). `hashes`: `segment_hashes(codes, cu)`, when the caller has them. Integer arithmetic
    wraps modulo 2**64 by design."""
    starts, lengths, seg, slot = segment_layout(cu, codes.shape[0])
    h = _hashes(codes, lengths, seg, slot) if hashes is None else hashes  # (S,)
    first, inverse = first_occurrences(h)  # (S',), (S,)
    rep = first[inverse]  # (S,) the segment each one is compared with
    if not torch.equal(lengths[rep], lengths):
        return None
    if not torch.equal(codes[starts[rep][seg] + slot], codes):
        return None
    return first, inverse


def gather_segments(cu: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Segments `which` (K,) int64 of cu (S+1,) int32 -> (rows (N',) int64 their packed rows,
    in order; new cu (K+1,) int32; their longest length)."""
    starts = cu[:-1].to(torch.int64)[which]  # (K,)
    lengths = cu[1:].to(torch.int64)[which] - starts  # (K,)
    new_cu = torch.zeros(which.shape[0] + 1, dtype=torch.int32, device=cu.device)
    new_cu[1:] = lengths.cumsum(0)
    total = int(new_cu[-1])
    seg = segment_ids(new_cu, total)  # (N',)
    rows = starts[seg] + torch.arange(total, device=cu.device) - new_cu[:-1].to(torch.int64)[seg]
    return rows, new_cu, int(lengths.max()) if which.shape[0] else 0
