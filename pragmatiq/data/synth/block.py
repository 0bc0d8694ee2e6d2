"""One block of users -> the contract's Arrow tables (events, profiles, transfers, labels).

Users draw their randomness one by one (each from its own generator); the block's events are
then computed as integer columns (`user.simulate_block`), decoded to strings and assembled
into `map<string,string>` with a handful of vectorized Arrow kernels: fixed-point formatting
with `pyarrow.compute` for amounts and prices, and a single `take` from one string table
(every small vocabulary plus the formatted values) that lays all fields out event-major.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.data import schema
from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import (
    APP, COMM, COUNTRIES, CURRENCIES, CUR_FX, MERCHANT_MCC, MERCHANT_NAMES, TRADE, TXN,
    BRAND_CAT, campaign_id,
)
from pragmatiq.data.synth.transfers import ring_transfers
from pragmatiq.data.synth.user import (
    OUTGOING_TXN, profit_6m, recurring_candidates, simulate_block, simulate_user,
)
from pragmatiq.data.synth.world import US_PER_DAY, World

KEYS = {
    TXN: ("amount", "currency", "mcc", "merchant", "txn_type", "channel", "country",
          "counterparty"),
    APP: ("screen", "action", "device_id", "os", "app_version", "geo_country"),
    TRADE: ("instrument", "side", "quantity", "price", "order_type"),
    COMM: ("comm_event", "campaign_id", "channel", "template"),
}
ALL_KEYS = tuple(dict.fromkeys(k for ks in KEYS.values() for k in ks))
_KEY_ID = {k: i for i, k in enumerate(ALL_KEYS)}
_S = lambda xs: pa.array(list(xs), pa.string())  # noqa: E731
T_KEYS, T_SOURCES = _S(ALL_KEYS), _S(schema.SOURCES)
T_CUR, T_CTRY, T_MCC, T_MERCH = _S(CURRENCIES), _S(COUNTRIES), _S(MERCHANT_MCC), _S(MERCHANT_NAMES)
T_TXN, T_CH = _S(C.TXN_TYPES), _S(C.CHANNELS)
T_SCREEN, T_ACT, T_OS, T_VER = _S(C.SCREENS), _S(C.ACTIONS), _S(C.OS_NAMES), _S(C.APP_VERSIONS)
T_INST, T_SIDE, T_ORDER = _S(C.INSTRUMENTS), _S(C.SIDES), _S(C.ORDER_TYPES)
T_COMM, T_CCH, T_TPL = _S(C.COMM_EVENTS), _S(C.COMM_CHANNELS), _S(C.TEMPLATES)
ATTR_KEYS = ("age_band", "country", "occupation", "income_band", "kyc_tier", "marital_status",
             "housing", "device_count")


def user_id_width(n_users: int) -> int:
    return max(7, len(str(max(n_users - 1, 0))))


def user_ids(idx: np.ndarray, width: int) -> pa.Array:
    """'u0000042'-style ids, vectorized."""
    s = pc.utf8_lpad(pc.cast(pa.array(np.asarray(idx, np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar("u"), s, "")


def fixed(v: np.ndarray, decimals: int) -> pa.Array:
    """Non-negative fixed-point integers -> decimal strings ("4210", 2 -> "42.10")."""
    v = np.asarray(v, np.int64)
    scale = 10**decimals
    whole = pc.cast(pa.array(v // scale), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(v % scale), pa.string()), decimals, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _ts(v) -> pa.Array:
    return pa.array(np.asarray(v, np.int64), pa.int64()).cast(schema.TS)


def _device_table(users, seed: int) -> pa.Array:
    """Five device ids per user (slot 4 is the account-takeover device)."""
    out = []
    for u in users:
        for k in range(5):
            h = (u.index * 2_654_435_761 + k * 40_503 + seed * 97 + 0x9E37) % 2**32
            h = (h ^ (h >> 15)) * 2_246_822_519 % 2**32
            out.append(f"{'ios' if u.os[min(k, u.n_devices - 1)] < 3 else 'and'}-{h:08x}")
    return pa.array(out, pa.string())


def _fields(ev: dict, local: np.ndarray, devices: pa.Array, w: World) -> pa.MapArray:
    """Assemble the `fields` map of every event of the block (event-major, keys in KEYS
    order, `counterparty` replacing `merchant` on P2P transfers).

    Categorical fields are integer codes into one string table (all small vocabularies, the
    block's device ids, the campaign ids); formatted fields (amounts, prices, store merchants,
    counterparties) are built with `pyarrow.compute`. Every value lands in its slot through
    one index array and a single `take`."""
    tables = [T_CUR, T_MCC, T_TXN, T_CH, T_CTRY, T_SCREEN, T_ACT, T_OS, T_VER, T_INST, T_SIDE,
              T_ORDER, T_COMM, T_CCH, T_TPL, T_MERCH, _campaigns(w), devices]
    off = dict(zip(map(id, tables), np.cumsum([0] + [len(t) for t in tables[:-1]])))
    vocab_len = sum(len(t) for t in tables)
    src = ev["src"]
    n = len(src)
    cols = []  # (source, key, present mask or None, table or None, codes or Arrow strings)
    m = {s: np.flatnonzero(src == s) for s in KEYS}
    g = lambda s, c: ev[c][m[s]]  # noqa: E731
    if len(m[TXN]):
        c1, c2, cp = g(TXN, "c1"), g(TXN, "c2"), g(TXN, "amt2")
        p2p, shop = cp >= 0, c2 > 0
        named = ~p2p & ~shop
        width = user_id_width(w.cfg.n_users)
        cols += [
            (TXN, "amount", None, None, fixed(g(TXN, "amt"), 2)),
            (TXN, "currency", None, T_CUR, g(TXN, "c3")),
            (TXN, "mcc", None, T_MCC, c1),
            (TXN, "merchant", named, T_MERCH, c1[named]),
            (TXN, "merchant", shop, None, _merchant_strings(c1[shop], c2[shop])),
            (TXN, "txn_type", None, T_TXN, g(TXN, "c0")),
            (TXN, "channel", None, T_CH, g(TXN, "c4")),
            (TXN, "country", None, T_CTRY, g(TXN, "c5")),
            (TXN, "counterparty", p2p, None, user_ids(cp[p2p], width)),
        ]
    if len(m[APP]):
        cols += [
            (APP, "screen", None, T_SCREEN, g(APP, "c0")),
            (APP, "action", None, T_ACT, g(APP, "c1")),
            (APP, "device_id", None, devices, local[m[APP]] * 5 + g(APP, "c2")),
            (APP, "os", None, T_OS, g(APP, "c3")),
            (APP, "app_version", None, T_VER, g(APP, "c4")),
            (APP, "geo_country", None, T_CTRY, g(APP, "c5")),
        ]
    if len(m[TRADE]):
        inst, qty = g(TRADE, "c0"), g(TRADE, "amt")
        quantity = pc.if_else(pa.array(C.CRYPTO[inst]), fixed(qty, 4),
                              pc.cast(pa.array(qty // 10_000), pa.string()))
        cols += [
            (TRADE, "instrument", None, T_INST, inst),
            (TRADE, "side", None, T_SIDE, g(TRADE, "c1")),
            (TRADE, "quantity", None, None, quantity),
            (TRADE, "price", None, None, fixed(g(TRADE, "amt2"), 2)),
            (TRADE, "order_type", None, T_ORDER, g(TRADE, "c2")),
        ]
    if len(m[COMM]):
        tpl = g(COMM, "c1")
        cols += [
            (COMM, "comm_event", None, T_COMM, g(COMM, "c0")),
            (COMM, "campaign_id", None, _campaigns(w), g(COMM, "c3") * len(C.TEMPLATES) + tpl),
            (COMM, "channel", None, T_CCH, g(COMM, "c2")),
            (COMM, "template", None, T_TPL, tpl),
        ]
    # Fields per event; a key's slot is the event's offset plus the number of keys before it.
    nf = np.zeros(n, np.int64)
    for s in KEYS:
        nf[m[s]] = len(KEYS[s])
    nf[m[TXN]] -= 1  # merchant or counterparty, never both
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(nf, out=offsets[1:])
    total = int(offsets[-1])
    slot = {s: offsets[m[s]] for s in KEYS}
    key_ids = np.empty(total, np.int8)
    index = np.empty(total, np.int64)
    dyn, dyn_len = [], vocab_len
    # On P2P events `counterparty` (last) replaces `merchant`: later keys move up one slot.
    p2p_shift = (ev["amt2"][m[TXN]] >= 0).astype(np.int64)
    for s, key, mask, table, vals in cols:
        rank = KEYS[s].index(key)
        base = slot[s] + rank
        if s == TXN and rank > KEYS[TXN].index("merchant"):
            base = base - p2p_shift
        dest = base if mask is None else base[mask]
        key_ids[dest] = _KEY_ID[key]
        if table is not None:
            index[dest] = off[id(table)] + vals
        else:
            index[dest] = dyn_len + np.arange(len(vals))
            dyn.append(vals)
            dyn_len += len(vals)
    items = pa.concat_arrays(tables + dyn).take(pa.array(index))
    keys = T_KEYS.take(pa.array(key_ids))
    return pa.MapArray.from_arrays(pa.array(offsets.astype(np.int32)), keys, items)


_CAMPAIGN_CACHE: dict = {}


def _campaigns(w: World) -> pa.Array:
    key = (w.cfg.start, w.cfg.n_months)
    if key not in _CAMPAIGN_CACHE:
        y, mo = int(w.cfg.start[:4]), int(w.cfg.start[5:7])
        _CAMPAIGN_CACHE[key] = _S(campaign_id(m, t, mo, y) for m in range(w.cfg.n_months)
                                  for t in range(len(C.TEMPLATES)))
    return _CAMPAIGN_CACHE[key]


def generate_block(b: int, w: World) -> dict:
    """Users [b*block_size, (b+1)*block_size) -> {"events", "profiles", "transfers",
    "labels": {task: table}, "stats": {...}}."""
    cfg = w.cfg
    lo, hi = b * cfg.block_size, min((b + 1) * cfg.block_size, cfg.n_users)
    draws = [simulate_user(i, w) for i in range(lo, hi)]
    ev, local, planted = simulate_block(draws, w)
    users = [d.user for d in draws]
    width = user_id_width(cfg.n_users)
    uid = user_ids(np.arange(lo, hi), width)
    events = pa.Table.from_arrays(
        [uid.take(pa.array(local)), _ts(ev["ts"]), T_SOURCES.take(pa.array(ev["src"])),
         _fields(ev, local, _device_table(users, w.seed), w)],
        schema=schema.EVENTS,
    )
    profiles = _profiles(users, uid, w)
    transfers = _transfers(ev, local, lo, hi, w, width)
    labels = _labels(draws, uid, ev, local, planted, w)
    stats = _stats(draws, ev, local, w)
    return {"events": events, "profiles": profiles, "transfers": transfers, "labels": labels,
            "stats": stats}


def _profiles(users, uid: pa.Array, w: World) -> pa.Table:
    n = len(users)
    keys = pa.array(list(ATTR_KEYS) * n, pa.string())
    vals = pa.array([u.attributes[k] for u in users for k in ATTR_KEYS], pa.string())
    attr = pa.MapArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * len(ATTR_KEYS)),
                                   keys, vals)
    mk = [k for u in users for k, _ in u.milestones]
    md = np.array([d for u in users for _, d in u.milestones], dtype=float)
    mts = w.start_us + np.round(md * US_PER_DAY).astype(np.int64)
    moff = np.zeros(n + 1, np.int32)
    np.cumsum([len(u.milestones) for u in users], out=moff[1:])
    struct = pa.StructArray.from_arrays([pa.array(mk, pa.string()), _ts(mts)],
                                        fields=list(schema.LIFELONG.value_type))
    lifelong = pa.ListArray.from_arrays(pa.array(moff), struct)
    as_of = _ts(np.full(n, w.end_us - 1))
    return pa.Table.from_arrays([uid, as_of, attr, lifelong.cast(schema.LIFELONG)],
                                schema=schema.PROFILES)


def _transfers(ev, local, lo, hi, w: World, width: int) -> pa.Table:
    p2p = (ev["src"] == TXN) & (ev["amt2"] >= 0)
    frm = [local[p2p] + lo]
    to = [ev["amt2"][p2p]]
    ts = [ev["ts"][p2p]]
    amt = [ev["amt"][p2p] / 100.0]
    for r, members in enumerate(w.rings):
        if lo <= members[0] < hi:
            f, t, s, a = ring_transfers(r, w)
            frm.append(f), to.append(t), ts.append(s), amt.append(a)
    frm, to, ts, amt = (np.concatenate(x) for x in (frm, to, ts, amt))
    return pa.Table.from_arrays(
        [user_ids(frm, width), user_ids(to, width), _ts(ts), pa.array(amt, pa.float64())],
        schema=schema.TRANSFERS,
    )


def _merchant_strings(code: np.ndarray, store: np.ndarray) -> pa.Array:
    names = T_MERCH.take(pa.array(code))
    joined = pc.binary_join_element_wise(names, pc.cast(pa.array(store), pa.string()), " ")
    return pc.if_else(pa.array(store > 0), joined, names)


def _labels(draws, uid: pa.Array, ev, local, planted, w: World) -> dict[str, pa.Table]:
    L = schema.LABEL_SCHEMAS
    out = {}
    n = len(draws)
    eval_d = w.start_us + w.eval_default * US_PER_DAY
    eval_c = w.start_us + w.eval_churn * US_PER_DAY

    def forecast(task, attr, eval_us, profit=None):
        idx = np.array([j for j, d in enumerate(draws) if getattr(d, attr) is not None],
                       dtype=np.int64)
        if profit is not None:
            lab = (profit[idx] > 0).astype(np.int8)
        else:
            lab = np.array([getattr(draws[j], attr)[0] for j in idx], dtype=np.int8)
        cols = [uid.take(pa.array(idx)), _ts(np.full(len(idx), eval_us)),
                pa.array(lab, pa.int8())]
        if profit is not None:
            cols.append(pa.array(profit[idx], pa.float64()))
        return pa.Table.from_arrays(cols, schema=L[task])

    out["default_12m"] = forecast("default_12m", "default", eval_d)
    out["churn_6m"] = forecast("churn_6m", "churn", eval_c)
    out["ltv_positive"] = forecast("ltv_positive", "churn", eval_c,
                                   profit=profit_6m(draws, ev, local, w))
    mule = np.array([d.user.index in w.ring_of_user for d in draws], dtype=np.int8)
    out["aml"] = pa.Table.from_arrays([uid, _ts(np.full(n, w.end_us - 1)), pa.array(mule)],
                                      schema=L["aml"])
    out_m = (ev["src"] == TXN) & np.isin(ev["c0"], OUTGOING_TXN)
    out["fraud"] = pa.Table.from_arrays(
        [uid.take(pa.array(local[out_m])), _ts(ev["ts"][out_m]),
         pa.array(ev["fraud"][out_m], pa.int8())], schema=L["fraud"])
    ru, rts, rm, rs, rl = recurring_candidates(planted, ev, local)
    order = np.lexsort((rts, ru))
    out["recurring"] = pa.Table.from_arrays(
        [uid.take(pa.array(ru[order])), _ts(rts[order]),
         _merchant_strings(rm[order], rs[order]), pa.array(rl[order], pa.int8())],
        schema=L["recurring"])
    uj = [j for j, d in enumerate(draws) for _ in d.uplift]
    up = [s for d in draws for s in d.uplift]
    cids = _campaigns(w).take(pa.array(np.array([s[1] * len(C.TEMPLATES) + s[2] for s in up],
                                                np.int64)))
    out["comm_uplift"] = pa.Table.from_arrays(
        [uid.take(pa.array(np.array(uj, np.int64))), cids, _ts([s[0] for s in up])]
        + [pa.array(np.array([s[k] for s in up], np.int8)) for k in (3, 4, 5)],
        schema=L["comm_uplift"])
    return out


def _stats(draws, ev, local, w: World) -> dict:
    """Sums the manifest and `calibrate` need (all additive across blocks)."""
    card = (ev["src"] == TXN) & np.isin(ev["c0"], (C.TXN["card_payment"],
                                                   C.TXN["atm_withdrawal"])) & (
        ev["c1"] < len(C.BRANDS))
    cat = BRAND_CAT[ev["c1"][card]]
    eur = ev["amt"][card] / 100.0 * CUR_FX[ev["c3"][card]]
    n_cat = len(C.CATEGORIES)
    B = len(draws)
    counts = np.bincount(local, minlength=B)
    ends = np.cumsum(counts) - 1
    first = np.array([d.user.first_day for d in draws], float)
    last = np.where(counts > 0, (ev["ts"][np.maximum(ends, 0)] - w.start_us) / US_PER_DAY, first)
    active_months = float((np.maximum(last - first, 1.0) * (counts > 0)).sum() / 30.44)
    return {
        "n_users": B,
        "n_events": int(len(ev["src"])),
        "events_by_source": np.bincount(ev["src"], minlength=4).tolist(),
        "active_user_months": active_months,
        "persona_counts": np.bincount([d.user.persona for d in draws],
                                      minlength=len(C.PERSONAS)).tolist(),
        "country_counts": np.bincount([d.user.country for d in draws],
                                      minlength=len(C.COUNTRIES)).tolist(),
        "card_count_by_category": np.bincount(cat, minlength=n_cat).tolist(),
        "card_eur_by_category": np.bincount(cat, weights=eur, minlength=n_cat).tolist(),
        "fraud_users": int(sum(d.fraud_day is not None for d in draws)),
    }
