"""Simulate one user's 25 months of events as integer columns, vectorized with NumPy.

The everyday stream is one draw: the number of events from the user's daily intensity
(weekday rhythm, seasonality, engagement), then all days by inverse CDF, hours, sources and
field codes as arrays. Structured series (salary, rent, subscriptions, fees, loans, travel,
campaigns, account takeover) are added as small chunks. No loop runs per event.
"""

from __future__ import annotations

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import (
    APP, ATO_COUNTRY, BRAND_CAT, COMM, CUR_FX, HOME_CURRENCY, MERCHANT_ONLINE, SP,
    TRADE, TRAVEL_COUNTRY, TRAVEL_CUR, TXN, make_chunk,
)
from pragmatiq.data.synth.traits import DOW_WEIGHT, HOUR_CDF, User, pick
from pragmatiq.data.synth.world import US_PER_DAY, World

_MAX_BRANDS = int(C.BRAND_COUNT.max())
# Zipf popularity of brands within each category, padded to the largest category.
_ZIPF = np.ones((len(C.CATEGORIES), _MAX_BRANDS))
for _c, _n in enumerate(C.BRAND_COUNT):
    _p = 1.0 / np.arange(1, _n + 1) ** 1.1
    _ZIPF[_c, :_n] = np.cumsum(_p) / _p.sum()
_SEASON = np.array([0.95, 0.9, 0.97, 1.0, 1.0, 1.02, 1.05, 1.05, 1.0, 1.0, 1.05, 1.2])
_US_PER_S = 1_000_000
_MARKETING = np.array([C.TPL[t] for t in ("cashback_offer_v2", "premium_upsell",
                                          "savings_boost", "trading_promo", "feature_news",
                                          "security_alert", "payment_reminder")])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ts(w: World, day, secs) -> np.ndarray:
    """Microsecond timestamps from day indices and seconds within the day."""
    return w.start_us + np.asarray(day, np.int64) * US_PER_DAY + (
        np.asarray(secs) * _US_PER_S
    ).astype(np.int64)


def _cents(eur, cur) -> np.ndarray:
    return np.maximum(np.round(np.asarray(eur) / CUR_FX[cur] * 100), 1).astype(np.int64)


class Timeline:
    """Day-level context shared by the generators of one user."""

    def __init__(self, user: User, w: World, rng: np.random.Generator):
        D = w.n_days
        self.days = np.arange(D)
        active = (self.days >= user.first_day) & (self.days < user.end_day)
        self.eng = user.engagement(self.days)
        self.stress = user.stress_at(self.days)
        self.weight = (DOW_WEIGHT[w.day_dow] * _SEASON[(w.day_month + self.month0(w)) % 12]
                       * self.eng * active)
        # Travel: a few trips a year, longer and more frequent with income.
        self.trip = np.full(D, -1, dtype=np.int16)
        span = max(user.end_day - user.first_day, 1)
        n_trips = rng.poisson(1.3 * np.exp(0.4 * user.income) * span / 365)
        starts = user.first_day + (rng.random(n_trips) * span).astype(int)
        lengths = rng.integers(3, 11, n_trips)
        dests = rng.integers(0, len(C.TRAVEL), n_trips)
        for s, ln, d in zip(starts, lengths, dests):
            if C.TRAVEL[d] != C.COUNTRIES[user.country]:
                self.trip[s:s + ln] = d

    @staticmethod
    def month0(w: World) -> int:
        return int(str(np.datetime64(w.cfg.start, "M"))[5:7]) - 1


def everyday(user: User, w: World, tl: Timeline, rng: np.random.Generator):
    """The bulk stream: card payments, app sessions, trades and marketing messages."""
    lam = (w.activity_scale * C.PERSONA_ACTIVITY[user.persona]
           * np.exp(0.25 * user.tech + 0.15 * user.spend)
           * np.exp(w.cfg.activity_sigma * rng.standard_normal()
                    - 0.5 * w.cfg.activity_sigma**2))
    cum = np.cumsum(tl.weight)
    total = cum[-1]
    n = int(rng.poisson(lam * total)) if total > 0 else 0
    if n == 0:
        return [], np.zeros(0)
    U = rng.random((8, n))
    day = np.sort(np.minimum(np.searchsorted(cum, U[0] * total, side="right"), w.n_days - 1))
    stress = tl.stress[day]
    # Hours: a night block (0-4h) whose share rises with financial stress, else the day curve.
    p_night = 0.025 + 0.14 * _sigmoid(2.2 * (stress - 1.0)) + 0.02 * (user.persona == 0)
    hour = np.where(U[1] < p_night, (U[2] * 5).astype(int), pick(HOUR_CDF, U[2]))
    secs = hour * 3600 + U[3] * 3600
    ts = _ts(w, day, secs)
    order = np.argsort(ts, kind="stable")
    day, ts, stress = day[order], ts[order], stress[order]

    # Sources: app use fades faster than spending when engagement drops.
    eng = tl.eng[day]
    p_app = np.clip(0.30 + 0.07 * user.tech, 0.12, 0.5) * (0.3 + 0.7 * eng)
    p_trade = np.where(day >= user.trading_day, 0.03 + 0.08 * _sigmoid(2 * user.risk), 0.0)
    p_comm = 0.045
    u = U[4]
    src = np.where(u < p_app, APP, np.where(u < p_app + p_trade, TRADE,
                                            np.where(u < p_app + p_trade + p_comm, COMM, TXN)))
    chunks = []
    for s, fn in ((TXN, _txn), (APP, _app), (TRADE, _trade), (COMM, _comm)):
        m = src == s
        if m.any():
            chunks.append(fn(user, w, tl, rng, day[m], ts[m], stress[m]))
    return chunks, U[5]


def _txn(user, w, tl, rng, day, ts, stress):
    n = len(day)
    U = rng.random((9, n))
    # Category: the user's own mix around the book's mix; gambling rises with stress and risk.
    mix = w.category_share * rng.gamma(4.0, 0.25, len(C.CATEGORIES))
    g = C.CAT_INDEX["gambling"]
    base_g = mix[g]
    mix[g] = 0.0
    cdf = np.cumsum(mix) / mix.sum()
    cat = pick(cdf, U[0])
    p_g = np.clip(base_g / w.category_share.sum() * np.exp(1.1 * stress + 0.6 * user.risk - 1.2),
                  0, 0.3)
    cat = np.where(U[1] < p_g, g, cat)
    # Brand: Zipf rank within the category, shifted by a per-user favourite.
    rank = (U[2][:, None] > _ZIPF[cat]).sum(axis=1)
    pref = rng.integers(0, _MAX_BRANDS, len(C.CATEGORIES))
    brand = C.BRAND_START[cat] + (rank + pref[cat]) % C.BRAND_COUNT[cat]
    trip = tl.trip[day]
    abroad = trip >= 0
    home_code = user.index * 104_729 + 17
    k = np.where(U[3] < 0.7, 0, np.where(U[3] < 0.9, 1, 2)) + 3 * abroad
    store = np.where(MERCHANT_ONLINE[brand], 0, 1000 + (brand * 7919 + home_code + k * 3571) % 9000)
    # Transaction type.
    t = U[4]
    ttype = np.where(cat == C.CASH, C.TXN["atm_withdrawal"], C.TXN["card_payment"])
    ttype = np.where(t < 0.05, C.TXN["p2p_out"], np.where(
        t < 0.075, C.TXN["transfer_out"], np.where(
            t < 0.10, C.TXN["top_up"], np.where(t < 0.112, C.TXN["refund"], ttype))))
    ttype = np.where(abroad & (U[5] < 0.04), C.TXN["fx_exchange"], ttype)
    merchant = brand.copy()
    merchant[ttype == C.TXN["p2p_out"]] = SP["p2p"]
    merchant[ttype == C.TXN["transfer_out"]] = SP["transfer_out"]
    merchant[ttype == C.TXN["top_up"]] = SP["top_up"]
    merchant[ttype == C.TXN["fx_exchange"]] = SP["fx"]
    store[merchant >= len(C.BRANDS)] = 0
    # Amounts (EUR first): ticket by category, scaled by income and spend propensity.
    sig = C.CAT_SIGMA[cat]
    eur = w.ticket[cat] * np.exp(0.25 * user.income + 0.15 * user.spend) * np.exp(
        sig * rng.standard_normal(n) - 0.5 * sig**2)
    scale = np.exp(0.3 * user.income + 0.5 * rng.standard_normal(n))
    eur = np.where(ttype == C.TXN["p2p_out"], 35 * scale, eur)
    eur = np.where(ttype == C.TXN["transfer_out"], 220 * scale, eur)
    eur = np.where(ttype == C.TXN["top_up"], 80 * scale, eur)
    eur = np.where(ttype == C.TXN["refund"], 0.6 * eur, eur)
    eur = np.where(ttype == C.TXN["fx_exchange"], 150 * scale, eur)
    cur = np.where(abroad, TRAVEL_CUR[np.maximum(trip, 0)], HOME_CURRENCY[user.country])
    country = np.where(abroad, TRAVEL_COUNTRY[np.maximum(trip, 0)], user.country)
    # Channel.
    wallet = C.CH["apple_pay"] if user.os[0] < 3 else C.CH["google_pay"]
    p_wallet = 0.25 * _sigmoid(1.5 * user.tech) * 2
    ch = np.where(U[6] < p_wallet, wallet, np.where(U[6] < p_wallet + 0.15, C.CH["chip_pin"],
                                                     C.CH["contactless"]))
    ch = np.where(MERCHANT_ONLINE[merchant], C.CH["online"], ch)
    ch = np.where(ttype == C.TXN["atm_withdrawal"], C.CH["atm"], ch)
    ch = np.where(merchant >= len(C.BRANDS), C.CH["bank_transfer"], ch)
    # P2P counterparties: a handful of friends, Zipf-used.
    friends = rng.integers(0, w.cfg.n_users, 6)
    friends = np.where(friends == user.index, (friends + 1) % w.cfg.n_users, friends)
    fr = friends[np.minimum((U[7] ** 2 * 6).astype(int), 5)]
    cp = np.where(ttype == C.TXN["p2p_out"], fr, -1)
    if w.cfg.n_users < 2:
        cp[:] = -1
        ttype = np.where(ttype == C.TXN["p2p_out"], C.TXN["transfer_out"], ttype)
    return make_chunk(TXN, ts, c0=ttype, c1=merchant, c2=store, c3=cur, c4=ch, c5=country,
                      amt=_cents(eur, cur), amt2=cp)


def _app(user, w, tl, rng, day, ts, stress):
    n = len(day)
    U = rng.random((5, n))
    wts = C.SCREEN_WEIGHTS * rng.gamma(5.0, 0.2, len(C.SCREENS))
    if user.trading_day == np.inf:
        wts[C.SCREENS.index("trading")] = 0
    cdf = np.cumsum(wts) / wts.sum()
    screen = pick(cdf, U[0])
    # Stressed users look at loans and the balance more often.
    loans = U[1] < 0.04 * np.exp(0.9 * stress - 0.9)
    screen = np.where(loans, C.SCREENS.index("loans"), screen)
    action = pick(np.cumsum([0.42, 0.24, 0.12, 0.11, 0.06, 0.03, 0.02]), U[2])
    device = np.where(U[3] < 0.8, 0, (U[3] * 7).astype(int) % user.n_devices)
    lag = int(rng.integers(0, 3))
    version = np.clip(w.day_month[day] // 3 - lag + 1, 0, len(C.APP_VERSIONS) - 1)
    trip = tl.trip[day]
    geo = np.where(trip >= 0, TRAVEL_COUNTRY[np.maximum(trip, 0)], user.country)
    return make_chunk(APP, ts, c0=screen, c1=action, c2=device, c3=user.os[device], c4=version,
                      c5=geo)


def _trade(user, w, tl, rng, day, ts, stress):
    n = len(day)
    U = rng.random((4, n))
    fav = rng.choice(len(C.INSTRUMENTS), size=3, replace=False)
    inst = fav[np.minimum((U[0] ** 1.5 * 3).astype(int), 2)]
    side = (U[1] < 0.4).astype(int)
    otype = pick(np.cumsum([0.6, 0.25, 0.05, 0.1]), U[2])
    price = w.prices[day, inst]
    notional = 60 * np.exp(0.5 * user.income + 0.4 * user.risk + 0.6 * rng.standard_normal(n))
    qty = np.where(C.CRYPTO[inst], np.maximum(np.round(notional / price * 1e4), 1),
                   np.maximum(np.round(notional / price), 1) * 1e4)
    return make_chunk(TRADE, ts, c0=inst, c1=side, c2=otype, amt=qty.astype(np.int64),
                      amt2=np.round(price * 100).astype(np.int64))


def _comm(user, w, tl, rng, day, ts, stress):
    n = len(day)
    U = rng.random((4, n))
    tpl = _MARKETING[(U[0] * len(_MARKETING)).astype(int)]
    tpl = np.where((stress > 1.0) & (U[1] < 0.3), C.TPL["payment_reminder"], tpl)
    # Fading users open less and unsubscribe more.
    eng = tl.eng[day]
    p_unsub = 0.01 + 0.12 * (1 - eng)
    p_open = 0.2 * eng * (0.7 + 0.3 * _sigmoid(user.tech))
    ev = np.where(U[2] < p_unsub, 4, np.where(U[2] < p_unsub + p_open, 2, np.where(
        U[2] < p_unsub + p_open + 0.07 * eng, 3, np.where(U[2] < 0.6, 0, 1))))
    ch = pick(np.cumsum([0.5, 0.3, 0.05, 0.15]), U[3])
    return make_chunk(COMM, ts, c0=ev, c1=tpl, c2=ch, c3=w.day_month[day])


# ---------------------------------------------------------------- structured series
def salary_and_bills(user: User, w: World, tl: Timeline, rng: np.random.Generator):
    """Salary (monthly, or weekly payouts for gig workers), rent/mortgage, utilities,
    subscriptions (the recurring series), overdraft fees and payday loans."""
    chunks, series = [], []
    M = w.cfg.n_months
    ms = w.month_start
    cur = HOME_CURRENCY[user.country]
    act = lambda d: (d >= user.first_day) & (d < user.end_day)  # noqa: E731
    U = rng.random((8, M))
    # Salary.
    if user.persona == 5:  # gig worker: weekly payouts of varying size
        days = np.arange(user.first_day + int(U[0, 0] * 7), w.n_days, 7)
        pay = user.income_eur / 4.3 * np.exp(0.35 * rng.standard_normal(len(days)))
    else:
        days = ms[:M] + int(22 + U[0, 1] * 6)
        pay = user.income_eur * (1 + 0.02 * rng.standard_normal(M))
    ok = act(days) & (days < w.n_days)
    days, pay = days[ok], pay[ok]
    u_miss = rng.random(len(days))
    shocked = days >= user.shock_day
    # Income shock: salaries go missing or shrink (the planted stress trace).
    keep = ~(shocked & (u_miss < 0.4))
    pay = np.where(shocked, pay * (0.4 + 0.3 * rng.random(len(days))), pay)
    days, pay = days[keep], pay[keep]
    if len(days):
        ts = _ts(w, days, 6 * 3600 + rng.random(len(days)) * 3 * 3600)
        chunks.append(make_chunk(TXN, ts, c0=C.TXN["salary"], c1=SP["salary"], c3=cur,
                                 c4=C.CH["bank_transfer"], c5=user.country,
                                 amt=_cents(pay, cur)))
    # Rent or mortgage (direct debit on a fixed day).
    housing = user.attributes["housing"]
    if housing in ("renting", "mortgage", "social_housing"):
        d = ms[:M] + int(U[1, 0] * 5)
        d = d[act(d)]
        if len(d):
            amount = user.income_eur * (0.25 + 0.15 * U[1, 1])
            ts = _ts(w, d, 4 * 3600 + rng.random(len(d)) * 3600)
            chunks.append(make_chunk(TXN, ts, c0=C.TXN["direct_debit"], c1=SP["rent"],
                                     c3=cur, c4=C.CH["bank_transfer"], c5=user.country,
                                     amt=_cents(np.full(len(d), amount), cur)))
            series.append((ts, C.SPECIAL_MERCHANTS["rent"][0], 1))
    # Subscriptions and a utility bill: fixed day, (almost) fixed amount -> recurring label 1.
    n_subs = min(rng.poisson(1.3 * np.exp(0.3 * user.spend + 0.3 * user.tech)), 4)
    subs = C.BRAND_START[C.SUBSCRIPTIONS] + rng.choice(
        C.BRAND_COUNT[C.SUBSCRIPTIONS], n_subs, replace=False)
    util = C.BRAND_START[C.CAT_INDEX["utilities"]] + rng.integers(
        0, C.BRAND_COUNT[C.CAT_INDEX["utilities"]])
    for j, b in enumerate(list(subs) + [util]):
        first = max(user.first_day, int(rng.integers(0, w.n_days // 2)) if j < n_subs else 0)
        dom = int(rng.integers(1, 28))
        d = ms[:M] + dom - 1
        d = d[act(d) & (d >= first)]
        if not len(d):
            continue
        base = w.ticket[BRAND_CAT[b]] * np.exp(0.2 * rng.standard_normal())
        noise = 0.15 if j == n_subs else 0.0
        eur = base * np.exp(noise * rng.standard_normal(len(d)))
        ts = _ts(w, d, 2 * 3600 + rng.random(len(d)) * 4 * 3600)
        ttype = C.TXN["direct_debit"] if j == n_subs else C.TXN["card_payment"]
        chunks.append(make_chunk(TXN, ts, c0=ttype, c1=b, c3=cur, c4=C.CH["online"],
                                 c5=user.country, amt=_cents(eur, cur)))
        series.append((ts, C.BRANDS[b], 1))
    # Overdraft fees: monthly count rises steeply with stress.
    mid = np.minimum(ms[:M] + 14, w.n_days - 1)
    rate = 1.6 * _sigmoid(2.5 * (tl.stress[mid] - 1.0))
    n_fee = rng.poisson(rate)
    fee_days = np.repeat(ms[:M], n_fee) + (rng.random(n_fee.sum()) * 28).astype(int)
    fee_days = fee_days[act(fee_days)]
    if len(fee_days):
        ts = _ts(w, fee_days, 1 * 3600 + rng.random(len(fee_days)) * 3600)
        eur = 8 + 12 * rng.random(len(fee_days))
        chunks.append(make_chunk(TXN, ts, c0=C.TXN["fee"], c1=SP["overdraft_fee"],
                                 c3=cur, c4=C.CH["bank_transfer"], c5=user.country,
                                 amt=_cents(eur, cur)))
    # Payday loans under heavy stress, repaid a month later.
    p_loan = 0.35 * _sigmoid(3 * (tl.stress[mid] - 1.6))
    loan_m = np.flatnonzero(U[2] < p_loan)
    ld = ms[loan_m] + (U[3, loan_m] * 25).astype(int)
    ld = ld[act(ld)]
    if len(ld):
        amt = user.income_eur * (0.2 + 0.2 * rng.random(len(ld)))
        ts = _ts(w, ld, 10 * 3600 + rng.random(len(ld)) * 8 * 3600)
        chunks.append(make_chunk(TXN, ts, c0=C.TXN["transfer_in"], c1=SP["payday"],
                                 c3=cur, c4=C.CH["bank_transfer"], c5=user.country,
                                 amt=_cents(amt, cur)))
        rd = ld + 30
        ok = act(rd) & (rd < w.n_days)
        if ok.any():
            ts = _ts(w, rd[ok], 5 * 3600 + rng.random(ok.sum()) * 3600)
            chunks.append(make_chunk(TXN, ts, c0=C.TXN["direct_debit"], c1=SP["loan"],
                                     c3=cur, c4=C.CH["bank_transfer"], c5=user.country,
                                     amt=_cents(amt[ok] * 1.25, cur)))
    return chunks, series


def campaigns(user: User, w: World, rng: np.random.Generator):
    """Uplift campaigns: randomized treatment, both potential outcomes, and the events the
    realized one leaves (sent/delivered/opened/clicked, converted)."""
    chunks, rows = [], []
    U = rng.random((len(C.UPLIFT_CAMPAIGNS), 6))
    for j, (tpl_name, month) in enumerate(C.UPLIFT_CAMPAIGNS):
        day = int(w.month_start[month]) + 3
        if not (user.first_day <= day < user.end_day):
            continue
        tpl = C.TPL[tpl_name]
        treated = int(U[j, 0] < 0.5)
        p0 = _sigmoid(-2.6 + 0.4 * user.spend + 0.3 * user.income)
        # Responsive users: tech-savvy, engaged, not stressed; older users respond less.
        tau = 0.30 * _sigmoid(1.5 * user.tech - 0.8 * user.stress0 + 0.5 * (j == 2) * user.risk)
        y0, y1 = int(U[j, 1] < p0), int(U[j, 1] < p0 + tau)
        t0 = _ts(w, day, 10 * 3600 + U[j, 2] * 6 * 3600)
        rows.append((int(t0), month, tpl, treated, y0, y1))
        if not treated:
            continue
        y = y1
        evs = [0, 1] + ([2] if (y or U[j, 3] < 0.25) else []) + ([3] if y else [])
        ts = t0 + np.arange(len(evs)) * 90 * _US_PER_S
        if y:
            evs.append(5)
            ts = np.append(ts, t0 + int((0.5 + U[j, 4] * 48) * 3600 * _US_PER_S))
        chunks.append(make_chunk(COMM, ts, c0=np.array(evs), c1=tpl, c2=0, c3=month))
    return chunks, rows


def account_takeover(user: User, w: World, rng: np.random.Generator, mule_target: int):
    """Fraud: a login from a new device abroad, a password reset, a test payment, then a
    quick drain to a mule; the victim freezes the card the next day."""
    span = user.end_day - user.first_day - 40
    if span <= 0:
        return [], None
    U = rng.random(12)
    day = user.first_day + 30 + int(U[0] * span)
    t0 = _ts(w, day, (1 + U[1] * 20) * 3600)
    ato = int(ATO_COUNTRY[int(U[2] * len(ATO_COUNTRY))])
    os = int(U[3] * len(C.OS_NAMES))
    m = 60 * _US_PER_S
    app = make_chunk(APP, np.array([t0, t0 + 2 * m, t0 + 4 * m]),
                     c0=np.array([C.SCREENS.index("security"), C.SCREENS.index("security"),
                                  C.SCREENS.index("payments")]),
                     c1=np.array([C.ACT["new_device_login"], C.ACT["password_reset"],
                                  C.ACT["transfer_start"]]),
                     c2=4, c3=os, c4=len(C.APP_VERSIONS) - 1, c5=ato)
    online = C.BRAND_START[C.CAT_INDEX["online_retail"]] + int(U[4] * 5)
    cur = int(HOME_CURRENCY[user.country])
    n_drain = 2 + int(U[5] * 4)
    drain_ts = t0 + (20 + np.sort(rng.random(n_drain)) * 100).astype(np.int64) * m
    drain_eur = (300 + 1500 * rng.random(n_drain)) * np.exp(0.3 * user.income)
    test = make_chunk(TXN, np.array([t0 + 10 * m]), c0=C.TXN["card_verification"],
                      c1=online, c3=cur, c4=C.CH["online"], c5=ato,
                      amt=_cents(np.array([0.5 + 1.5 * U[6]]), cur), fraud=1)
    drain = make_chunk(TXN, drain_ts, c0=C.TXN["p2p_out"], c1=SP["p2p"], c3=cur,
                       c4=C.CH["bank_transfer"], c5=ato, amt=_cents(drain_eur, cur),
                       amt2=mule_target, fraud=1)
    next_day = _ts(w, min(day + 1, w.n_days - 1), np.array([9, 9.2]) * 3600 + U[7] * 3600)
    after = make_chunk(APP, next_day, c0=np.array([C.SCREENS.index("cards"),
                                                   C.SCREENS.index("support")]),
                       c1=np.array([C.ACT["card_freeze"], C.ACT["chat_start"]]), c2=0,
                       c3=user.os[0], c4=min(w.day_month[day] // 3 + 1, len(C.APP_VERSIONS) - 1),
                       c5=user.country)
    if next_day[0] >= w.start_us + user.end_day * US_PER_DAY:
        return [app, test, drain], day
    return [app, test, drain, after], day
