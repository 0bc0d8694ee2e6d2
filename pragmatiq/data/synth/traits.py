"""Per-user latent traits, profile attributes and lifelong milestones.

Everything is drawn from the user's own generator (`np.random.default_rng([seed, user])`), so a
user is the same whatever block or worker produces it.
"""

from __future__ import annotations

import bisect

from dataclasses import dataclass, field

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.world import ONSET_HAZARD, SHOCK_RATE, SHOCK_STRESS, World

# Monthly net income in EUR at income trait 0, by home country (follows C.COUNTRIES).
COUNTRY_INCOME = np.array([2700, 2900, 2400, 2800, 1900, 1900, 1300, 1500, 1000, 1200, 2900,
                           3800], dtype=float)
# Hour-of-day profile outside the night block (hours 0-4 carry the night share).
HOUR_WEIGHT = np.array([0, 0, 0, 0, 0, 0.3, 0.8, 1.6, 2.2, 2.3, 2.4, 2.6, 3.4, 3.0, 2.6, 2.5,
                        2.8, 3.4, 3.9, 3.8, 3.3, 2.6, 1.7, 0.9])
HOUR_CDF = np.cumsum(HOUR_WEIGHT) / HOUR_WEIGHT.sum()


def pick(cdf: np.ndarray, u):
    """Inverse-CDF draw: index of the first cdf entry > u (clipped to the last index)."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def pick1(cdf, u: float) -> int:
    """`pick` for one scalar draw, without NumPy call overhead."""
    return min(bisect.bisect_right(cdf, u), len(cdf) - 1)


_AGE_CDF = [list(np.cumsum(r)) for r in C.PERSONA_AGE]
_OCC_CDF = [list(np.cumsum(r)) for r in C.PERSONA_OCCUPATION]
_MARITAL_OLD = list(np.cumsum([0.1, 0.55, 0.05, 0.1, 0.2]))
_MARITAL = list(np.cumsum([0.35, 0.4, 0.15, 0.09, 0.01]))
_HOUSING = {0: [0.55, 0.0, 0.0, 0.45, 0.0], 2: [0.2, 0.55, 0.2, 0.0, 0.05],
            3: [0.2, 0.55, 0.2, 0.0, 0.05], 4: [0.15, 0.1, 0.65, 0.0, 0.1]}
_HOUSING = {k: list(np.cumsum(v)) for k, v in _HOUSING.items()}
_HOUSING_OTHER = list(np.cumsum([0.55, 0.2, 0.05, 0.1, 0.1]))


_IRRATIONAL = (0.6180339887498949, 0.4142135623730951, 0.7320508075688772,
               0.2360679774997898)


def stratified(i: int, seed: int, k: int) -> float:
    """A uniform in [0, 1) from user index i: frac(i * a_k + seed * b): the k-th Weyl
    sequence, equidistributed over any run of users."""
    return ((i + 0.5) * _IRRATIONAL[k] + seed * 0.7548776662466927 + 0.1 * k) % 1.0


@dataclass
class User:
    """A user's latent state. Days are indices into the window (may be negative before it)."""

    index: int
    persona: int
    z: np.ndarray  # (6,) traits: income, spend, stress, tech, risk, churn
    country: int
    income_eur: float  # monthly net income
    first_day: int  # first day with history in the window
    open_day: int
    end_day: int  # natural end of activity (exclusive): churn before eval, else n_days
    onset_day: float  # disengagement onset (inf if never in the window)
    shock_day: float  # income shock (inf if none)
    trading_day: float  # trading enabled (inf if never)
    premium_day: float
    n_devices: int
    os: np.ndarray  # (n_devices,) index into C.OS_NAMES
    attributes: dict = field(default_factory=dict)
    milestones: list = field(default_factory=list)  # (key, day as float)

    @property
    def income(self):
        return self.z[0]

    @property
    def spend(self):
        return self.z[1]

    @property
    def stress0(self):
        return self.z[2]

    @property
    def tech(self):
        return self.z[3]

    @property
    def risk(self):
        return self.z[4]

    @property
    def churn(self):
        return self.z[5]

    def stress_at(self, day):
        return self.stress0 + SHOCK_STRESS * (np.asarray(day) >= self.shock_day)

    def engagement(self, day):
        """1 before disengagement onset, decaying towards 0.15 after it."""
        d = np.asarray(day, dtype=float) - self.onset_day
        return np.where(d < 0, 1.0, 0.15 + 0.85 * np.exp(-np.maximum(d, 0) / 60.0))


def draw_user(i: int, w: World, rng: np.random.Generator) -> User:
    u = rng.random(24)
    # Persona and home country use low-discrepancy sequences over the user index, so a
    # book of any size reproduces the configured shares almost exactly.
    persona = pick1(w.persona_cdf, stratified(i, w.seed, 0))
    z = C.PERSONA_TRAITS[persona] + rng.standard_normal(len(C.TRAITS))
    country = pick1(w.country_cdf, stratified(i, w.seed, 1))
    income_eur = float(COUNTRY_INCOME[country] * np.exp(0.45 * z[0]))
    if persona == 0:
        income_eur *= 0.45

    # Tenure: most users predate the window, the rest open during its first year.
    if u[2] < 0.55:
        open_day = -int(30 + u[3] * 2500)
    else:
        open_day = int(u[3] * 365)
    first_day = max(open_day, 0)

    # Disengagement onset (monthly hazard from the churn trait); churn before the churn eval
    # when the fade has run its course.
    h = ONSET_HAZARD * np.exp(0.7 * z[5])
    onset = first_day + rng.exponential(30.44 / h)
    end_day = w.n_days
    lead = 90 + u[4] * 110
    if onset + lead < w.eval_churn:
        end_day = int(onset + lead)
    shock = first_day + u[6] * (w.n_days - first_day) if u[5] < SHOCK_RATE else np.inf

    trading_day = np.inf
    if u[7] < 0.15 + 0.5 / (1 + np.exp(-(1.5 * z[4] + 0.5 * z[3] - 0.5))):
        trading_day = open_day + 30 + u[8] * 700
    premium_day = np.inf
    if u[9] < 1 / (1 + np.exp(-(1.5 * z[0] - 1.5))):
        premium_day = open_day + 10 + u[10] * 600
    n_devices = 1 + int(z[3] > 0.2) + int(z[3] > 1.3)
    os = np.where(rng.random(n_devices) < 0.5 + 0.1 * z[0], rng.integers(0, 3, n_devices),
                  rng.integers(3, 6, n_devices))

    user = User(index=i, persona=persona, z=z, country=country, income_eur=income_eur,
                first_day=first_day, open_day=open_day, end_day=end_day, onset_day=onset,
                shock_day=shock, trading_day=trading_day, premium_day=premium_day,
                n_devices=n_devices, os=os)
    user.attributes = _attributes(user, u)
    user.milestones = _milestones(user, u, w)
    return user


def _attributes(user: User, u: np.ndarray) -> dict[str, str]:
    p = user.persona
    age = pick1(_AGE_CDF[p], u[11])
    occ = pick1(_OCC_CDF[p], u[12])
    band = bisect.bisect_right([15e3, 30e3, 50e3, 80e3, 120e3], user.income_eur * 12)
    if user.premium_day <= 0 or user.z[0] > 1.5:  # known at the window start: no future info
        kyc = "premium"
    elif user.z[4] > 1.0 or user.country in (8, 11):
        kyc = "enhanced"
    else:
        kyc = "standard"
    if age == 0:
        marital = "single" if u[13] < 0.85 else "partnered"
    elif age >= 5:
        marital = C.MARITAL[pick1(_MARITAL_OLD, u[13])]
    else:
        marital = C.MARITAL[pick1(_MARITAL, u[13])]
    housing = C.HOUSING[pick1(_HOUSING.get(p, _HOUSING_OTHER), u[14])]
    return {
        "age_band": C.AGE_BANDS[age],
        "country": C.COUNTRIES[user.country],
        "occupation": C.OCCUPATIONS[occ],
        "income_band": C.INCOME_BANDS[band],
        "kyc_tier": kyc,
        "marital_status": marital,
        "housing": housing,
        "device_count": str(user.n_devices),
    }


def _milestones(user: User, u: np.ndarray, w: World) -> list[tuple[str, float]]:
    o = user.open_day
    out = [("account_opened", o + u[15] * 0.9), ("kyc_passed", o + 0.3 + u[16] * 3)]
    out.append(("card_activated", o + 2 + u[17] * 12))
    last = min(user.end_day, w.n_days) - 0.5
    for key, day in (("premium_upgrade", user.premium_day), ("trading_enabled", user.trading_day)):
        if day < last:
            out.append((key, float(day)))
    if u[18] < 0.25:
        out.append(("address_change", o + u[19] * (last - o)))
    return sorted(out, key=lambda kv: kv[1])
