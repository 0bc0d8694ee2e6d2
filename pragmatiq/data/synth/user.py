"""Users of one block end to end: traits, events, realized outcomes and label rows.

Randomness streams, all keyed by the user index:

    default_rng([seed, i])             traits, everyday draws, structured series, fraud
    default_rng([outcome_seed, i, 1])  whether and when the user defaults and churns (after
                                       the evals), then the default's consequences

Outcomes only ever add or remove events at or after their own time, which is at or after the
task's `eval_ts`; everything before the cut is a function of the causes alone (the leakage
test reseeds `outcome_seed` and checks that the pre-cut history is byte-identical).

`simulate_user` makes every random draw of a user; `simulate_block` turns a block of draws
into time-ordered event columns with block-wide NumPy operations (`pool.everyday_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import (
    APP, COMM, CUR_FX, HOME_CURRENCY, SP, TRADE, TXN, concat_chunks, make_chunk, take_cols,
)
from pragmatiq.data.synth.events import (
    U_KEEP, Timeline, _cents, _sigmoid, account_takeover, campaigns, everyday_draws,
    user_params,
)
from pragmatiq.data.synth.bills import bill_draws, bills_block
from pragmatiq.data.synth.pool import everyday_fields, stack_params
from pragmatiq.data.synth.traits import User, draw_user, stratified
from pragmatiq.data.synth.world import (
    CHURN_FADED_SLOPE, CHURN_HAZARD_SLOPE, DEFAULT_STRESS_SLOPE, US_PER_DAY, World,
)

# Transaction types that take money out: the rows of the `fraud` label table.
OUTGOING_TXN = np.array([C.TXN[t] for t in ("card_payment", "atm_withdrawal", "transfer_out",
                                             "p2p_out", "card_verification")])
_CARD = np.array([C.TXN[t] for t in ("card_payment", "direct_debit")])
NEVER = np.iinfo(np.int64).max


@dataclass
class UserDraw:
    user: User
    params: dict
    day: np.ndarray  # everyday stream: sorted days, uniforms, normals, day context
    U: np.ndarray
    N: np.ndarray
    stress: np.ndarray
    eng: np.ndarray
    trip: np.ndarray
    structured: dict  # event columns of the structured series (incl. default consequences)
    closing: dict | None  # account-closure events after an outcome churn
    t_def: float  # default day (inf: none)
    t_churn: float  # outcome churn day (inf: none)
    fraud_day: float | None
    default: tuple | None  # (label,) when eligible
    churn: tuple | None
    bills: dict = field(default_factory=dict)  # draws for bills.bills_block
    uplift: list = field(default_factory=list)  # (ts, month, template, treated, y0, y1)


def simulate_user(i: int, w: World) -> UserDraw:
    rng = np.random.default_rng([w.seed, i])
    user = draw_user(i, w, rng)
    tl = Timeline(user, w, rng)
    day, U, N = everyday_draws(user, w, tl, rng)
    params = user_params(user, w, rng)
    bills = bill_draws(user, w, tl.stress, rng)
    structured, uplift = campaigns(user, w, rng)
    fraud_day = None
    if stratified(i, w.seed, 2) < w.cfg.fraud_rate:  # account takeover, at an exact rate
        if w.rings:
            target = int(w.rings[int(rng.integers(0, len(w.rings)))][0])
        else:
            target = int(rng.integers(0, w.cfg.n_users))
        if target == i:
            target = (i + 1) % w.cfg.n_users
        if w.cfg.n_users > 1:
            ato, fraud_day = account_takeover(user, w, rng, target)
            structured += ato
    u_close = rng.random(2)
    if user.end_day < w.n_days:  # churned before the churn eval: the account is closed
        structured.append(_close(user, w, user.end_day - 1 + 0.5 * u_close[0], u_close[1]))

    # ---- realized outcomes, from their own stream (fixed draws first, then consequences)
    eval_d, eval_c = w.eval_default, w.eval_churn
    default = churn = closing = None
    t_def = t_churn = np.inf
    rng_o = np.random.default_rng([w.outcome_seed, i, 1])
    uo = rng_o.random(5)
    if user.first_day <= eval_d - 30 and user.end_day > eval_d:
        p = _sigmoid(w.default_intercept + DEFAULT_STRESS_SLOPE * float(user.stress_at(eval_d)))
        if uo[0] < p:
            t_def = eval_d + uo[1] * (w.n_days - eval_d)
            structured += _collections(user, w, rng_o, t_def)
        default = (int(t_def < np.inf),)
    if user.first_day <= eval_c - 30 and user.end_day > eval_c:
        faded = float(user.onset_day < eval_c)
        p = _sigmoid(w.churn_intercept + CHURN_HAZARD_SLOPE * user.churn
                     + CHURN_FADED_SLOPE * faded)
        if uo[2] < p:
            t_churn = eval_c + uo[3] * (w.n_days - eval_c)
            closing = _close(user, w, t_churn, uo[4],
                             not_before=w.start_us + eval_c * US_PER_DAY)
        churn = (int(t_churn < np.inf),)
    return UserDraw(user=user, params=params, day=day, U=U, N=N, stress=tl.stress[day],
                    eng=tl.eng[day], trip=tl.trip[day], structured=concat_chunks(structured),
                    closing=closing, t_def=t_def, t_churn=t_churn, fraud_day=fraud_day,
                    default=default, churn=churn, bills=bills, uplift=uplift)


def _us(w: World, day: np.ndarray) -> np.ndarray:
    """Day (float, inf = never) -> microseconds (NEVER for inf)."""
    day = np.asarray(day, float)
    out = np.full(day.shape, NEVER, np.int64)
    fin = np.isfinite(day)
    out[fin] = w.start_us + (day[fin] * US_PER_DAY).astype(np.int64)
    return out


def simulate_block(draws: list[UserDraw], w: World):
    """Block-local event columns ordered by (user, ts), each event's block-local user, and
    the planted recurring series (user, ts, merchant code)."""
    B = len(draws)
    n_pool = np.array([len(d.day) for d in draws])
    u = np.repeat(np.arange(B), n_pool)
    P = stack_params([d.params for d in draws])
    U = np.concatenate([d.U for d in draws], axis=1)
    pool = everyday_fields(
        np.concatenate([d.day for d in draws]), U, np.concatenate([d.N for d in draws], axis=1),
        u, P, np.concatenate([d.stress for d in draws]), np.concatenate([d.eng for d in draws]),
        np.concatenate([d.trip for d in draws]), w)
    # Default: after it, half the everyday stream stops. Churn: nothing after it but the
    # closing events. One mask, one sort by (user, ts), one gather.
    t_def = _us(w, [d.t_def for d in draws])
    t_churn = _us(w, [d.t_churn for d in draws])
    n_str = np.array([len(d.structured["ts"]) for d in draws])
    closing = [(j, d.closing) for j, d in enumerate(draws) if d.closing is not None]
    bills, bills_u, planted = bills_block([d.bills for d in draws], w)
    ev = concat_chunks([pool, bills] + [d.structured for d in draws] + [c for _, c in closing])
    uu = np.concatenate([u, bills_u, np.repeat(np.arange(B), n_str)]
                        + [np.full(len(c["ts"]), j) for j, c in closing])
    n_close = len(ev["ts"]) - len(u) - n_str.sum()
    keep = np.concatenate([(pool["ts"] < t_def[u]) | (U[U_KEEP] < 0.5),
                           np.ones(len(ev["ts"]) - len(u), bool)])
    keep &= ev["ts"] < t_churn[uu]
    keep[len(ev["ts"]) - n_close:] = True
    idx = np.flatnonzero(keep)
    key = (uu[idx].astype(np.int64) << 47) | (ev["ts"][idx] - w.start_us)
    order = idx[np.argsort(key, kind="stable")]
    return take_cols(ev, order), uu[order], planted


def _close(user: User, w: World, day: float, u: float, not_before: int = 0):
    """Account closure: the balance moves out, then the account is closed in the app."""
    t = max(w.start_us + int(day * US_PER_DAY), not_before + 2 * 3600 * 1_000_000)
    cur = int(HOME_CURRENCY[user.country])
    eur = user.income_eur * (0.2 + u)
    out = make_chunk(TXN, np.array([t - 3600 * 1_000_000]), c0=C.TXN["transfer_out"],
                     c1=SP["transfer_out"], c3=cur, c4=C.CH["bank_transfer"], c5=user.country,
                     amt=_cents(np.array([eur]), cur))
    close = make_chunk(APP, np.array([t]), c0=C.SCREENS.index("settings"),
                       c1=C.ACT["close_account"], c2=0, c3=user.os[0],
                       c4=min(int(w.day_month[min(int(day), w.n_days - 1)]) // 3 + 1,
                              len(C.APP_VERSIONS) - 1), c5=user.country)
    return concat_chunks([out, close])


def _collections(user: User, w: World, rng, t_def: float):
    """After a default: collections notices every week or two, monthly missed-payment fees."""
    days = t_def + np.cumsum(7 + 7 * rng.random(60))
    days = days[days < min(user.end_day, w.n_days)]
    notices = make_chunk(COMM, w.start_us + (days * US_PER_DAY).astype(np.int64),
                         c0=0, c1=C.TPL["collections_notice"],
                         c2=np.where(rng.random(len(days)) < 0.5, 2, 1),
                         c3=w.day_month[days.astype(int)])
    fdays = t_def + 3 + np.arange(0, w.n_days, 30.44)
    fdays = fdays[fdays < min(user.end_day, w.n_days)]
    cur = int(HOME_CURRENCY[user.country])
    fees = make_chunk(TXN, w.start_us + (fdays * US_PER_DAY).astype(np.int64),
                      c0=C.TXN["fee"], c1=SP["missed_payment_fee"], c3=cur,
                      c4=C.CH["bank_transfer"], c5=user.country,
                      amt=_cents(np.full(len(fdays), 25.0), cur))
    return [notices, fees]


def profit_6m(draws: list[UserDraw], ev: dict, uu: np.ndarray, w: World) -> np.ndarray:
    """Net revenue (EUR) per user from the churn eval to the end of the window: interchange,
    FX mark-up, fees, trading commission, premium plan and float on salaries, minus servicing
    cost, default write-offs and fraud losses."""
    B = len(draws)
    t0 = w.start_us + w.eval_churn * US_PER_DAY
    m = ev["ts"] >= t0
    src, ttype, cur, u = ev["src"][m], ev["c0"][m], ev["c3"][m], uu[m]
    txn = src == TXN
    eur = np.where(txn, ev["amt"][m] / 100 * CUR_FX[np.where(txn, cur, 0)], 0.0)
    home = HOME_CURRENCY[np.array([d.user.country for d in draws])][u]
    card = txn & np.isin(ttype, _CARD)
    trade = src == TRADE
    rev = (0.007 * eur * card + 0.01 * eur * (card & (cur != home))
           + eur * (txn & (ttype == C.TXN["fee"]))
           + 0.005 * eur * (txn & (ttype == C.TXN["fx_exchange"]))
           + 0.003 * eur * (txn & (ttype == C.TXN["salary"]))
           + 0.0025 * np.where(trade, ev["amt"][m] / 1e4 * ev["amt2"][m] / 100, 0.0))
    loss = 0.3 * eur * (txn & (ev["fraud"][m] == 1))
    net = np.bincount(u, weights=rev - loss, minlength=B)
    for j, d in enumerate(draws):
        months = max(min(w.n_days, d.t_churn) - w.eval_churn, 0) / 30.44
        if d.user.premium_day < w.eval_churn:
            net[j] += 7.99 * months
        net[j] -= w.cfg.ltv_cost_per_month * months
        if d.t_def < np.inf:
            net[j] -= 0.6 * d.user.income_eur if d.t_def >= w.eval_churn else 20 * months
    return np.round(net, 2)


def recurring_candidates(planted, ev: dict, uu: np.ndarray):
    """Recurring-payment candidates: each user's planted monthly series (label 1) and up to
    four most repeated shops (label 0), each dated at its third payment.
    Returns (user, ts, merchant code, store, label) arrays; planted rows carry store 0."""
    pu, pts, pm = planted
    pkeys = pu.astype(np.int64) * 100_000 + pm
    card = (ev["src"] == TXN) & (ev["c0"] == C.TXN["card_payment"]) & (ev["c1"] < len(C.BRANDS))
    key = uu[card].astype(np.int64) * 10**8 + ev["c1"][card].astype(np.int64) * 10_000 + ev[
        "c2"][card]
    ts = ev["ts"][card]
    order = np.argsort(key, kind="stable")  # events are already in (user, ts) order
    key, ts = key[order], ts[order]
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    user, brand, store = uniq // 10**8, (uniq // 10_000) % 10_000, uniq % 10_000
    ok = (counts >= 4) & ~np.isin(user * 100_000 + brand, pkeys)
    user, brand, store, first, counts = (x[ok] for x in (user, brand, store, first, counts))
    rank_order = np.lexsort((-counts, user))
    user, brand, store, first = (x[rank_order] for x in (user, brand, store, first))
    top = (np.arange(len(user)) - np.searchsorted(user, user, side="left")) < 4
    n_p = len(pu)
    return (np.concatenate([pu.astype(np.int64), user[top]]),
            np.concatenate([pts, ts[first[top] + 2]]),
            np.concatenate([pm.astype(np.int64), brand[top]]),
            np.concatenate([np.zeros(n_p, np.int64), store[top]]),
            np.concatenate([np.ones(n_p, np.int8), np.zeros(int(top.sum()), np.int8)]))
