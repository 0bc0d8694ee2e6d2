"""Encoding helpers: radix grouping, token order, the BPE piece cache, NumPy rows, the records fast path."""

import numpy as np
import pyarrow as pa
import pytest

from pragmatiq.tokenizer import Vocab, encode_records
from pragmatiq.tokenizer.config import load_tokenizer_config
from pragmatiq.tokenizer.encode import encode_columns, entry_order, group_by_code
from pragmatiq.tokenizer.records import _checked_events, _plain_events, records_to_tables
from pragmatiq.tokenizer.rows import columns_rows, columns_table
from pragmatiq.tokenizer.text import PieceCache, encode_pieces

from .conftest import records_of


def test_group_by_code_is_a_stable_grouping():
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 6, 500)
    order, bounds = group_by_code(codes, 6)
    assert bounds.tolist() == np.r_[0, np.cumsum([(codes == c).sum() for c in range(-1, 6)])].tolist()
    for c in range(-1, 6):
        assert order[bounds[c + 1]:bounds[c + 2]].tolist() == np.flatnonzero(codes == c).tolist()
    order, bounds = group_by_code(np.zeros(0, np.int64), 3)
    assert len(order) == 0 and bounds.tolist() == [0, 0, 0, 0, 0]


@pytest.mark.parametrize("seed", range(5))
def test_entry_order_is_the_lexsort_of_event_then_source_then_key(seed):
    rng = np.random.default_rng(seed)
    e = 30
    n_fields = rng.integers(0, 5, e)
    erow = np.repeat(np.arange(e), n_fields)
    key_id = rng.integers(2, 9, len(erow))  # repeats: ties keep their order
    order = entry_order(erow, key_id, n_fields)
    event = np.r_[np.arange(e), erow]
    rank = np.r_[np.zeros(e, np.int64), 1 + key_id]  # the source first
    assert order.tolist() == np.lexsort((rank, event)).tolist()
    sorted_keys = entry_order(erow, np.full(len(erow), 5), n_fields)  # already in order: no sort
    assert sorted_keys.tolist() == np.lexsort((np.r_[np.zeros(e), np.ones(len(erow))], event)).tolist()


def test_piece_cache_gives_the_tokenizer_pieces_and_stays_bounded(tok):
    vocab = Vocab.load(tok / "vocab.json")
    bpe = vocab.bpe
    values = ["TESCO STORES 4521", "", "NETFLIX.COM", "TESCO STORES 4521", "a b c d e f g h i j k", "x"]
    want = [bpe.encode(v, add_special_tokens=False).ids for v in values]
    cache = PieceCache(bpe, cap=2)
    for _ in range(2):  # cold, then warm (and past the cap)
        n, ids = encode_pieces(bpe, pa.array(values), 4, cache)
        assert n.tolist() == [min(len(w), 4) for w in want]
        assert ids.tolist() == [i for w in want for i in w[:4]]
        assert len(cache) == 2
    n, ids = encode_pieces(bpe, pa.array(values[:1] * 3 + [None]), 100)  # no cache
    assert n.tolist() == [len(want[0])] * 3 + [0] and ids.tolist() == want[0] * 3


def test_columns_rows_match_the_table(book, tok):
    vocab = Vocab.load(tok / "vocab.json")
    events, profiles = records_to_tables(records_of(book)[:20])
    cols = encode_columns(events, profiles, vocab, load_tokenizer_config(vocab.config))
    table = columns_table(cols)
    rows = columns_rows(cols, [3, 0, 7])
    for row, k in zip(rows, [3, 0, 7]):
        for name in table.column_names:
            ref = table.column(name)[k]
            if pa.types.is_list(ref.type):
                ref = ref.values.to_numpy(zero_copy_only=False)
                assert row[name].dtype == ref.dtype, name
                np.testing.assert_array_equal(row[name], ref, err_msg=name)
            else:
                assert row[name] == ref.as_py(), name


def _events(n=12):
    return [{"ts": 1_700_000_000_000_000 + (i * 7919 % n) * 1_000_000, "source": "transaction",
             "fields": {"amount": f"{i}.50", "merchant": f"SHOP {i % 4}"}} for i in range(n)]


@pytest.mark.parametrize("events", [_events(), _events(1), [], [{"ts": 1_700_000_000_000_000, "source": "app"}]])
def test_records_fast_path_equals_the_checked_path(events):
    events = events + [dict(e) for e in events[:2]]  # equal timestamps: stable order
    fast = _plain_events(events)
    assert fast is not None
    slow = _checked_events(events, "record 0")
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[1].equals(slow[1]) and fast[2].to_pylist() == slow[2].to_pylist()


@pytest.mark.parametrize("event", [
    {"ts": "2024-01-01T00:00:00Z", "source": "app"},  # ISO string
    {"ts": 1_700_000_000, "source": "app"},  # seconds: an error, named by the checked path
    {"ts": True, "source": "app"},
    {"ts": 1_700_000_000_000_000, "source": None},
    {"ts": 1_700_000_000_000_000, "source": "app", "fields": {"amount": 12.5}},  # a float value
    {"ts": 1_700_000_000_000_000, "source": "app", "fields": {"amount": None}},  # a null value: dropped
    {"ts": 1_700_000_000_000_000, "source": "app", "fields": [("amount", "1")]},  # pairs, not an object
    {"source": "app"},
    "not an object",
])
def test_unusual_events_take_the_checked_path(event):
    assert _plain_events(_events(3) + [event]) is None


def test_records_with_converted_values_encode_as_their_strings(tok):
    vocab = Vocab.load(tok / "vocab.json")
    base = {"user_id": "u", "attributes": {"country": "GB"}, "lifelong": []}
    a = {**base, "events": [{"ts": 1_700_000_000_000_000, "source": "transaction",
                             "fields": {"amount": 12.5, "mcc": 5411, "merchant": None}}]}
    b = {**base, "events": [{"ts": "2023-11-14T22:13:20Z", "source": "transaction",
                             "fields": {"amount": "12.5", "mcc": "5411"}}]}
    ra, rb = encode_records([a], vocab)[0], encode_records([b], vocab)[0]
    for name in ra:
        np.testing.assert_array_equal(np.asarray(ra[name]), np.asarray(rb[name]), err_msg=name)
