"""Checks on key–value columns (`fields` of events, `attributes` of profiles): rows with no
entries, keys whose values are all distinct — per-row identifiers (transaction ids,
references, emails) that carry no behaviour and would each become their own vocabulary entry
or a string of BPE noise — and measurement-like keys (amounts) with too many values that do
not parse as numbers ("1,566.20", "NaN"), which the tokenizer then does not bucket as numbers.

Both map<string,string> and struct<string...> (pyarrow's inference from dicts) are read: for a
struct each child is a key and a null child is an absent key. Identifier detection looks at a
bounded, contiguous head of the file (`sample_rows`), so a key constant per user (device id)
repeats within the sample and is not flagged, while one unique per row is.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data.schema import FORMATTED_NUMBER_PATTERN, NUMBER_PATTERN
from pragmatiq.data.validate.report import WARNING, Finding
from pragmatiq.data.validate.scan import Tally, quote, row_examples

SAMPLE_ROWS = 100_000  # rows read for identifier detection
MIN_OCCURRENCES = 500  # a key must appear this often in the sample to be judged
UNIQUE_SHARE = 0.95  # distinct / occurrences at or above this -> identifier
_DECIMAL = r"^-?[0-9]+[.,][0-9]+$"  # measurements (amounts, prices) are numeric, not ids
# Numeric keys as the tokenizer infers them (its defaults, pragmatiq.tokenizer.TokenizerConfig):
# at least NUMERIC_MIN_PARSE of the non-empty values parse as numbers and the values look like
# measurements (more than CATEGORICAL_MAX distinct, or mostly decimals with NUMERIC_MIN_DISTINCT).
NUMERIC_MIN_PARSE, CATEGORICAL_MAX, NUMERIC_MIN_DISTINCT = 0.98, 1000, 64
NUMERIC_WARN_SHARE = 0.25  # from this parse share up, a measurement-like key that falls short is reported
MIN_NUMERIC_VALUES = 100  # non-empty values a key needs in the sample to be judged


def entry_counts(arr: pa.Array) -> pa.Array:
    """Entries per row: map (or keys-only list) length, or a struct's non-null children."""
    if pa.types.is_list(arr.type):
        return pc.list_value_length(arr)
    if pa.types.is_map(arr.type):
        off = arr.offsets
        return pc.subtract(off.slice(1), off.slice(0, len(off) - 1))
    n = pa.repeat(pa.scalar(0, pa.int32()), len(arr))
    for child in arr.flatten():  # children with the struct's own nulls applied
        n = pc.add(n, pc.cast(child.is_valid(), pa.int32()))
    return n


def key_values(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """All (key, value) entries of the rows of `arr`, flattened, null values dropped."""
    if pa.types.is_map(arr.type):
        off = arr.offsets
        start, stop = off[0].as_py(), off[len(off) - 1].as_py()
        keys, values = arr.keys.slice(start, stop - start), arr.items.slice(start, stop - start)
        if not pa.types.is_string(values.type):
            values = pc.cast(values, pa.string())
        valid = values.is_valid()
        return keys.filter(valid), values.filter(valid)
    keys, values = [], []
    for field, child in zip(arr.type, arr.flatten()):
        child = child.drop_null()
        keys.append(pa.repeat(pa.scalar(field.name), len(child)))
        values.append(pc.cast(child, pa.string()))
    if not keys:
        return pa.array([], pa.string()), pa.array([], pa.string())
    return pa.concat_arrays(keys), pa.concat_arrays(values)


class KeyValueChecks:
    """Streaming checks for one key–value column; feed batches with `update`."""

    def __init__(self, rel: str, column: str, *, report_empty: bool, unit: str,
                 sample_rows: int = SAMPLE_ROWS) -> None:
        self.rel, self.column, self.unit = rel, column, unit
        self.report_empty = report_empty
        self.empty = Tally()
        self._room = sample_rows
        self._sampled = 0
        self._keys: list[pa.Array] = []
        self._values: list[pa.Array] = []

    def update(self, offset: int, cols: dict[str, pa.Array]) -> None:
        """Empty rows; the identifier sample too while it has room and values are present
        (a keys-only list from `scan.map_keys_leaf` has none: see `sample_head`)."""
        arr = cols.get(self.column)
        kind = arr.type if arr is not None else None
        if kind is None or not (pa.types.is_map(kind) or pa.types.is_struct(kind)
                                or pa.types.is_list(kind)):
            return
        if self.report_empty:
            empty = pc.and_(arr.is_valid(), pc.equal(entry_counts(arr), 0))
            self.empty.add(empty, lambda idx: row_examples(offset, idx, cols))
        if not pa.types.is_list(kind):
            self._sample(arr)

    def sample_head(self, pf: pq.ParquetFile, batch_rows: int = 1 << 16) -> None:
        """Fill the identifier sample from the head of `pf`, reading the whole column."""
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[self.column]):
            if self._room <= 0:
                break
            self._sample(batch.column(0))

    def _sample(self, arr: pa.Array) -> None:
        if self._room <= 0:
            return
        head = arr.slice(0, self._room)
        try:
            k, v = key_values(head)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            self._room = 0  # values that are not scalars (a wrong dtype, reported as such)
            return
        self._keys.append(k)
        self._values.append(v)
        self._room -= len(head)
        self._sampled += len(head)

    def findings(self) -> list[Finding]:
        out = self.empty.finding(
            WARNING, self.rel, self.column, "empty-fields",
            f"events with an empty '{self.column}' map carry only their source and time",
            "give each event its fields (amount, mcc, screen, ...); drop events that have none "
            "if they mean nothing")
        return out + self._identifiers() + self._unparsable_numbers()

    def _identifiers(self) -> list[Finding]:
        if not self._keys:
            return []
        keys, values = pa.concat_arrays(self._keys), pa.concat_arrays(self._values)
        if not len(keys):
            return []
        t = pa.table({"key": keys, "value": values,
                      "decimal": pc.match_substring_regex(values, _DECIMAL)})
        g = t.group_by("key").aggregate(
            [("value", "count"), ("value", "count_distinct"), ("decimal", "sum")])
        n, d, dec = g["value_count"], g["value_count_distinct"], g["decimal_sum"]
        flag = pc.and_(
            pc.and_(pc.greater_equal(n, MIN_OCCURRENCES),
                    pc.greater_equal(pc.divide(pc.cast(d, pa.float64()), n), UNIQUE_SHARE)),
            pc.less(pc.divide(pc.cast(dec, pa.float64()), n), 0.5))
        out = []
        for row in g.filter(flag).to_pylist():  # one row per flagged key: a handful at most
            key = row["key"]
            vals = pc.unique(values.filter(pc.equal(keys, key)).slice(0, 50)).slice(0, 3)
            out.append(Finding(
                WARNING, self.rel, self.column, "identifier-field",
                f"key '{key}' takes {row['value_count_distinct']:,} distinct values in "
                f"{row['value_count']:,} {self.unit} (first {self._sampled:,} rows sampled): a "
                "per-row identifier that carries no behaviour and explodes the vocabulary",
                row["value_count"], tuple(quote(x) for x in vals.to_pylist()),
                f"drop '{key}' from {self.column} before writing (or replace it with something "
                "that repeats, e.g. its type or category)", self.unit))
        return out

    def _unparsable_numbers(self) -> list[Finding]:
        """Keys whose values look like measurements but partly do not parse as numbers, so the
        tokenizer (default numeric_min_parse) makes them categorical or text."""
        if not self._keys:
            return []
        keys, values = pa.concat_arrays(self._keys), pa.concat_arrays(self._values)
        nonempty = pc.not_equal(values, "")
        keys, values = keys.filter(nonempty), values.filter(nonempty)
        if not len(keys):
            return []
        number = pc.fill_null(pc.match_substring_regex(values, NUMBER_PATTERN), False)
        decimal = pc.and_(number, pc.match_substring(values, "."))
        formatted = pc.and_(pc.fill_null(pc.match_substring_regex(values, FORMATTED_NUMBER_PATTERN), False),
                            pc.invert(number))  # '£1,234.50': a number, written for people
        g = pa.table({"key": keys, "value": values, "number": number, "decimal": decimal,
                      "formatted": formatted}).group_by("key").aggregate(
            [("value", "count"), ("value", "count_distinct"), ("number", "sum"), ("decimal", "sum"),
             ("formatted", "sum")])
        n, d = g["value_count"], g["value_count_distinct"]
        share = pc.divide(pc.cast(g["number_sum"], pa.float64()), n)
        decimals = pc.greater_equal(pc.cast(g["decimal_sum"], pa.float64()),
                                    pc.multiply(pc.cast(pc.max_element_wise(g["number_sum"], 1), pa.float64()), 0.5))
        measured = pc.or_(pc.greater(d, CATEGORICAL_MAX),
                          pc.and_(decimals, pc.greater_equal(d, NUMERIC_MIN_DISTINCT)))
        partly = pc.and_(measured, pc.and_(pc.greater_equal(share, NUMERIC_WARN_SHARE),
                                           pc.less(share, NUMERIC_MIN_PARSE)))
        formatted_share = pc.divide(pc.cast(g["formatted_sum"], pa.float64()), n)
        flag = pc.and_(pc.greater_equal(n, MIN_NUMERIC_VALUES),
                       pc.or_(partly, pc.greater_equal(formatted_share, NUMERIC_WARN_SHARE)))
        out = []
        for row in g.filter(flag).to_pylist():  # one row per flagged key: a handful at most
            key = row["key"]
            bad = values.filter(pc.and_(pc.equal(keys, key), pc.invert(number)))
            ex = pc.unique(bad.slice(0, 1000)).slice(0, 3).to_pylist()
            n_bad = row["value_count"] - row["number_sum"]
            out.append(Finding(
                WARNING, self.rel, self.column, "unparsable-numbers",
                f"key '{key}' looks numeric but {n_bad / row['value_count']:.1%} of its "
                f"{row['value_count']:,} values (first {self._sampled:,} rows sampled) do not parse as numbers, "
                f"more than the tokenizer's numeric_min_parse {NUMERIC_MIN_PARSE} allows: it will not be "
                "bucketed as a number (it becomes categorical or text)", n_bad, tuple(quote(x) for x in ex),
                "write plain numbers such as '1566.20' (no thousands separators or currency signs; leave a "
                f"missing value out of the map rather than 'NaN'), or set kinds: {{{key}: numeric}} in the "
                "tokenizer config", "values"))
        return out
