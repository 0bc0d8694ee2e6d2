"""One user end to end: traits, events, realized outcomes and the user's label rows.

Randomness streams, all keyed by the user index:

    default_rng([seed, i])             traits, everyday events, structured series, fraud
    default_rng([outcome_seed, i, 1])  whether and when the user defaults (after eval)
    default_rng([outcome_seed, i, 2])  whether and when the user churns (after eval)

Outcomes only ever add or remove events at or after their own time, which is at or after the
task's `eval_ts`; everything before the cut is a function of the causes alone (the leakage
test reseeds `outcome_seed` and checks that the pre-cut history is byte-identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import (
    APP, COMM, CUR_FX, HOME_CURRENCY, SP, TRADE, TXN, concat_chunks, make_chunk, take_cols,
)
from pragmatiq.data.synth.events import (
    Timeline, _cents, _sigmoid, _ts, account_takeover, campaigns, everyday, salary_and_bills,
)
from pragmatiq.data.synth.traits import User, draw_user
from pragmatiq.data.synth.world import (
    CHURN_FADED_SLOPE, CHURN_HAZARD_SLOPE, DEFAULT_STRESS_SLOPE, US_PER_DAY, World,
)

_OUTGOING = np.array([C.TXN[t] for t in ("card_payment", "atm_withdrawal", "transfer_out",
                                                "p2p_out", "card_verification")])
_CARD = np.array([C.TXN[t] for t in ("card_payment", "direct_debit")])


@dataclass
class UserResult:
    user: User
    events: dict  # EVENT_COLS arrays, time-ordered
    default: tuple | None  # (label,) when eligible
    churn: tuple | None  # (label,)
    ltv: tuple | None  # (label, profit_6m)
    series: list = field(default_factory=list)  # (ts, series_id, label)
    uplift: list = field(default_factory=list)  # (ts, month, template, treated, y0, y1)


def simulate_user(i: int, w: World) -> UserResult:
    rng = np.random.default_rng([w.seed, i])
    user = draw_user(i, w, rng)
    tl = Timeline(user, w, rng)
    chunks, _ = everyday(user, w, tl, rng)
    pool = concat_chunks(chunks)
    u_keep = rng.random(len(pool["ts"]))
    structured, series = salary_and_bills(user, w, tl, rng)
    camp, uplift = campaigns(user, w, rng)
    fraud_day = None
    if rng.random() < w.cfg.fraud_rate:
        if w.rings:
            ring = w.rings[int(rng.integers(0, len(w.rings)))]
            target = int(ring[0])
        else:
            target = int(rng.integers(0, w.cfg.n_users))
        if target == i or w.cfg.n_users < 2:
            target = (i + 1) % max(w.cfg.n_users, 1)
        ato, fraud_day = account_takeover(user, w, rng, target)
        structured += ato
    u_close = rng.random(2)
    if user.end_day < w.n_days:  # churned before the churn eval: the account is closed
        structured.append(_close(user, w, user.end_day - 1 + 0.5 * u_close[0], u_close[1]))

    # ---- realized outcomes (their own streams) and their post-eval consequences
    eval_d, eval_c = w.eval_default, w.eval_churn
    default = churn = None
    t_def = np.inf
    rng_d = np.random.default_rng([w.outcome_seed, i, 1])
    if user.first_day <= eval_d - 30 and user.end_day > eval_d:
        p = _sigmoid(w.default_intercept + DEFAULT_STRESS_SLOPE * float(user.stress_at(eval_d)))
        if rng_d.random() < p:
            t_def = eval_d + rng_d.random() * (w.n_days - eval_d)
        default = (int(t_def < np.inf),)
    t_churn = np.inf
    rng_c = np.random.default_rng([w.outcome_seed, i, 2])
    eligible_c = user.first_day <= eval_c - 30 and user.end_day > eval_c
    if eligible_c:
        faded = float(user.onset_day < eval_c)
        p = _sigmoid(w.churn_intercept + CHURN_HAZARD_SLOPE * user.churn
                     + CHURN_FADED_SLOPE * faded)
        if rng_c.random() < p:
            t_churn = eval_c + rng_c.random() * (w.n_days - eval_c)
        churn = (int(t_churn < np.inf),)

    if t_def < np.inf:  # defaulted: spending halves, collections start
        cut = w.start_us + int(t_def * US_PER_DAY)
        keep = (pool["ts"] < cut) | (u_keep < 0.5)
        pool = take_cols(pool, keep)
        structured += _collections(user, w, rng_d, t_def)
    events = concat_chunks([pool] + structured + camp)
    if t_churn < np.inf:  # churned: money out, account closed, nothing after
        cut = w.start_us + int(t_churn * US_PER_DAY)
        events = take_cols(events, events["ts"] < cut)
        events = concat_chunks([events, _close(user, w, t_churn, rng_c.random(), rng_c,
                                               not_before=w.start_us + eval_c * US_PER_DAY)])
    order = np.argsort(events["ts"], kind="stable")
    events = take_cols(events, order)

    ltv = None
    if eligible_c:
        profit = _profit_6m(user, w, events, t_def, t_churn, fraud_day)
        ltv = (int(profit > 0), profit)
    return UserResult(user=user, events=events, default=default, churn=churn, ltv=ltv,
                      series=_series(events, series), uplift=uplift)


def _close(user: User, w: World, day: float, u: float, rng=None, not_before: int = 0):
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


def _profit_6m(user: User, w: World, ev: dict, t_def: float, t_churn: float,
               fraud_day) -> float:
    """Net revenue (EUR) from the churn eval to the end of the window."""
    t0 = w.start_us + w.eval_churn * US_PER_DAY
    m = ev["ts"] >= t0
    src, ttype, amt, cur = ev["src"][m], ev["c0"][m], ev["amt"][m], ev["c3"][m]
    txn = src == TXN
    cur = np.where(txn, cur, 0)
    eur = np.where(txn, amt / 100 * CUR_FX[cur], 0.0)
    card = txn & np.isin(ttype, _CARD)
    revenue = 0.007 * eur[card].sum()
    revenue += 0.01 * eur[card & (cur != int(_home(user)))].sum()
    revenue += eur[txn & (ttype == C.TXN["fee"])].sum()
    revenue += 0.005 * eur[txn & (ttype == C.TXN["fx_exchange"])].sum()
    trade = src == TRADE
    notional = ev["amt"][m][trade] / 1e4 * ev["amt2"][m][trade] / 100
    revenue += 0.0025 * notional.sum()
    end = min(w.n_days, t_churn)
    months = max(end - w.eval_churn, 0) / 30.44
    if user.premium_day < w.eval_churn:
        revenue += 7.99 * months
    salary = txn & (ttype == C.TXN["salary"])
    revenue += 0.02 * eur[salary].sum()
    cost = w.cfg.ltv_cost_per_month * months
    if t_def < np.inf:
        cost += 0.6 * user.income_eur if t_def >= w.eval_churn else 20 * months
    if fraud_day is not None and fraud_day >= w.eval_churn:
        cost += 0.3 * eur[txn & (ev["fraud"][m] == 1)].sum()
    return float(round(revenue - cost, 2))


def _home(user: User) -> int:
    return int(HOME_CURRENCY[user.country])


def _series(ev: dict, planted: list) -> list[tuple[int, object, int]]:
    """Recurring-payment candidates: the planted monthly series (label 1) and the user's most
    repeated shops (label 0). `series_id` is decoded later; here it is (merchant, store)."""
    rows = []
    planted_names = set()
    for ts, name, label in planted:
        if len(ts) >= 3:
            rows.append((int(np.sort(ts)[2]), name, label))
            planted_names.add(name)
    txn = (ev["src"] == TXN) & (ev["c0"] == C.TXN["card_payment"]) & (
        ev["c1"] < len(C.BRANDS))
    if txn.any():
        key = ev["c1"][txn].astype(np.int64) * 10_000 + ev["c2"][txn]
        uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
        top = np.argsort(-counts, kind="stable")[:4]
        ts_txn = ev["ts"][txn]
        for j in top:
            if counts[j] < 4:
                break
            brand, store = divmod(int(uniq[j]), 10_000)
            name = C.BRANDS[brand] + (f" {store}" if store else "")
            if name in planted_names:
                continue
            third = ts_txn[key == uniq[j]][2]
            rows.append((int(third), name, 0))
    return rows
