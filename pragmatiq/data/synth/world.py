"""`World`: everything shared by all users of one book, resolved once from a `SynthConfig`.

The time grid (days of the window, their weekday and month), the label cut points, global
instrument price paths, the money-mule ring plan and the outcome intercepts that make the
label prevalences land on the configured rates. It is small, picklable and passed to every
worker; it depends only on the config, never on the worker count or block boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.config import SynthConfig

US_PER_DAY = 86_400_000_000
DEFAULT_HORIZON_MONTHS = 12
CHURN_HORIZON_MONTHS = 6

# Fixed effect sizes of the planted causes (logit scale).
DEFAULT_STRESS_SLOPE = 1.6  # per unit of financial stress at eval
CHURN_HAZARD_SLOPE = 0.6  # per unit of the churn-hazard trait
CHURN_FADED_SLOPE = 4.0  # when disengagement began before eval
SHOCK_STRESS = 1.4  # stress added by an income shock (job loss, hours cut)
SHOCK_RATE = 0.10  # share of users with an income shock somewhere in the window
ONSET_HAZARD = 0.016  # monthly hazard of disengagement onset at churn trait 0
STRUCTURED_PER_MONTH = 4.4  # salary, rent, subscriptions, fees, campaign messages
# Relative activity by weekday (Mon..Sun) and by calendar month (Jan..Dec).
DOW_WEIGHT = np.array([0.95, 0.95, 1.0, 1.0, 1.15, 1.2, 0.8])
SEASON = np.array([0.95, 0.9, 0.97, 1.0, 1.0, 1.02, 1.05, 1.05, 1.0, 1.0, 1.05, 1.2])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _solve_intercept(score: np.ndarray, target: float) -> float:
    """Intercept a with mean(sigmoid(a + score)) == target (bisection)."""
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + score).mean() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass
class World:
    cfg: SynthConfig
    seed: int
    outcome_seed: int
    start_us: int
    n_days: int
    day_dow: np.ndarray  # (D,) 0 = Monday
    day_month: np.ndarray  # (D,) month index in the window
    day_dom: np.ndarray  # (D,) day of month, 1-based
    month_start: np.ndarray  # (n_months + 1,) first day index of each month
    eval_default: int  # day index of eval_ts for default_12m
    eval_churn: int  # day index of eval_ts for churn_6m and ltv_positive
    persona_cdf: np.ndarray
    country_cdf: np.ndarray
    category_share: np.ndarray
    ticket: np.ndarray  # mean ticket per category (EUR), already divided by the trait factor
    activity_scale: float  # events per user-day at activity 1
    default_intercept: float
    churn_intercept: float
    prices: np.ndarray  # (D, n_instruments) daily close
    rhythm: np.ndarray  # (D,) weekday x season activity weight
    days: np.ndarray  # (D,) 0..D-1
    ones: np.ndarray  # (D,) all 1.0
    ring_of_user: dict  # user index -> (ring id, position in ring)
    rings: list  # list of member index arrays

    @property
    def end_us(self) -> int:
        return self.start_us + self.n_days * US_PER_DAY

    def day_us(self, day) -> np.ndarray:
        return self.start_us + np.asarray(day, dtype=np.int64) * US_PER_DAY


def _pilot_traits(cfg: SynthConfig, n: int = 40_000):
    """Trait draws from the prior (fixed pilot seed), for solving intercepts and scales."""
    rng = np.random.default_rng([9_999, 1])
    shares = np.array([cfg.persona_shares[p] for p in C.PERSONAS])
    persona = rng.choice(len(C.PERSONAS), size=n, p=shares)
    z = C.PERSONA_TRAITS[persona] + rng.standard_normal((n, len(C.TRAITS)))
    return persona, z


def build_world(cfg: SynthConfig) -> World:
    start = np.datetime64(cfg.start, "D")
    months = np.arange(cfg.n_months + 1) + start.astype("datetime64[M]")
    month_start_dates = months.astype("datetime64[D]")
    if month_start_dates[0] != start:
        raise ValueError(f"synth config `start` must be the first day of a month, got {cfg.start}")
    n_days = int((month_start_dates[-1] - start).astype(int))
    days = start + np.arange(n_days)
    day_dow = ((days.astype(np.int64) + 3) % 7).astype(np.int8)  # 1970-01-01 was a Thursday
    day_month = (days.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int16)
    day_dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int8) + 1
    month_start = (month_start_dates - start).astype(np.int64)
    eval_default = int(month_start[cfg.n_months - DEFAULT_HORIZON_MONTHS])
    eval_churn = int(month_start[cfg.n_months - CHURN_HORIZON_MONTHS])

    persona, z = _pilot_traits(cfg)
    # Per-user activity multiplier (events.everyday_draws): normalise so that the everyday
    # stream plus the monthly series (salary, bills, fees, campaigns: STRUCTURED_PER_MONTH)
    # average the configured events per active user-month.
    act = C.PERSONA_ACTIVITY[persona] * np.exp(0.25 * z[:, 3] + 0.15 * z[:, 1])
    everyday = max(cfg.events_per_user_month - STRUCTURED_PER_MONTH, 1.0)
    activity_scale = everyday / 30.44 / act.mean()
    # Ticket factor: amount = ticket * exp(0.25 income + 0.15 spend) * lognormal(mean 1).
    tfac = np.exp(0.25 * z[:, 0] + 0.15 * z[:, 1]).mean()
    ticket = np.array([cfg.mean_ticket[c] for c in C.CAT_NAMES]) / tfac

    # Outcome intercepts from a pilot book that mirrors traits.draw_user: tenure, income
    # shocks, disengagement onset and pre-eval churn decide who is eligible and how stressed
    # or faded they are at eval.
    rng = np.random.default_rng([9_999, 2])
    n = len(z)
    u = rng.random((5, n))
    first = np.where(u[0] < 0.55, 0, (u[1] * 365).astype(int))
    shock = np.where(u[2] < SHOCK_RATE, first + u[3] * (n_days - first), np.inf)
    onset = first + rng.exponential(30.44 / (ONSET_HAZARD * np.exp(0.7 * z[:, 5])))
    end = np.where(onset + 90 + u[4] * 110 < eval_churn, onset + 90 + u[4] * 110, n_days)
    ok = (first <= eval_default - 30) & (end > eval_default)
    stress = z[ok, 2] + SHOCK_STRESS * (shock[ok] <= eval_default)
    default_intercept = _solve_intercept(DEFAULT_STRESS_SLOPE * stress, cfg.default_rate)
    ok = (first <= eval_churn - 30) & (end > eval_churn)
    faded = onset[ok] < eval_churn
    churn_intercept = _solve_intercept(
        CHURN_HAZARD_SLOPE * z[ok, 5] + CHURN_FADED_SLOPE * faded, cfg.churn_rate
    )

    # Instrument prices: geometric random walks shared by the whole book.
    prng = np.random.default_rng([cfg.seed, 2**31 - 1, 1])
    steps = prng.standard_normal((n_days, len(C.INSTRUMENTS))) * C.INSTRUMENT_VOL
    prices = C.INSTRUMENT_PRICE * np.exp(np.cumsum(steps - 0.5 * C.INSTRUMENT_VOL**2, axis=0))

    # Mule rings: a plan over user indices, drawn from the seed alone.
    rrng = np.random.default_rng([cfg.seed, 2**31 - 1, 2])
    n_rings = int(round(cfg.n_users / 1000 * cfg.mule_rings_per_1000))
    if cfg.n_users < 50:
        n_rings = 0
    rings, ring_of_user = [], {}
    if n_rings:
        sizes = rrng.integers(5, 13, size=n_rings)
        members = rrng.choice(cfg.n_users, size=min(int(sizes.sum()), cfg.n_users),
                              replace=False)
        pos = 0
        for r, s in enumerate(sizes):
            m = np.sort(members[pos:pos + s])
            pos += s
            if len(m) < 3:
                break
            rings.append(m)
            for k, u in enumerate(m):
                ring_of_user[int(u)] = (r, k)

    seed = int(cfg.seed)
    return World(
        cfg=cfg, seed=seed,
        outcome_seed=seed if cfg.outcome_seed is None else int(cfg.outcome_seed),
        start_us=int(start.astype("datetime64[us]").astype(np.int64)),
        n_days=n_days, day_dow=day_dow, day_month=day_month, day_dom=day_dom,
        month_start=month_start, eval_default=eval_default, eval_churn=eval_churn,
        persona_cdf=np.cumsum([cfg.persona_shares[p] for p in C.PERSONAS]),
        country_cdf=np.cumsum([cfg.country_mix[c] for c in C.COUNTRIES]),
        category_share=np.array([cfg.category_mix[c] for c in C.CAT_NAMES]),
        ticket=ticket, activity_scale=activity_scale,
        default_intercept=default_intercept, churn_intercept=churn_intercept,
        prices=np.round(prices, 2), ring_of_user=ring_of_user, rings=rings,
        rhythm=DOW_WEIGHT[day_dow] * SEASON[(day_month + int(cfg.start[5:7]) - 1) % 12],
        days=np.arange(n_days), ones=np.ones(n_days),
    )
