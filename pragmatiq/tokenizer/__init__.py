"""Key-value-time tokenizer: vocabulary fit, encoding, token shards, batching, PackedBatch.

    tokenize_dataset(data_dir, out_dir, n_workers=2)      # fit + encode -> token directory
    ds = TokenDataset(out_dir); sampler = TokenBudgetSampler(ds, token_budget=8192)
    for batch in BatchLoader(ds, sampler): ...            # PackedBatch
    records_to_batch(records, Vocab.load(".../vocab.json"))   # the serving path
"""

from pragmatiq.tokenizer.collate import BatchLoader, collate
from pragmatiq.tokenizer.config import TokenizerConfig, load_tokenizer_config
from pragmatiq.tokenizer.cuts import load_cuts
from pragmatiq.tokenizer.packed import PackedBatch
from pragmatiq.tokenizer.records import RecordError, encode_records, records_to_batch
from pragmatiq.tokenizer.sampler import TokenBudgetSampler
from pragmatiq.tokenizer.shards import TokenDataset, tokenize_dataset
from pragmatiq.tokenizer.vocab import Vocab

__all__ = [
    "BatchLoader", "PackedBatch", "RecordError", "TokenBudgetSampler", "TokenDataset",
    "TokenizerConfig", "Vocab", "collate", "encode_records", "load_cuts", "load_tokenizer_config",
    "records_to_batch", "tokenize_dataset",
]
