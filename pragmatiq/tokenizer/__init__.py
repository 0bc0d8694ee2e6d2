"""Key-value-time tokenizer: vocabulary fit, encoding, token shards, batching, PackedBatch."""

from pragmatiq.tokenizer.packed import PackedBatch

__all__ = ["PackedBatch"]
