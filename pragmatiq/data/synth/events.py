"""A user's own draws: the day-level timeline, the everyday stream's randomness, the
per-user parameters of that stream, and the small structured episodes (uplift campaigns,
account takeover). Vectorized with NumPy; no loop runs per event.

The everyday stream is one draw per user: the number of events from the daily intensity
(weekday rhythm, seasonality, engagement, heavy-tailed activity), then all days by inverse
CDF and a matrix of per-event uniforms. `pool.everyday_fields` turns a block of these into
hours, sources and field codes; `bills.bills_block` adds the monthly money flows.
"""

from __future__ import annotations

import math

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import (
    APP, ATO_COUNTRY, COMM, CUR_FX, HOME_CURRENCY, SP, TXN, make_chunk,
)
from pragmatiq.data.synth.traits import User
from pragmatiq.data.synth.world import US_PER_DAY, World

# Brand popularity: Zipf over the brands trading in a country (by list order), national
# chains 2.5x at home; one row per home country plus a last row of global brands for
# payments abroad. (countries + 1, categories, B)
_RANK = np.maximum(np.cumsum(C.BRAND_AVAILABLE, axis=2) - 1, 0)
_LOCAL = C.BRAND_AVAILABLE & ~C.BRAND_AVAILABLE[-1:]
BRAND_PMF = np.where(C.BRAND_AVAILABLE, (1 + 1.5 * _LOCAL) / (_RANK + 1.0) ** 1.1, 0.0)
BRAND_CDF = np.cumsum(BRAND_PMF, axis=2) / BRAND_PMF.sum(axis=2, keepdims=True)
GLOBAL_BRAND_CDF = BRAND_CDF[-1]  # (categories, B)
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
        days = w.days
        self.eng = user.engagement(days) if user.onset_day < D else w.ones
        self.stress = user.stress_at(days) if user.shock_day < D else np.full(D, user.stress0)
        lo, hi = max(user.first_day, 0), min(user.end_day, D)
        self.weight = np.zeros(D)
        self.weight[lo:hi] = w.rhythm[lo:hi] * self.eng[lo:hi]
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


# Rows of the per-event uniform matrix drawn for the everyday stream.
U_NIGHT, U_HOUR, U_SEC, U_SRC, U_KEEP, U_F = 0, 1, 2, 3, 4, 5
N_UNIFORM = U_F + 8


def everyday_draws(user: User, w: World, tl: Timeline, rng: np.random.Generator):
    """The bulk stream's randomness for one user: the sorted event days (from the daily
    intensity: weekday rhythm, seasonality, engagement, heavy-tailed activity) and per-event
    uniforms and normals. `pool.everyday_fields` turns a block of these into events."""
    lam = (w.activity_scale * C.PERSONA_ACTIVITY[user.persona]
           * np.exp(0.25 * user.tech + 0.15 * user.spend)
           * np.exp(w.cfg.activity_sigma * rng.standard_normal()
                    - 0.5 * w.cfg.activity_sigma**2))
    cum = np.cumsum(tl.weight)
    total = cum[-1]
    n = int(rng.poisson(lam * total)) if total > 0 else 0
    U = rng.random((N_UNIFORM + 1, n), dtype=np.float32)
    day = np.sort(np.minimum(np.searchsorted(cum, U[-1] * total, side="right"), w.n_days - 1))
    N = rng.standard_normal((2, n), dtype=np.float32)
    return day, U[:N_UNIFORM], N


def _brand_cdf(country: int, rng: np.random.Generator) -> np.ndarray:
    """The user's brand choice per category: the country's Zipf popularity with a favourite
    (drawn from that popularity) five times as likely. (categories, B) CDF rows."""
    cdf = BRAND_CDF[country]
    fav = (rng.random(len(C.CATEGORIES))[:, None] > cdf).sum(axis=1)
    pmf = BRAND_PMF[country] * (1 + 4 * (np.arange(C.MAX_BRANDS) == fav[:, None]))
    return np.cumsum(pmf, axis=1) / pmf.sum(axis=1, keepdims=True)


def user_params(user: User, w: World, rng: np.random.Generator) -> dict:
    """Per-user parameters of the everyday stream (category mix, favourite brands, friends,
    screens, instruments), drawn from the user's generator."""
    mix = w.category_share * rng.gamma(4.0, 0.25, len(C.CATEGORIES))
    g = C.GAMBLING
    base_g = mix[g] / w.category_share.sum()
    mix[g] = 0.0
    friends = rng.integers(0, w.cfg.n_users, 6)
    friends = np.where(friends == user.index, (friends + 1) % w.cfg.n_users, friends)
    wts = C.SCREEN_WEIGHTS * rng.gamma(5.0, 0.2, len(C.SCREENS))
    if user.trading_day == np.inf:
        wts[C.SCREENS.index("trading")] = 0
    os5 = np.concatenate([user.os, np.repeat(user.os[:1], 5 - len(user.os))])
    return {
        "index": user.index, "persona": user.persona, "income": user.income, "spend": user.spend,
        "tech": user.tech, "risk": user.risk, "churn": user.churn, "country": user.country,
        "trading_day": user.trading_day,
        "mix_cdf": np.cumsum(mix) / mix.sum(), "base_g": base_g,
        "brand_cdf": _brand_cdf(user.country, rng),
        "friends": friends, "screen_cdf": np.cumsum(wts) / wts.sum(),
        "n_devices": user.n_devices, "os": os5, "lag": int(rng.integers(0, 3)),
        "fav": np.argpartition(rng.random(len(C.INSTRUMENTS)), 3)[:3],
    }


# ---------------------------------------------------------------- structured series
def campaigns(user: User, w: World, rng: np.random.Generator):
    """Uplift campaigns: randomized treatment, both potential outcomes, and the events the
    realized one leaves (sent/delivered/opened/clicked, converted). One chunk."""
    rows, ts, evs, tpls, months = [], [], [], [], []
    U = rng.random((len(C.UPLIFT_CAMPAIGNS), 6))
    p0 = 1 / (1 + math.exp(2.6 - 0.4 * user.spend - 0.3 * user.income))
    for j, (tpl_name, where) in enumerate(C.UPLIFT_CAMPAIGNS):
        month = int(where * w.cfg.n_months)
        day = int(w.month_start[month]) + 3
        if not (user.first_day <= day < user.end_day):
            continue
        tpl = C.TPL[tpl_name]
        treated = int(U[j, 0] < 0.5)
        # Responsive users: tech-savvy, not stressed; risk-takers for the trading promo.
        tau = 0.30 / (1 + math.exp(-(1.5 * user.tech - 0.8 * user.stress0
                                      + 0.5 * (j == 2) * user.risk)))
        y0, y1 = int(U[j, 1] < p0), int(U[j, 1] < p0 + tau)
        t0 = w.start_us + day * US_PER_DAY + int((10 * 3600 + U[j, 2] * 6 * 3600) * _US_PER_S)
        rows.append((t0, month, tpl, treated, y0, y1))
        if not treated:
            continue
        e = [0, 1] + ([2] if (y1 or U[j, 3] < 0.25) else []) + ([3] if y1 else [])
        t = [t0 + k * 90 * _US_PER_S for k in range(len(e))]
        if y1:
            e.append(5)
            t.append(t0 + int((0.5 + U[j, 4] * 48) * 3600 * _US_PER_S))
        ts += t
        evs += e
        tpls += [tpl] * len(e)
        months += [month] * len(e)
    if not ts:
        return [], rows
    return [make_chunk(COMM, np.array(ts, np.int64), c0=evs, c1=tpls, c2=0, c3=months)], rows


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
