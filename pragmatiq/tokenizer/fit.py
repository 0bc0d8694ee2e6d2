"""Fit the vocabulary by streaming over the dataset with bounded memory.

Per key we keep: a count of values, how many parse as numbers (and how many look decimal),
capped distinct-value counts, and a bottom-k sample of parsed numbers (a seeded reservoir)
for the percentile edges. Kinds are then decided per key (numeric / categorical / text) and
the byte-level BPE is trained once over the distinct text values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.tokenizer.config import TokenizerConfig
from pragmatiq.tokenizer.fields import flatten_kv
from pragmatiq.tokenizer.numeric import parse_numbers
from pragmatiq.tokenizer.vocab import LIFELONG_PREFIX, PRESENT, PROFILE_PREFIX, SOURCE_KEY, SPECIALS, Vocab

BATCH_ROWS = 131_072


@dataclass
class KeyStats:
    n: int = 0
    n_numeric: int = 0
    n_decimal: int = 0
    distinct: dict[str, int] = field(default_factory=dict)
    overflow: bool = False  # more distinct values than the cap
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0))  # parsed numbers kept
    priority: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Fitter:
    def __init__(self, config: TokenizerConfig):
        self.config = config
        self.stats: dict[str, KeyStats] = {}
        self.rng = np.random.default_rng(config.seed)

    def add(self, keys: pa.Array, values: pa.Array) -> None:
        """Add F (key, value) pairs; one vectorized pass per distinct key in the batch."""
        if len(keys) == 0:
            return
        values = pc.fill_null(values, "")
        counts = pa.table({"k": keys, "v": values}).group_by(["k", "v"]).aggregate([("v", "count")])
        order = np.argsort(counts["k"].to_numpy(zero_copy_only=False), kind="stable")
        ks = counts["k"].to_numpy(zero_copy_only=False)[order]
        vs = counts["v"].to_numpy(zero_copy_only=False)[order]
        ns = counts["v_count"].to_numpy()[order]
        bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            self._add_key(ks[a], vs[a:b], ns[a:b])

    def _add_key(self, key: str, values: np.ndarray, counts: np.ndarray) -> None:
        st = self.stats.setdefault(key, KeyStats())
        st.n += int(counts.sum())
        distinct = st.distinct
        cap = self.config.distinct_cap
        for v, c in zip(values.tolist(), counts.tolist()):
            if v in distinct:
                distinct[v] += c
            elif len(distinct) < cap:
                distinct[v] = c
            else:
                st.overflow = True
        nums, ok = parse_numbers(pa.array(values, pa.string()))
        st.n_numeric += int(counts[ok].sum())
        decimal = np.char.find(values[ok].astype(str), ".") >= 0 if ok.any() else np.zeros(0, bool)
        st.n_decimal += int(counts[ok][decimal].sum())
        # bottom-k sample of the parsed numbers, weighted by their counts (capped per value)
        reps = np.minimum(counts[ok], self.config.sample_size)
        sample = np.repeat(nums[ok], reps)
        if len(sample):
            prio = self.rng.random(len(sample))
            st.sample = np.concatenate([st.sample, sample])
            st.priority = np.concatenate([st.priority, prio])
            k = self.config.sample_size
            if len(st.sample) > k:
                keep = np.argpartition(st.priority, k)[:k]
                st.sample, st.priority = st.sample[keep], st.priority[keep]

    # ------------------------------------------------------------------ decisions
    def kind_of(self, key: str) -> str:
        cfg, st = self.config, self.stats[key]
        if key in cfg.kinds:
            return cfg.kinds[key]
        if key.startswith(LIFELONG_PREFIX) or key == SOURCE_KEY:
            return "categorical"
        nonempty = st.n - st.distinct.get("", 0)
        numeric = nonempty > 0 and st.n_numeric >= cfg.numeric_min_parse * nonempty
        many = st.overflow or len(st.distinct) > cfg.categorical_max
        decimal = st.n_decimal >= 0.5 * max(st.n_numeric, 1)
        if numeric and (many or (decimal and len(st.distinct) >= cfg.numeric_min_distinct)):
            return "numeric"
        if not many:
            return "categorical"
        return "text"

    def build(self) -> Vocab:
        cfg = self.config
        specs, text_values = [], []
        for key in sorted(self.stats):
            kind = self.kind_of(key)
            st = self.stats[key]
            if kind == "numeric":
                x = st.sample[np.isfinite(st.sample) & (st.sample != 0)]
                qs = np.linspace(0, 1, cfg.n_buckets + 1)[1:-1]
                edges = np.quantile(np.sort(x), qs) if len(x) else np.zeros(cfg.n_buckets - 1)
                specs.append((key, kind, edges.tolist()))
            elif kind == "categorical":
                items = [(v, c) for v, c in st.distinct.items() if v != "" and c >= cfg.min_value_count]
                items.sort(key=lambda vc: (-vc[1], vc[0]))
                specs.append((key, kind, [v for v, _ in items[: cfg.categorical_max]]))
            else:
                specs.append((key, kind, []))
                text_values.extend(v for v in st.distinct if v)
        used = len(SPECIALS) + len(specs) + sum(
            (len(p) + 2 if k == "numeric" else len(p) if k == "categorical" else int(cfg.nemotron))
            for _, k, p in specs)
        bpe_json, bpe_size = None, 0
        if text_values and not cfg.nemotron:
            from pragmatiq.tokenizer.text import train_bpe

            bpe_json, bpe_size = train_bpe(sorted(set(text_values)), max(cfg.target_vocab - used, 300))
        return Vocab.build(specs, bpe_json, bpe_size, cfg.to_dict())


def _batches(path: Path, columns: list[str]):
    pf = pq.ParquetFile(path)
    yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=columns)


def fit_vocab(data_dir: str | Path, config: TokenizerConfig, progress=None) -> Vocab:
    """Stream events and profiles once and fit the vocabulary."""
    data_dir = Path(data_dir)
    fitter = Fitter(config)
    for batch in _batches(data_dir / schema.EVENTS_FILE, ["source", "fields"]):
        source = pc.cast(batch.column("source"), pa.string())
        fitter.add(pa.array([SOURCE_KEY] * len(source), pa.string()), source)
        _, keys, values = flatten_kv(batch.column("fields"))
        fitter.add(keys, values)
        if progress is not None:
            progress.update(batch.num_rows)
    for batch in _batches(data_dir / schema.PROFILES_FILE, ["attributes", "lifelong"]):
        _, keys, values = flatten_kv(batch.column("attributes"))
        fitter.add(pc.binary_join_element_wise(PROFILE_PREFIX, keys, ""), values)
        lifelong = batch.column("lifelong").flatten()
        if len(lifelong):
            lkeys = pc.fill_null(lifelong.field("key"), "")
            fitter.add(pc.binary_join_element_wise(LIFELONG_PREFIX, lkeys, ""),
                       pa.array([PRESENT] * len(lkeys), pa.string()))
    return fitter.build()
