"""The everyday stream of a whole block, vectorized: hours, sources and every field code of
every event in one pass over block-wide arrays.

Inputs are each user's own draws (`events.everyday_draws`, `events.user_params`) stacked
for the block; per-user parameters are broadcast to events with the event's block-local user
index `u`. Nothing here draws random numbers, so the output depends on the users alone.
"""

from __future__ import annotations

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import (
    APP, COMM, HOME_CURRENCY, MERCHANT_ONLINE, SP, TRADE, TRAVEL_COUNTRY, TRAVEL_CUR, TXN,
    empty_cols,
)
from pragmatiq.data.synth.events import (
    _MARKETING, GLOBAL_BRAND_CDF, U_F, U_HOUR, U_NIGHT, U_SEC, U_SRC, _cents, _sigmoid, _ts,
)
from pragmatiq.data.synth.traits import HOUR_CDF, pick
from pragmatiq.data.synth.world import World

T = C.TXN


def stack_params(params: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([p[k] for p in params]) for k in params[0]}


def _rowpick(cdfs: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw from a different CDF per event: `cdfs` (R, K) rows in [0, 1], `row`
    (E,) which row each event uses, `u` (E,) uniforms. One searchsorted over the rows laid
    end to end, each shifted by its row number."""
    R, K = cdfs.shape
    flat = (cdfs + np.arange(R)[:, None]).ravel()
    pos = np.searchsorted(flat, u + row, side="right") - row * K
    return np.clip(pos, 0, K - 1)


def everyday_fields(day, U, N, u, P, stress, eng, trip, w: World):
    """Block-wide everyday events -> (EVENT_COLS dict, u_keep). Shapes: (E,) except U
    (N_UNIFORM, E) and N (2, E)."""
    n = len(day)
    # Hours: a night block (0-4h) whose share rises with financial stress, else the day curve.
    p_night = 0.025 + 0.14 * _sigmoid(2.2 * (stress - 1.0)) + 0.02 * (P["persona"][u] == 0)
    hour = np.where(U[U_NIGHT] < p_night, (U[U_HOUR] * 5).astype(int), pick(HOUR_CDF, U[U_HOUR]))
    ts = _ts(w, day, hour * 3600 + U[U_SEC] * 3600)
    # Sources: app use fades faster than spending when engagement drops.
    p_app = np.clip((0.30 + 0.07 * P["tech"][u]) * np.exp(-0.15 * P["churn"][u]), 0.12, 0.5) * (
        0.3 + 0.7 * eng)
    p_trade = np.where(day >= P["trading_day"][u], 0.03 + 0.08 * _sigmoid(2 * P["risk"][u]), 0)
    s = U[U_SRC]
    src = np.where(s < p_app, APP, np.where(s < p_app + p_trade, TRADE,
                                            np.where(s < p_app + p_trade + 0.045, COMM, TXN)))
    cols = empty_cols(n)
    cols["ts"][:] = ts
    cols["src"][:] = src
    cols["amt2"][:] = np.where(src == TXN, -1, 0)
    F = U[U_F:]
    for code, fn in ((TXN, _txn), (APP, _app), (TRADE, _trade), (COMM, _comm)):
        m = np.flatnonzero(src == code)
        if len(m):
            out = fn(ts[m], day[m], F[:, m], N[:, m], u[m], P, stress[m], eng[m], trip[m], w)
            for k, v in out.items():
                cols[k][m] = v
    return cols


def _txn(ts, day, F, N, u, P, stress, eng, trip, w: World):
    # Category from the user's own mix; gambling rises with stress and risk appetite.
    cat = _rowpick(P["mix_cdf"], u, F[0])
    p_g = np.clip(P["base_g"][u] * np.exp(1.1 * stress + 0.6 * P["risk"][u] - 1.2), 0, 0.3)
    cat = np.where(F[1] < p_g, C.GAMBLING, cat)
    # Brand: the user's favourite-weighted Zipf over home-country brands; global abroad.
    abroad = trip >= 0
    n_cat = len(C.CATEGORIES)
    local = _rowpick(P["brand_cdf"].reshape(-1, C.MAX_BRANDS), u * n_cat + cat, F[2])
    brand = C.BRAND_START[cat] + np.where(abroad, _rowpick(GLOBAL_BRAND_CDF, cat, F[2]), local)
    tr = np.maximum(trip, 0)
    k = np.where(F[3] < 0.7, 0, np.where(F[3] < 0.9, 1, 2)) + 3 * abroad
    home = P["index"][u] * 104_729 + 17
    store = np.where(MERCHANT_ONLINE[brand], 0, 1000 + (brand * 7919 + home + k * 3571) % 9000)
    t = F[4]
    ttype = np.where(cat == C.CASH, T["atm_withdrawal"], T["card_payment"])
    ttype = np.where(t < 0.05, T["p2p_out"], np.where(
        t < 0.075, T["transfer_out"], np.where(
            t < 0.10, T["top_up"], np.where(t < 0.112, T["refund"], ttype))))
    ttype = np.where(abroad & (F[5] < 0.04), T["fx_exchange"], ttype)
    if w.cfg.n_users < 2:
        ttype = np.where(ttype == T["p2p_out"], T["transfer_out"], ttype)
    special = np.select(
        [ttype == T["p2p_out"], ttype == T["transfer_out"], ttype == T["top_up"],
         ttype == T["fx_exchange"]],
        [SP["p2p"], SP["transfer_out"], SP["top_up"], SP["fx"]], -1)
    merchant = np.where(special >= 0, special, brand)
    store = np.where(special >= 0, 0, store)
    # Amounts in EUR: ticket by category scaled by income and spend propensity.
    sig = C.CAT_SIGMA[cat]
    inc, spend = P["income"][u], P["spend"][u]
    eur = w.ticket[cat] * np.exp(0.25 * inc + 0.15 * spend + sig * N[0] - 0.5 * sig**2)
    scale = np.exp(0.3 * inc + 0.5 * N[1])
    eur = np.select(
        [ttype == T["p2p_out"], ttype == T["transfer_out"], ttype == T["top_up"],
         ttype == T["refund"], ttype == T["fx_exchange"]],
        [35 * scale, 220 * scale, 80 * scale, 0.6 * eur, 150 * scale], eur)
    country = P["country"][u]
    cur = np.where(abroad, TRAVEL_CUR[tr], HOME_CURRENCY[country])
    # Channel: wallets for the tech-savvy, online for online merchants.
    wallet = np.where(P["os"][u, 0] < 3, C.CH["apple_pay"], C.CH["google_pay"])
    p_wallet = 0.5 * _sigmoid(1.5 * P["tech"][u])
    ch = np.where(F[6] < p_wallet, wallet, np.where(F[6] < p_wallet + 0.15, C.CH["chip_pin"],
                                                     C.CH["contactless"]))
    ch = np.where(MERCHANT_ONLINE[merchant], C.CH["online"], ch)
    ch = np.where(ttype == T["atm_withdrawal"], C.CH["atm"], ch)
    ch = np.where(special >= 0, C.CH["bank_transfer"], ch)
    # P2P counterparties: a handful of friends, Zipf-used.
    friend = P["friends"][u, np.minimum((F[7] ** 2 * 6).astype(int), 5)]
    cp = np.where(ttype == T["p2p_out"], friend, -1)
    return {"c0": ttype, "c1": merchant, "c2": store, "c3": cur, "c4": ch,
            "c5": np.where(abroad, TRAVEL_COUNTRY[tr], country), "amt": _cents(eur, cur),
            "amt2": cp}


def _app(ts, day, F, N, u, P, stress, eng, trip, w: World):
    # Sessions: an app event continues the user's previous one that day (15 s to 3 min
    # later, same device) with probability 0.55, so busy days come in bursts; half the
    # sessions start with an `open` or `login`, many on `home`.
    order = np.argsort((u.astype(np.int64) << 47) | (ts - w.start_us), kind="stable")
    us, ds = u[order], day[order]
    new = (F[4][order] >= 0.55) | np.r_[True, (us[1:] != us[:-1]) | (ds[1:] != ds[:-1])]
    gap = np.where(new, 0, ((15 + F[5][order] * 165) * 1_000_000).astype(np.int64))
    start = np.maximum.accumulate(np.where(new, np.arange(len(us)), 0))
    cs = np.cumsum(gap)
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    ts = (ts[order][start] + cs - cs[start])[inv]
    lead = order[start][inv]  # the event that opened this event's session
    first = new[inv]
    screen = _rowpick(P["screen_cdf"], u, F[0])
    screen = np.where(first & (F[7] < 0.45), C.SCREENS.index("home"), screen)
    # Stressed users look at loans more often.
    screen = np.where(F[1] < 0.04 * np.exp(0.9 * stress - 0.9), C.SCREENS.index("loans"), screen)
    action = pick(np.cumsum([0.42, 0.24, 0.12, 0.11, 0.06, 0.03, 0.02]), F[2])
    action = np.where(first & (F[6] < 0.5), np.where(F[6] < 0.1, C.ACT["login"], C.ACT["open"]),
                      action)
    device = np.where(F[3] < 0.8, 0, (F[3] * 7).astype(int) % P["n_devices"][u])[lead]
    version = np.clip(w.day_month[day] // 3 - P["lag"][u] + 1, 0, len(C.APP_VERSIONS) - 1)
    geo = np.where(trip >= 0, TRAVEL_COUNTRY[np.maximum(trip, 0)], P["country"][u])
    return {"ts": ts, "c0": screen, "c1": action, "c2": device, "c3": P["os"][u, device],
            "c4": version, "c5": geo}


def _trade(ts, day, F, N, u, P, stress, eng, trip, w: World):
    inst = P["fav"][u, np.minimum((F[0] ** 1.5 * 3).astype(int), 2)]
    price = w.prices[day, inst]
    notional = 60 * np.exp(0.5 * P["income"][u] + 0.4 * P["risk"][u] + 0.6 * N[0])
    qty = np.where(C.CRYPTO[inst], np.maximum(np.round(notional / price * 1e4), 1),
                   np.maximum(np.round(notional / price), 1) * 1e4)
    otype = pick(np.cumsum([0.6, 0.25, 0.05, 0.1]), F[2])
    side = np.where(otype == C.ORDER_TYPES.index("recurring_buy"), 0, (F[1] < 0.4).astype(int))
    return {"c0": inst, "c1": side, "c2": otype,
            "amt": qty.astype(np.int64), "amt2": np.round(price * 100).astype(np.int64)}


def _comm(ts, day, F, N, u, P, stress, eng, trip, w: World):
    tpl = _MARKETING[(F[0] * len(_MARKETING)).astype(int)]
    tpl = np.where((stress > 1.0) & (F[1] < 0.3), C.TPL["payment_reminder"], tpl)
    # Fading users open less and unsubscribe more.
    p_unsub = 0.01 + 0.12 * (1 - eng)
    p_open = 0.2 * eng * (0.7 + 0.3 * _sigmoid(P["tech"][u]))
    x = F[2]
    ev = np.where(x < p_unsub, 4, np.where(x < p_unsub + p_open, 2, np.where(
        x < p_unsub + p_open + 0.07 * eng, 3, np.where(x < 0.6, 0, 1))))
    return {"c0": ev, "c1": tpl, "c2": pick(np.cumsum([0.5, 0.3, 0.05, 0.15]), F[3]),
            "c3": w.day_month[day]}
