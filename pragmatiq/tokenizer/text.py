"""Byte-level BPE for high-cardinality text (HF `tokenizers`), run once per unique value."""

from __future__ import annotations

from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.tokenizer.segments import ranks, starts

CACHE_VALUES = 100_000  # distinct text values whose pieces a PieceCache keeps


def train_bpe(values: list[str], vocab_size: int) -> tuple[str, int]:
    """Train a byte-level BPE over the distinct text values -> (tokenizer JSON, its size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, show_progress=False, special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(values, trainer, length=len(values))
    return tok.to_str(), tok.get_vocab_size()


class PieceCache:
    """The BPE piece ids of distinct text values, remembered across calls so that a value
    repeated in every chunk (a merchant name) is encoded once. Bounded: at most `cap` values,
    first come first kept; values beyond that are encoded every time they come. The pieces live
    in flat NumPy arrays (C values), not one Python list per value."""

    def __init__(self, bpe, cap: int = CACHE_VALUES):
        self.bpe, self.cap = bpe, cap
        self.slot: dict[str, int] = {}  # value -> its row in lengths / first
        self.lengths = np.zeros(0, np.int64)  # (C,) pieces per value
        self.first = np.zeros(0, np.int64)  # (C,) offset of its pieces in `ids`
        self.ids = np.zeros(0, np.int64)  # (sum lengths,)

    def __len__(self) -> int:
        return len(self.slot)

    def pieces(self, uniques: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """U distinct strings -> (lengths (U,), piece ids (sum lengths,) in value order)."""
        slot = np.fromiter((self.slot.get(u, -1) for u in uniques), np.int64, count=len(uniques))
        miss = np.flatnonzero(slot < 0)
        lengths, first, ids = self.lengths, self.first, self.ids
        if len(miss):
            n_new, ids_new = _bpe(self.bpe, [uniques[i] for i in miss])
            room = min(max(self.cap - len(self.slot), 0), len(miss))
            base = len(self.lengths)
            self.slot.update(zip((uniques[j] for j in miss[:room]), range(base, base + room)))
            keep = int(n_new[:room].sum())
            self.first = np.r_[self.first, len(self.ids) + starts(n_new[:room])]
            self.lengths = np.r_[self.lengths, n_new[:room]]
            self.ids = np.r_[self.ids, ids_new[:keep]]
            # the misses, kept or not, are looked up past the end of the old arrays
            slot[miss] = len(lengths) + np.arange(len(miss))
            first = np.r_[first, len(ids) + starts(n_new)]
            lengths = np.r_[lengths, n_new]
            ids = np.r_[ids, ids_new]
        n = lengths[slot]  # (U,)
        return n, ids[np.repeat(first[slot], n) + ranks(n)]


def _bpe(bpe, values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """V strings through the tokenizer -> (lengths (V,), piece ids (sum lengths,))."""
    encode = getattr(bpe, "encode_batch_fast", bpe.encode_batch)  # same ids, no offsets
    pieces = [e.ids for e in encode(values, add_special_tokens=False)]
    lengths = np.fromiter(map(len, pieces), np.int64, count=len(pieces))
    return lengths, np.fromiter(chain.from_iterable(pieces), np.int64, count=int(lengths.sum()))


def encode_pieces(bpe, values: pa.Array, max_pieces: int,
                  cache: PieceCache | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BPE-encode F text values, each distinct value once (through `cache` when given).

    -> (n_pieces (F,) int64 — 0 for null/empty, piece ids (sum n_pieces,) int64 in value order).
    """
    values = pc.fill_null(pc.cast(values, pa.string()), "")
    enc = pc.dictionary_encode(values)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)  # (F,)
    cache = cache if cache is not None else PieceCache(bpe, cap=0)
    full, flat = cache.pieces(enc.dictionary.to_pylist())  # (U,), all pieces of every unique
    lengths = np.minimum(full, max_pieces)  # (U,) at most max_pieces kept
    n = lengths[codes]  # (F,)
    within = ranks(n)
    ids = flat[np.repeat(starts(full)[codes], n) + within]
    return n, ids
