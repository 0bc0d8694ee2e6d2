"""Integer codes for event columns and the string tables that decode them.

A user's events are simulated as integer columns (`EventCols`); `arrow.py` turns a block of
them into the contract's `map<string,string>` with vectorized takes from these tables.
"""

from __future__ import annotations

import numpy as np

from pragmatiq.data.synth import catalog as C

TXN, APP, TRADE, COMM = 0, 1, 2, 3  # index into schema.SOURCES

# Merchant codes: brand ids first, then special (non-card) merchants.
SPECIAL = tuple(C.SPECIAL_MERCHANTS)
SP = {name: len(C.BRANDS) + j for j, name in enumerate(SPECIAL)}
MERCHANT_NAMES = C.BRANDS + tuple(C.SPECIAL_MERCHANTS[s][0] for s in SPECIAL)
_BRAND_CAT = np.repeat(np.arange(len(C.CATEGORIES)), C.BRAND_COUNT)
MERCHANT_MCC = tuple(C.CAT_MCC[c] for c in _BRAND_CAT) + tuple(
    C.SPECIAL_MERCHANTS[s][1] for s in SPECIAL
)
MERCHANT_ONLINE = np.concatenate([C.BRAND_ONLINE, np.ones(len(SPECIAL), dtype=bool)])
BRAND_CAT = _BRAND_CAT

CURRENCIES = tuple(sorted(set(C.CURRENCIES) | set(C.TRAVEL_CURRENCY)))
CUR = {c: i for i, c in enumerate(CURRENCIES)}
CUR_FX = np.array([C.FX_TO_EUR[c] for c in CURRENCIES])  # EUR per unit
HOME_CURRENCY = np.array([CUR[c] for c in C.CURRENCIES])

COUNTRIES = tuple(dict.fromkeys(C.COUNTRIES + C.TRAVEL + C.ATO_COUNTRIES))
CTRY = {c: i for i, c in enumerate(COUNTRIES)}
TRAVEL_COUNTRY = np.array([CTRY[c] for c in C.TRAVEL])
TRAVEL_CUR = np.array([CUR[c] for c in C.TRAVEL_CURRENCY])
ATO_COUNTRY = np.array([CTRY[c] for c in C.ATO_COUNTRIES])


def campaign_id(month: int, template: int, start_month: int, start_year: int) -> str:
    m = start_month - 1 + month
    return f"cmp_{start_year + m // 12}_{m % 12 + 1:02d}_{C.TEMPLATES[template]}"


# Event columns. Meaning of c0..c5 / amt / amt2 by source:
#   transaction: txn_type, merchant, store, currency, channel, country | amount cents |
#                counterparty user index (-1 none)
#   app:         screen, action, device (0..4; 4 = takeover device), os, app version,
#                geo country
#   trading:     instrument, side, order type, - , - , - | quantity (1e-4 units) | price cents
#   communication: comm_event, template, channel, month (campaign = month x template)
EVENT_COLS = ("ts", "src", "c0", "c1", "c2", "c3", "c4", "c5", "amt", "amt2", "fraud")
_DTYPES = {"ts": np.int64, "src": np.int8, "amt": np.int64, "amt2": np.int64,
           "fraud": np.int8}


def empty_cols(n: int) -> dict[str, np.ndarray]:
    return {k: np.zeros(n, dtype=_DTYPES.get(k, np.int32)) for k in EVENT_COLS}


def make_chunk(src: int, ts: np.ndarray, **cols) -> dict[str, np.ndarray]:
    """A chunk of events of one source; unspecified columns are 0 (amt2 defaults to -1 for
    transactions: no counterparty)."""
    n = len(ts)
    out = empty_cols(n)
    out["ts"][:] = ts
    out["src"][:] = src
    if src == TXN:
        out["amt2"][:] = -1
    for k, v in cols.items():
        out[k][:] = v
    return out


def concat_chunks(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not chunks:
        return empty_cols(0)
    return {k: np.concatenate([c[k] for c in chunks]) for k in EVENT_COLS}


def take_cols(cols: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in cols.items()}
