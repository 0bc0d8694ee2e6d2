"""Byte-level BPE for high-cardinality text (HF `tokenizers`), run once per unique value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.tokenizer.segments import ranks, starts


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


def encode_pieces(bpe, values: pa.Array, max_pieces: int) -> tuple[np.ndarray, np.ndarray]:
    """BPE-encode F text values, each distinct value once.

    -> (n_pieces (F,) int64 — 0 for null/empty, piece ids (sum n_pieces,) int64 in value order).
    """
    values = pc.fill_null(pc.cast(values, pa.string()), "")
    enc = pc.dictionary_encode(values)
    uniques = enc.dictionary.to_pylist()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = bpe.encode_batch(uniques, add_special_tokens=False) if uniques else []
    pieces = [e.ids[:max_pieces] for e in encoded]
    lengths = np.array([len(p) for p in pieces], np.int64)
    flat = np.fromiter((i for p in pieces for i in p), np.int64, count=int(lengths.sum()))
    first = starts(lengths)
    n = lengths[codes]  # (F,)
    # gather each value's pieces: start of its unique + offset within
    within = ranks(n)
    ids = flat[np.repeat(first[codes], n) + within]
    return n, ids
