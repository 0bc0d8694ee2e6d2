"""Monthly money flows of a whole block, vectorized over (user, month): salary (or weekly
gig payouts), rent/mortgage, subscriptions and a utility bill (the planted recurring series),
overdraft fees and payday loans.

Each user draws a fixed set of arrays from its own generator (`bill_draws`); `bills_block`
stacks them and computes every payment of the block with (B, M)-shaped NumPy operations.
"""

from __future__ import annotations

import numpy as np

from pragmatiq.data.synth import catalog as C
from pragmatiq.data.synth.codes import BRAND_CAT, HOME_CURRENCY, SP, TXN, make_chunk
from pragmatiq.data.synth.events import BRAND_CDF, _cents, _sigmoid, _ts
from pragmatiq.data.synth.traits import User
from pragmatiq.data.synth.world import World

N_SUBS = 4  # subscription slots; slot N_SUBS is the utility bill
MAX_FEES = 4  # overdraft fees per month at most
_RENTERS = frozenset({"renting", "mortgage", "social_housing"})


def bill_draws(user: User, w: World, stress: np.ndarray, rng: np.random.Generator) -> dict:
    """The user's randomness for `bills_block` (fixed shapes) and the scalars it needs."""
    M = w.cfg.n_months
    mid = np.minimum(w.month_start[:M] + 14, w.n_days - 1)
    s_mid = stress[mid]
    n_subs = min(int(rng.poisson(1.3 * np.exp(0.3 * user.spend + 0.3 * user.tech))), N_SUBS)
    ucat = C.CAT_INDEX["utilities"]
    brands = np.append(C.BRAND_START[C.SUBSCRIPTIONS] + np.argpartition(
        rng.random(C.BRAND_COUNT[C.SUBSCRIPTIONS]), N_SUBS)[:N_SUBS],
        C.BRAND_START[ucat] + min(int((rng.random() > BRAND_CDF[user.country, ucat]).sum()),
                                  C.MAX_BRANDS - 1))
    return {
        "U": rng.random((12, M)),
        # Users likely to leave keep their salary at another bank (a secondary account).
        "salaried": rng.random() < _sigmoid(2.0 - 1.2 * user.churn),
        "G": rng.random((3, w.n_days // 7 + 1)),  # weekly gig payouts: size, miss, time
        "S": rng.random((3, N_SUBS + 1)),  # per series: start, day of month, price level
        "SM": rng.random((2, N_SUBS + 1, M)),  # per payment: amount noise, time of day
        "F": rng.random((3, M, MAX_FEES)),  # fee day, time, amount
        "n_fee": np.minimum(rng.poisson(1.6 * _sigmoid(2.5 * (s_mid - 1.0))), MAX_FEES),
        "p_loan": 0.35 * _sigmoid(3 * (s_mid - 1.6)),
        "n_subs": n_subs, "brands": brands,
        "income": user.income_eur, "lo": user.first_day, "hi": min(user.end_day, w.n_days),
        "shock": user.shock_day, "gig": user.persona == 5, "country": user.country,
        "rent": user.attributes["housing"] in _RENTERS,
    }


def _stack(draws: list[dict]) -> dict:
    return {k: np.array([d[k] for d in draws]) for k in draws[0]}


def bills_block(draws: list[dict], w: World):
    """-> (event columns, user index per event, planted series (user, ts, code) arrays)."""
    D = _stack(draws)
    B, M = len(draws), w.cfg.n_months
    ms = w.month_start[:M][None, :]  # (1, M)
    lo, hi = D["lo"][:, None], D["hi"][:, None]
    inc = D["income"][:, None]
    U = D["U"].transpose(1, 0, 2)  # (12, B, M)
    parts = []  # (user, day, secs, txn type, merchant, channel, EUR), flattened by mask

    def add(ok, day, secs, ttype, merchant, eur, ch=C.CH["bank_transfer"]):
        shape = ok.shape
        user = np.broadcast_to(np.arange(B).reshape((B,) + (1,) * (len(shape) - 1)), shape)
        parts.append(tuple(np.broadcast_to(x, shape)[ok] for x in
                           (user, day, secs, ttype, merchant, ch, eur)))

    # Salary: monthly on a fixed pay day; an income shock makes salaries go missing or shrink.
    day = ms + (22 + U[0, :, :1] * 6).astype(int)
    shocked = day >= D["shock"][:, None]
    pay = inc * (1 + 0.02 * (U[1] - 0.5))
    pay = np.where(shocked, pay * (0.4 + 0.3 * U[3]), pay)
    paid = D["salaried"][:, None]
    ok = (day >= lo) & (day < hi) & ~(shocked & (U[2] < 0.4)) & ~D["gig"][:, None] & paid
    add(ok, day, 6 * 3600 + U[3] * 3 * 3600, C.TXN["salary"], SP["salary"], pay)
    # Gig workers: weekly payouts of varying size.
    G = D["G"].transpose(1, 0, 2)  # (3, B, W)
    wk = np.arange(G.shape[2])[None, :]
    day = lo + (U[0, :, 1:2] * 7).astype(int) + 7 * wk
    shocked = day >= D["shock"][:, None]
    pay = inc / 4.3 * np.exp(0.7 * (G[0] - 0.5))
    pay = np.where(shocked, pay * (0.4 + 0.3 * G[2]), pay)
    ok = (day < hi) & ~(shocked & (G[1] < 0.4)) & D["gig"][:, None] & paid
    add(ok, day, 6 * 3600 + G[2] * 3 * 3600, C.TXN["salary"], SP["salary"], pay)
    # Rent or mortgage: a direct debit early in the month.
    day = ms + (U[0, :, 2:3] * 5).astype(int)
    ok = (day >= lo) & (day < hi) & D["rent"][:, None]
    add(ok, day, 4 * 3600 + U[4] * 3600, C.TXN["direct_debit"], SP["rent"],
        inc * (0.25 + 0.15 * U[0, :, 3:4]))
    # Subscriptions (slots < n_subs) and a utility bill (last slot): fixed day of month,
    # (almost) fixed amount.
    S, SM = D["S"], D["SM"].transpose(1, 0, 2, 3)  # (B, 3, 5), (2, B, 5, M)
    slots = np.arange(N_SUBS + 1)[None, :]
    valid = (slots < D["n_subs"][:, None]) | (slots == N_SUBS)  # (B, 5)
    first = np.where(slots == N_SUBS, D["lo"][:, None],
                     np.maximum(D["lo"][:, None], (S[:, 0] * (w.n_days // 2)).astype(int)))
    day = ms[:, None, :] + (S[:, 1] * 27).astype(int)[:, :, None]  # (B, 5, M)
    ok = valid[:, :, None] & (day >= first[:, :, None]) & (day < hi[:, :, None])
    brands = D["brands"]
    base = w.ticket[BRAND_CAT[brands]] * np.exp(0.2 * (S[:, 2] - 0.5))
    noise = np.where(slots == N_SUBS, 0.3, 0.0)
    eur = base[:, :, None] * np.exp(noise[:, :, None] * (SM[0] - 0.5))
    ttype = np.where(slots == N_SUBS, C.TXN["direct_debit"], C.TXN["card_payment"])
    add(ok, day, 2 * 3600 + SM[1] * 4 * 3600, ttype[:, :, None], brands[:, :, None], eur,
        C.CH["online"])
    sub_ok = ok
    # Overdraft fees: the monthly count rises steeply with stress.
    F = D["F"].transpose(1, 0, 2, 3)  # (3, B, M, K)
    day = ms[:, :, None] + (F[0] * 28).astype(int)
    ok = (np.arange(MAX_FEES)[None, None, :] < D["n_fee"][:, :, None]) & (
        day >= lo[:, :, None]) & (day < hi[:, :, None])
    add(ok, day, 3600 + F[1] * 3600, C.TXN["fee"], SP["overdraft_fee"], 8 + 12 * F[2])
    # Payday loans under heavy stress, repaid a month later with interest.
    loan = U[8] < D["p_loan"]
    day = ms + (U[9] * 25).astype(int)
    amt = inc * (0.2 + 0.2 * U[10])
    add(loan & (day >= lo) & (day < hi), day, 10 * 3600 + U[11] * 8 * 3600,
        C.TXN["transfer_in"], SP["payday"], amt)
    add(loan & (day + 30 >= lo) & (day + 30 < hi), day + 30, 5 * 3600 + U[11] * 3600,
        C.TXN["direct_debit"], SP["loan"], 1.25 * amt)

    user, day, secs, ttype, merchant, ch, eur = (np.concatenate(x) for x in zip(*parts))
    country = D["country"][user]
    cur = HOME_CURRENCY[country]
    ts = _ts(w, day, secs)
    cols = make_chunk(TXN, ts, c0=ttype, c1=merchant, c3=cur, c4=ch, c5=country,
                      amt=_cents(eur, cur))
    # Planted recurring series (>= 3 payments): rent and every subscription / utility slot,
    # dated at the third payment.
    rent_ok = (ms + (U[0, :, 2:3] * 5).astype(int) >= lo) & D["rent"][:, None]
    rent_ok &= ms + (U[0, :, 2:3] * 5).astype(int) < hi
    series_u, series_ts, series_code = [], [], []
    for okm, dm, code in (
        (rent_ok[:, None, :], (ms + (U[0, :, 2:3] * 5).astype(int))[:, None, :],
         np.full((B, 1), SP["rent"])),
        (sub_ok, ms[:, None, :] + (S[:, 1] * 27).astype(int)[:, :, None], brands),
    ):
        nth = np.cumsum(okm, axis=2)
        third = okm & (nth == 3)  # (B, R, M)
        b_i, r_i, m_i = np.nonzero(third)
        secs3 = (4 * 3600 + U[4] * 3600)[b_i, m_i] if code.shape[1] == 1 else (
            2 * 3600 + SM[1] * 4 * 3600)[b_i, r_i, m_i]
        series_u.append(b_i)
        series_ts.append(_ts(w, np.broadcast_to(dm, okm.shape)[b_i, r_i, m_i], secs3))
        series_code.append(code[b_i, r_i])
    return cols, user, tuple(np.concatenate(x) for x in (series_u, series_ts, series_code))
