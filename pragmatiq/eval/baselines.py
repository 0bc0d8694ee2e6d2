"""Baseline features for probes, from the raw parquet, over each user's events with `ts < eval_ts`.

    kind="counts"      raw per-source event counts (one column per source)
    kind="aggregates"  hand-crafted: per-source frequency over 30/90 days and all history,
                       active days, recency and tenure, transaction amount statistics and
                       trend, night/weekend share, MCC category mix, mixes of low-cardinality
                       fields (txn_type, channel, screen, comm_event, side), P2P transfers

Events stream through in Arrow record batches; every feature is a `np.bincount` over the
batch's user index, so nothing loops per event or per field and memory stays at one batch plus
(U, n_features). Events after a user's cut and users absent from the label table are dropped
before anything is counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.eval.labels import LabelTable, read_label_table, ts_to_us

KINDS = ("counts", "aggregates")
US_PER_DAY = 86_400 * 1_000_000
US_PER_HOUR = 3_600 * 1_000_000
WINDOWS_DAYS = (30, 90)
AMOUNT_KEY = "amount"
MCC_KEY = "mcc"
# Standard MCC ranges -> coarse merchant categories (lower bounds, inclusive).
MCC_GROUPS = (
    (0, "mcc_other"),
    (1500, "mcc_contractors"),
    (3000, "mcc_travel"),  # airlines, car rental, hotels 3000-3999
    (4000, "mcc_transport"),
    (4800, "mcc_utilities_telecom"),
    (5000, "mcc_wholesale"),
    (5200, "mcc_home"),
    (5300, "mcc_general_retail"),
    (5411, "mcc_groceries"),
    (5412, "mcc_food_stores"),
    (5500, "mcc_auto_fuel"),
    (5600, "mcc_clothing"),
    (5700, "mcc_retail_other"),
    (5811, "mcc_eating"),
    (5900, "mcc_retail_misc"),
    (6000, "mcc_financial_cash"),
    (6300, "mcc_insurance_rent"),
    (7000, "mcc_services"),
    (7800, "mcc_entertainment_gambling"),
    (8000, "mcc_health_professional"),
    (9000, "mcc_government"),
)
# (source, key): shares of the most common values of low-cardinality fields.
MIX_FIELDS = (
    ("transaction", "txn_type"),
    ("transaction", "channel"),
    ("app", "screen"),
    ("communication", "comm_event"),
    ("trading", "side"),
)
MIX_TOP = 12  # values kept per mix field (most frequent overall)
# events read per batch: the aggregates of the quickstart book's 1.57M events peak at 349 MB with
# 2**18 rows against 781 MB with 2**20, no slower (measured on the 2-core machine)
BATCH_ROWS = 1 << 18


def baseline_features(
    data_dir: str | Path, label_table: str | Path | pa.Table | LabelTable, kind: str
) -> tuple[list[str], np.ndarray]:
    """Baseline features for every user of `label_table`, from events with `ts < eval_ts`.

    Returns `(user_ids, X)`: user ids in label-table order and `X` (U, F) float64. Users with no
    events before their cut get zero counts and NaN for undefined statistics (recency, mean
    amount); the probes impute. `baseline_feature_names` gives the column names.
    """
    user_ids, _, X = baseline_frame(data_dir, label_table, kind)
    return user_ids, X


def baseline_feature_names(
    data_dir: str | Path, label_table: str | Path | pa.Table | LabelTable, kind: str
) -> list[str]:
    return _features(Path(data_dir), read_label_table(label_table), kind)[0]


def baseline_frame(
    data_dir: str | Path, label_table: str | Path | pa.Table | LabelTable, kind: str
) -> tuple[list[str], list[str], np.ndarray]:
    """`(user_ids, feature_names, X)` in one pass."""
    labels = read_label_table(label_table)
    names, X = _features(Path(data_dir), labels, kind)
    return labels.user_ids.to_pylist(), names, X


# ---------------------------------------------------------------------------------------------


class _Sums:
    """Named per-user accumulators, each (U,) float64, filled by bincount."""

    def __init__(self, n_users: int):
        self.n = n_users
        self.cols: dict[str, np.ndarray] = {}

    def add(self, name: str, idx: np.ndarray, weights: np.ndarray | None = None) -> None:
        v = np.bincount(idx, weights=weights, minlength=self.n).astype(np.float64, copy=False)
        if name in self.cols:
            self.cols[name] += v
        else:
            self.cols[name] = v

    def get(self, name: str) -> np.ndarray:
        return self.cols.get(name, np.zeros(self.n))

    def extreme(self, name: str, idx: np.ndarray, values: np.ndarray, op) -> None:
        fill = -np.inf if op is np.maximum else np.inf
        cur = self.cols.setdefault(name, np.full(self.n, fill))
        op.at(cur, idx, values)


def _features(data_dir: Path, labels: LabelTable, kind: str) -> tuple[list[str], np.ndarray]:
    if kind not in KINDS:
        raise ValueError(f"unknown baseline kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    events_path = data_dir / schema.EVENTS_FILE
    if not events_path.is_file():
        raise FileNotFoundError(
            f"{events_path} not found: baselines read the raw data directory (the one holding"
            f" {schema.EVENTS_FILE}), not a token directory"
        )
    U = labels.n_users
    acc = _Sums(U)
    mix_values: dict[tuple[str, str], dict[str, np.ndarray]] = {f: {} for f in MIX_FIELDS}
    day_state = {"last": None}
    pf = pq.ParquetFile(events_path)
    columns = ["user_id", "ts", "source"] + (["fields"] if kind == "aggregates" else [])
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        uidx, ts, keep = _cut_batch(batch, labels)
        if not keep.any():
            continue
        batch = batch.filter(pa.array(keep))
        uidx, ts = uidx[keep], ts[keep]
        src = pc.index_in(batch.column("source"), value_set=pa.array(schema.SOURCES, pa.string()))
        src = src.fill_null(-1).to_numpy(zero_copy_only=False)
        for s, name in enumerate(schema.SOURCES):
            m = src == s
            acc.add(f"n_{name}", uidx[m])
        if kind == "aggregates":
            _aggregate_batch(acc, mix_values, day_state, batch, uidx, ts, src, labels)
    if kind == "counts":
        names = [f"n_{s}" for s in schema.SOURCES]
        return names, np.stack([acc.get(n) for n in names], axis=1)
    return _finish_aggregates(acc, mix_values, data_dir, labels)


def _cut_batch(batch: pa.RecordBatch, labels: LabelTable):
    """Per event: label-row index (-1 if not labeled), ts in us, keep = labeled and ts < cut."""
    uidx = pc.index_in(batch.column("user_id"), value_set=labels.user_ids)
    uidx = uidx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    ts = ts_to_us(batch.column("ts"))
    keep = uidx >= 0
    if labels.cut_us is not None:
        keep &= ts < labels.cut_us[np.where(keep, uidx, 0)]
    return uidx, ts, keep


def _field(fields: pa.Array, key: str) -> pa.Array:
    """One field's value per event (null where absent), from a map or all-string struct column."""
    if isinstance(fields, pa.ChunkedArray):
        fields = fields.combine_chunks()
    n = len(fields)
    if pa.types.is_struct(fields.type):
        if fields.type.get_field_index(key) < 0:
            return pa.nulls(n, pa.string())
        return pc.struct_field(fields, key)
    offsets = fields.offsets.to_numpy()
    lo, hi = int(offsets[0]), int(offsets[-1])
    keys = fields.keys.slice(lo, hi - lo)
    items = fields.items.slice(lo, hi - lo)
    parents = np.repeat(np.arange(n), np.diff(offsets))
    hit = pc.equal(keys, key).fill_null(False)
    rows = parents[hit.to_numpy(zero_copy_only=False)]
    vals = items.filter(hit)
    out_idx = np.full(n, -1, dtype=np.int64)
    out_idx[rows] = np.arange(len(rows))  # a repeated key keeps its last value
    return vals.take(pa.array(out_idx, mask=out_idx < 0))


def _parse_float(values: pa.Array) -> np.ndarray:
    """Strings -> float64, NaN where null or not a number (never raises)."""
    ok = pc.match_substring_regex(values, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
    ok = ok.fill_null(False)
    clean = pc.if_else(ok, values, pa.scalar(None, pa.string()))
    return pc.cast(pc.utf8_trim_whitespace(clean), pa.float64()).to_numpy(zero_copy_only=False)


def _aggregate_batch(acc, mix_values, day_state, batch, uidx, ts, src, labels) -> None:
    cut = labels.cut_us[uidx] if labels.cut_us is not None else None
    # frequency over trailing windows, recency, tenure
    for s, name in enumerate(schema.SOURCES):
        m = src == s
        if cut is not None:
            for w in WINDOWS_DAYS:
                mw = m & (ts >= cut - w * US_PER_DAY)
                acc.add(f"n_{name}_{w}d", uidx[mw])
        acc.extreme(f"last_{name}", uidx[m], ts[m], np.maximum)
    acc.extreme("first_any", uidx, ts, np.minimum)
    acc.extreme("last_any", uidx, ts, np.maximum)
    # active days: distinct (user, day); a user's events are contiguous and time-ordered, so a
    # (user, day) pair repeats across batches only at the seam, which `day_state` removes
    day = ts // US_PER_DAY
    key = np.unique(uidx * 1_000_000 + day)
    if len(key) and day_state["last"] is not None and key[0] == day_state["last"]:
        key = key[1:]
    if len(key):
        day_state["last"] = int(key[-1])
        acc.add("active_days", key // 1_000_000)
    # transactions: amounts, trend, timing, categories
    tx = src == schema.SOURCES.index("transaction")
    if tx.any():
        fields = batch.column("fields").filter(pa.array(tx))
        tu, tts = uidx[tx], ts[tx]
        amt = _parse_float(_field(fields, AMOUNT_KEY))
        ok = np.isfinite(amt)
        a, au, ats = np.abs(amt[ok]), tu[ok], tts[ok]
        acc.add("amt_n", au)
        acc.add("amt_sum", au, a)
        acc.add("amt_sq", au, a * a)
        acc.add("amt_logsum", au, np.log1p(a))
        acc.extreme("amt_max", au, a, np.maximum)
        if cut is not None:
            acut = labels.cut_us[au]
            for lo, hi, name in ((0, 30, "amt_30d"), (0, 90, "amt_90d"), (90, 180, "amt_90_180d")):
                m = (ats < acut - lo * US_PER_DAY) & (ats >= acut - hi * US_PER_DAY)
                acc.add(name, au[m], a[m])
        hour = (tts // US_PER_HOUR) % 24
        dow = (tts // US_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        acc.add("tx_night", tu[hour < 6])
        acc.add("tx_weekend", tu[dow >= 5])
        mcc = _parse_float(_field(fields, MCC_KEY))
        ok = np.isfinite(mcc)
        g = np.searchsorted([lo for lo, _ in MCC_GROUPS], mcc[ok], side="right") - 1
        for gi, (_, gname) in enumerate(MCC_GROUPS):
            acc.add(gname, tu[ok][g == gi])
    # low-cardinality field mixes
    for (source, key), table in mix_values.items():
        m = src == schema.SOURCES.index(source)
        if not m.any():
            continue
        vals = _field(batch.column("fields").filter(pa.array(m)), key)
        enc = vals.dictionary_encode()
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        mu = uidx[m]
        for ci, v in enumerate(enc.dictionary.to_pylist()):  # per distinct value, not per event
            c = np.bincount(mu[codes == ci], minlength=len(labels.user_ids)).astype(np.float64)
            table[v] = table[v] + c if v in table else c


def _finish_aggregates(acc: _Sums, mix_values, data_dir: Path, labels: LabelTable):
    cols: dict[str, np.ndarray] = {}
    n_src = {s: acc.get(f"n_{s}") for s in schema.SOURCES}
    n_all = sum(n_src.values())
    ref = labels.cut_us if labels.cut_us is not None else np.where(
        np.isfinite(acc.get("last_any")), acc.get("last_any"), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = lambda us: np.where(np.isfinite(us), (ref - us) / US_PER_DAY, np.nan)  # noqa: E731
        tenure = days(acc.cols.get("first_any", np.full(acc.n, np.inf)))
        for s in schema.SOURCES:
            cols[f"n_{s}"] = n_src[s]
            for w in WINDOWS_DAYS:
                if f"n_{s}_{w}d" in acc.cols or labels.cut_us is not None:
                    cols[f"n_{s}_{w}d"] = acc.get(f"n_{s}_{w}d")
            cols[f"days_since_{s}"] = days(acc.cols.get(f"last_{s}", np.full(acc.n, np.inf)))
        cols["n_events"] = n_all
        cols["tenure_days"] = tenure
        cols["days_since_any"] = days(acc.cols.get("last_any", np.full(acc.n, np.inf)))
        cols["active_days"] = acc.get("active_days")
        cols["events_per_active_day"] = n_all / acc.get("active_days")
        cols["events_per_day"] = n_all / np.maximum(tenure, 1.0)
        n = acc.get("amt_n")
        mean = acc.get("amt_sum") / n
        cols["amt_n"] = n
        cols["amt_sum"] = acc.get("amt_sum")
        cols["amt_mean"] = mean
        cols["amt_std"] = np.sqrt(np.maximum(acc.get("amt_sq") / n - mean * mean, 0.0))
        cols["amt_logmean"] = acc.get("amt_logsum") / n
        cols["amt_max"] = np.where(n > 0, acc.cols.get("amt_max", np.full(acc.n, np.nan)), np.nan)
        if labels.cut_us is not None:
            cols["amt_30d"] = acc.get("amt_30d")
            cols["amt_90d"] = acc.get("amt_90d")
            cols["amt_trend_90d"] = np.log1p(acc.get("amt_90d")) - np.log1p(acc.get("amt_90_180d"))
        n_tx = n_src["transaction"]
        cols["tx_night_share"] = acc.get("tx_night") / n_tx
        cols["tx_weekend_share"] = acc.get("tx_weekend") / n_tx
        for _, gname in MCC_GROUPS:
            cols[f"{gname}_share"] = acc.get(gname) / n_tx
        for (source, key), table in mix_values.items():
            top = sorted(table, key=lambda v: (-table[v].sum(), v))[:MIX_TOP]
            for v in sorted(top):
                cols[f"{key}={v}_share"] = table[v] / n_src[source]
    cols.update(_transfer_features(data_dir, labels))
    names = list(cols)
    X = np.stack([np.asarray(cols[k], dtype=np.float64) for k in names], axis=1)
    X[np.isinf(X)] = np.nan
    return names, X


def _transfer_features(data_dir: Path, labels: LabelTable) -> dict[str, np.ndarray]:
    """P2P transfers before the cut of the user on each side: counts, sums, distinct peers."""
    path = data_dir / schema.TRANSFERS_FILE
    U = labels.n_users
    out = {k: np.zeros(U) for k in ("p2p_out_n", "p2p_out_sum", "p2p_in_n", "p2p_in_sum")}
    if not path.is_file():
        return out
    t = pq.read_table(path, columns=["from_user", "to_user", "ts", "amount"])
    ts = ts_to_us(t["ts"])
    amount = np.abs(t["amount"].combine_chunks().fill_null(0).to_numpy(zero_copy_only=False))
    for side, col in (("out", "from_user"), ("in", "to_user")):
        idx = pc.index_in(t[col], value_set=labels.user_ids).fill_null(-1)
        idx = idx.combine_chunks().to_numpy(zero_copy_only=False).astype(np.int64)
        keep = idx >= 0
        if labels.cut_us is not None:
            keep &= ts < labels.cut_us[np.where(keep, idx, 0)]
        out[f"p2p_{side}_n"] = np.bincount(idx[keep], minlength=U).astype(np.float64)
        out[f"p2p_{side}_sum"] = np.bincount(idx[keep], weights=amount[keep], minlength=U)
    return out
