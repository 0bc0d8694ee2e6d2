"""Fit: capped distinct counts, per-batch statistics merged in order, parallel == sequential."""

import multiprocessing as mp

import numpy as np
import pyarrow as pa
import pytest

from pragmatiq.tokenizer.config import load_tokenizer_config
from pragmatiq.tokenizer.fit import CappedCounts, Fitter, fit_vocab, pair_stats


def _counts(values, counts, cap):
    cc = CappedCounts(cap)
    for v, c in zip(values, counts):
        cc.update(pa.array(v, pa.string()), np.asarray(c, np.int64))
    return cc


def _dict_reference(values, counts, cap):
    """The per-value Python loop CappedCounts replaces."""
    d, overflow = {}, False
    for vs, cs in zip(values, counts):
        for v, c in zip(vs, cs):
            if v in d:
                d[v] += c
            elif len(d) < cap:
                d[v] = c
            else:
                overflow = True
    return d, overflow


@pytest.mark.parametrize("cap", [1, 3, 5, 100])
def test_capped_counts_match_a_capped_dict(cap):
    values = [["a", "b", "c"], ["c", "d"], ["e", "a", "f", "b"], [], ["g"]]
    counts = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [], [10]]
    cc = _counts(values, counts, cap)
    ref, overflow = _dict_reference(values, counts, cap)
    assert list(cc.items()) == list(ref.items())  # first come first kept, in arrival order
    assert cc.overflow == overflow and len(cc) == len(ref)
    for v in "abcdefgz":
        assert cc.get(v, -1) == ref.get(v, -1)


def test_capped_counts_empty_string_is_a_value():
    cc = _counts([["", "x"], [""]], [[2, 1], [3]], cap=10)
    assert cc.get("") == 5 and cc.get("x") == 1 and not cc.overflow


def test_pair_stats_groups_by_sorted_key():
    keys = pa.array(["b", "a", "b", "a", "b", "c"])
    values = pa.array(["1.5", "x", "1.5", None, "y", "7"])
    ps = pair_stats(keys, values)
    assert ps.keys == ["a", "b", "c"]
    per_key = {k: dict(zip(ps.values.slice(a, b - a).to_pylist(), ps.counts[a:b].tolist()))
               for k, a, b in zip(ps.keys, ps.bounds[:-1], ps.bounds[1:])}
    assert per_key == {"a": {"x": 1, "": 1}, "b": {"1.5": 2, "y": 1}, "c": {"7": 1}}
    assert ps.ok.tolist() == [v in ("1.5", "7") for v in ps.values.to_pylist()]
    assert pair_stats(pa.array([], pa.string()), pa.array([], pa.string())) is None


def test_fitter_add_equals_merge_of_pair_stats():
    cfg = load_tokenizer_config({"sample_size": 50, "distinct_cap": 20})
    rng = np.random.default_rng(0)
    a, b = Fitter(cfg), Fitter(cfg)
    for _ in range(4):
        keys = pa.array(rng.choice(["amount", "mcc", "merchant"], 300).tolist())
        values = pa.array([f"{x:.2f}" for x in rng.normal(size=300)])
        a.add(keys, values)
        b.merge(pair_stats(keys, values))
    assert a.build().to_dict() == b.build().to_dict()


def test_fit_with_a_pool_equals_fit_without(book):
    cfg = load_tokenizer_config({"sample_size": 500, "distinct_cap": 300})
    alone = fit_vocab(book, cfg)
    with mp.get_context("fork").Pool(2) as pool:
        pooled = fit_vocab(book, cfg, pool=pool, window=3)
    assert pooled.sha256 == alone.sha256
