"""Fit the vocabulary by streaming over the dataset with bounded memory.

Per key we keep: a count of values, how many parse as numbers (and how many look decimal),
capped distinct-value counts, and a bottom-k sample of parsed numbers (a seeded reservoir)
for the percentile edges. Kinds are then decided per key (numeric / categorical / text) and
the byte-level BPE is trained once over the distinct text values.

Parallel and deterministic: the files are read in fixed batches of BATCH_ROWS rows. Workers
turn every batch into `PairStats` (its distinct (key, value) pairs with counts, in group-by
order, and their parsed numbers); the main process merges them in batch order and draws the
reservoir priorities from one seeded stream, so the vocabulary is the same for any number of
workers. Memory: per key at most `distinct_cap` values and `sample_size` numbers, plus the
statistics of the few batches in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.tokenizer.config import TokenizerConfig
from pragmatiq.tokenizer.fields import flatten_kv
from pragmatiq.tokenizer.numeric import parse_numbers
from pragmatiq.tokenizer.ranges import batch_units, iter_rows, ordered_map
from pragmatiq.tokenizer.vocab import LIFELONG_PREFIX, PRESENT, PROFILE_PREFIX, SOURCE_KEY, SPECIALS, Vocab

BATCH_ROWS = 131_072
N_EXAMPLES = 3  # unparsable values kept per key, for the warning
NUMERIC_WARN_SHARE = 0.25  # a measurement-like key parsing this often, yet not numeric, is warned about
UNIT_ROWS = 4 * BATCH_ROWS  # a row group larger than this is split between worker tasks


class CappedCounts:
    """Counts of at most `cap` distinct values, first come first kept; `overflow` is set once a
    new value arrives while full. A capped dict, updated one batch of distinct values at a time."""

    def __init__(self, cap: int):
        self.cap = cap
        self.values = pa.array([], pa.string())  # (D,) in arrival order
        self.counts = np.zeros(0, np.int64)  # (D,)
        self.overflow = False

    def __len__(self) -> int:
        return len(self.counts)

    def update(self, values: pa.Array, counts: np.ndarray) -> None:
        """Add V *distinct* values (in arrival order) seen `counts` times."""
        idx = np.full(len(values), -1, np.int64)
        if len(self):
            idx = pc.fill_null(pc.index_in(values, value_set=self.values), -1).to_numpy(
                zero_copy_only=False).astype(np.int64)
        found = idx >= 0
        self.counts[idx[found]] += counts[found]  # distinct values: no index repeats
        new = np.flatnonzero(~found)
        room = self.cap - len(self)
        if len(new) > room:
            self.overflow = True
            new = new[:room]
        if len(new):
            self.values = pa.concat_arrays([self.values, values.take(pa.array(new))])
            self.counts = np.concatenate([self.counts, counts[new]])

    def get(self, value: str, default: int = 0) -> int:
        i = pc.index(self.values, value).as_py()
        return int(self.counts[i]) if i >= 0 else default

    def items(self):
        return zip(self.values.to_pylist(), self.counts.tolist())


@dataclass
class KeyStats:
    distinct: CappedCounts
    n: int = 0
    n_numeric: int = 0
    n_decimal: int = 0
    n_formatted: int = 0  # numbers written with currency signs, thousands separators, ...
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0))  # parsed numbers kept
    priority: np.ndarray = field(default_factory=lambda: np.zeros(0))
    unparsable: list[str] = field(default_factory=list)  # the first few non-empty values that are not numbers


@dataclass
class PairStats:
    """The distinct (key, value) pairs of one batch: V pairs grouped by key (K keys, sorted),
    values in group-by order within a key."""

    keys: list[str]  # (K,)
    bounds: np.ndarray  # (K+1,) pair offsets per key
    values: pa.Array  # (V,) string
    counts: np.ndarray  # (V,) int64 occurrences
    nums: np.ndarray  # (V,) float64 parsed number, 0 where not ok
    ok: np.ndarray  # (V,) bool parses as a finite number
    decimal: np.ndarray  # (V,) bool contains a "."
    formatted: np.ndarray  # (V,) bool a number with formatting ('£1,234.50'), not parsed


def pair_stats(keys: pa.Array, values: pa.Array) -> PairStats | None:
    """F (key, value) pairs -> their PairStats (None when F == 0). Runs in the workers."""
    if len(keys) == 0:
        return None
    values = pc.fill_null(values, "")
    counts = pa.table({"k": keys, "v": values}).group_by(["k", "v"], use_threads=False).aggregate(
        [("v", "count")])
    key_codes = pc.dictionary_encode(counts["k"]).combine_chunks()
    names = key_codes.dictionary.to_pylist()
    rank = np.argsort(np.argsort(np.array(names, dtype=object), kind="stable"))  # name -> sorted rank
    pair_rank = rank[key_codes.indices.to_numpy(zero_copy_only=False)]
    order = np.argsort(pair_rank, kind="stable")  # (V,) by key, group-by order within a key
    sizes = np.bincount(pair_rank, minlength=len(names))
    vals = counts["v"].combine_chunks().take(pa.array(order))
    nums, ok = parse_numbers(vals)
    decimal = pc.fill_null(pc.match_substring(vals, "."), False).to_numpy(zero_copy_only=False)
    formatted = pc.fill_null(pc.match_substring_regex(vals, schema.FORMATTED_NUMBER_PATTERN), False)
    formatted = formatted.to_numpy(zero_copy_only=False) & ~ok
    return PairStats(sorted(names), np.r_[0, np.cumsum(sizes)], vals,
                     counts["v_count"].to_numpy()[order].astype(np.int64), nums, ok, decimal, formatted)


class Fitter:
    def __init__(self, config: TokenizerConfig):
        self.config = config
        self.stats: dict[str, KeyStats] = {}
        self.warnings: list[str] = []  # set by build()
        self.rng = np.random.default_rng(config.seed)

    def add(self, keys: pa.Array, values: pa.Array) -> None:
        """Add F (key, value) pairs."""
        self.merge(pair_stats(keys, values))

    def merge(self, ps: PairStats | None) -> None:
        """Fold in one batch's statistics; batches must come in dataset order."""
        if ps is None:
            return
        for key, a, b in zip(ps.keys, ps.bounds[:-1], ps.bounds[1:]):
            self._add_key(key, ps.values.slice(a, b - a), ps.counts[a:b], ps.nums[a:b], ps.ok[a:b],
                          ps.decimal[a:b], ps.formatted[a:b])

    def _add_key(self, key: str, values: pa.Array, counts: np.ndarray, nums: np.ndarray,
                 ok: np.ndarray, decimal: np.ndarray, formatted: np.ndarray) -> None:
        st = self.stats.get(key)
        if st is None:
            st = self.stats[key] = KeyStats(CappedCounts(self.config.distinct_cap))
        st.n += int(counts.sum())
        st.distinct.update(values, counts)
        st.n_numeric += int(counts[ok].sum())
        st.n_decimal += int(counts[ok & decimal].sum())
        st.n_formatted += int(counts[formatted].sum())
        if len(st.unparsable) < N_EXAMPLES and not ok.all():
            bad = values.filter(pa.array(~ok))
            for v in bad.filter(pc.not_equal(bad, "")).slice(0, N_EXAMPLES).to_pylist():
                if v not in st.unparsable and len(st.unparsable) < N_EXAMPLES:
                    st.unparsable.append(v)
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
    def _many(self, st: KeyStats) -> bool:
        """More distinct values than a categorical key may have."""
        return st.distinct.overflow or len(st.distinct) > self.config.categorical_max

    def _measured(self, st: KeyStats) -> bool:
        """Values that look like measurements, not codes: many distinct values, or mostly
        decimals with at least numeric_min_distinct distinct values."""
        decimal = st.n_decimal >= 0.5 * max(st.n_numeric, 1)
        return self._many(st) or (decimal and len(st.distinct) >= self.config.numeric_min_distinct)

    def kind_of(self, key: str) -> str:
        cfg, st = self.config, self.stats[key]
        if key in cfg.kinds:
            return cfg.kinds[key]
        if key.startswith(LIFELONG_PREFIX) or key == SOURCE_KEY:
            return "categorical"
        nonempty = st.n - st.distinct.get("", 0)
        numeric = nonempty > 0 and st.n_numeric >= cfg.numeric_min_parse * nonempty
        if numeric and self._measured(st):
            return "numeric"
        if not self._many(st):
            return "categorical"
        return "text"

    def numeric_warning(self, key: str, kind: str) -> str | None:
        """A warning for a key whose values look like measurements but that is not numeric
        because too many of them do not parse (thousands separators, currency signs, 'NaN' text):
        a parse share from NUMERIC_WARN_SHARE up to numeric_min_parse, or at least NUMERIC_WARN_SHARE
        of its values numbers with such formatting (then however few parse, or distinct they are)."""
        cfg, st = self.config, self.stats[key]
        if kind == "numeric" or key in cfg.kinds or key.startswith(LIFELONG_PREFIX) or key == SOURCE_KEY:
            return None
        nonempty = st.n - st.distinct.get("", 0)
        share = st.n_numeric / nonempty if nonempty else 0.0
        partly = NUMERIC_WARN_SHARE <= share < cfg.numeric_min_parse and self._measured(st)
        if not (partly or (nonempty and st.n_formatted >= NUMERIC_WARN_SHARE * nonempty)):
            return None
        name, where = ((key[len(PROFILE_PREFIX):], "profiles.parquet attributes")
                       if key.startswith(PROFILE_PREFIX) else (key, "events.parquet fields"))
        ex = ", ".join(repr(v) for v in st.unparsable)
        return (f"{where} key {name!r}: {1 - share:.1%} of its {nonempty:,} values do not parse as numbers "
                f"(e.g. {ex}), more than numeric_min_parse {cfg.numeric_min_parse} allows, so it is encoded as "
                f"{kind} instead of numeric buckets; write plain numbers such as '1566.20' (no thousands "
                "separators or currency signs; leave a missing value out of the map rather than 'NaN'), or "
                f"set `kinds: {{{key}: numeric}}` in the tokenizer config (unparsable values then become [UNK])")

    def build(self) -> Vocab:
        """The vocabulary; `self.warnings` then holds what the user should know about it."""
        cfg = self.config
        specs, text_values = [], []
        self.warnings = []
        for key in sorted(self.stats):
            kind = self.kind_of(key)
            if (note := self.numeric_warning(key, kind)) is not None:
                self.warnings.append(note)
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
                text_values.extend(v for v, _ in st.distinct.items() if v)
        used = len(SPECIALS) + len(specs) + sum(
            (len(p) + 2 if k == "numeric" else len(p) if k == "categorical" else int(cfg.nemotron))
            for _, k, p in specs)
        bpe_json, bpe_size = None, 0
        if text_values and not cfg.nemotron:
            from pragmatiq.tokenizer.text import train_bpe

            bpe_json, bpe_size = train_bpe(sorted(set(text_values)), max(cfg.target_vocab - used, 300))
        return Vocab.build(specs, bpe_json, bpe_size, cfg.to_dict())


# ---------------------------------------------------------------------- reading (worker side)
def _event_pairs(batch: pa.RecordBatch):
    """The (keys, values) of each Fitter.add of an events batch: the source, then the fields."""
    source = pc.cast(batch.column("source"), pa.string())
    yield pa.repeat(SOURCE_KEY, len(source)), source
    _, keys, values = flatten_kv(batch.column("fields"))
    yield keys, values


def _profile_pairs(batch: pa.RecordBatch):
    """Profile attributes (`profile.` keys), then lifelong milestones (`lifelong.` keys)."""
    _, keys, values = flatten_kv(batch.column("attributes"))
    yield pc.binary_join_element_wise(PROFILE_PREFIX, keys, ""), values
    lifelong = batch.column("lifelong").flatten()
    if len(lifelong):
        lkeys = pc.fill_null(lifelong.field("key"), "")
        yield pc.binary_join_element_wise(LIFELONG_PREFIX, lkeys, ""), pa.repeat(PRESENT, len(lkeys))


_READERS = {"events": (["source", "fields"], _event_pairs),
            "profiles": (["attributes", "lifelong"], _profile_pairs)}


def batch_stats(path: str, kind: str, start: int, stop: int):
    """Rows [start, stop) of a file, in whole batches -> per batch (rows, PairStats of every
    Fitter.add, in order)."""
    columns, pairs = _READERS[kind]
    for batch in iter_rows(pq.ParquetFile(path), start, stop, columns, BATCH_ROWS):
        yield batch.num_rows, [pair_stats(keys, values) for keys, values in pairs(batch)]


def unit_stats(path: str, kind: str, start: int, stop: int) -> list:
    """A worker task: `batch_stats` of one unit."""
    return list(batch_stats(path, kind, start, stop))


def fit_vocab(data_dir: str | Path, config: TokenizerConfig, progress=None, pool=None,
              window: int = 4, notes: list[str] | None = None) -> Vocab:
    """Stream events and profiles once and fit the vocabulary. With a `pool`, units of whole
    batches are read by its workers (at most `window` in flight) and merged here in order.
    Warnings about the fit (`Fitter.warnings`) go to `notes` when given, else to stderr."""
    from pragmatiq.tokenizer.inputs import warn

    data_dir = Path(data_dir)
    fitter = Fitter(config)
    for name, kind in ((schema.EVENTS_FILE, "events"), (schema.PROFILES_FILE, "profiles")):
        path = str(data_dir / name)
        pf = pq.ParquetFile(path)
        if pool is None:  # one sequential pass
            results = batch_stats(path, kind, 0, pf.metadata.num_rows)
        else:
            units = [(path, kind, a, b) for a, b in batch_units(pf, BATCH_ROWS, UNIT_ROWS)]
            results = chain.from_iterable(ordered_map(unit_stats, units, pool, window))
        for n_rows, stats in results:
            for ps in stats:
                fitter.merge(ps)
            if progress is not None and kind == "events":
                progress.update(n_rows)
    vocab = fitter.build()
    if notes is not None:
        notes.extend(fitter.warnings)
    else:
        for note in fitter.warnings:
            warn(note)
    return vocab
