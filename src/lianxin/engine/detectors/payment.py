"""payment_risk (a prepaid balance about to run out; an unusual missed payment) and
prepaid_cutoff (relay opened by cost control, or a reported balance at or below zero).

The balance is followed between reports by subtracting this home's metered use at
`price_per_kwh`; days left = that balance / the home's usual daily cost. A cut-off explains a
dark meter: it is reported as prepaid_cutoff, never as no_power or inactivity.
"""

from __future__ import annotations

import numpy as np

from lianxin.engine import routine
from lianxin.engine.text import hours, utc, when
from lianxin.meterdata import EngineEvent

NPAY = 6  # payment times kept per home, for its usual gap between payments
# Writes cut_open/cut_until, which power reads, and the shared `explained` flag.
AFTER: tuple[str, ...] = ()  # detectors whose this-interval writes it reads

FIELDS = {
    "bal": (np.float32, (), np.nan),  # latest reported balance
    "bal_kwh": (np.float32, (), 0.0),  # kWh used since that report
    "pay_ts": (np.int64, (NPAY,), 0),  # latest payment times (ring, 0 = none)
    "pay_n": (np.int32, (), 0),
    "pr_open": (np.int64, (), 0),  # open payment_risk (low balance)
    "mp_open": (np.int64, (), 0),  # open payment_risk (missed payment)
    "cut_open": (np.int64, (), 0),  # open prepaid_cutoff
    "relay_open": (np.bool_, (), False),
    "cut_until": (np.int64, (), 0),  # when the latest cut-off ended
}


def tick(eng, t) -> list:
    a, now = eng.a, t.now
    out = []
    if eng.tracks_balance:
        a.bal_kwh += np.where(t.has & eng.elec, t.kw * a.ih, 0).astype(np.float32)
    opened = None  # rows whose relay opened in this interval (made only when there are events)
    if len(t.ev_rows):
        opened = np.zeros(eng.n, bool)
        for r in t.ev_rows[t.ev_codes == EngineEvent.RELAY_OPEN]:
            a.relay_open[r] = True
            opened[r] = True
        for r in t.ev_rows[t.ev_codes == EngineEvent.RELAY_CLOSE]:
            a.relay_open[r] = False
    if eng.any_cutoff:
        # Electricity metered in a whole interval after the relay opened means it is closed
        # again, whether or not the meter reported the closing (many never do).
        flowing = t.has & eng.elec & (np.nan_to_num(t.kw) > 0)
        if opened is not None:
            flowing &= ~opened
        a.relay_open &= ~flowing
    for r, amount, bal, ts in zip(t.pay_rows, t.pay_amount, t.pay_balance, t.pay_ts, strict=True):
        if not np.isnan(bal):
            eng.tracks_balance = True
            a.bal[r] = bal
            a.bal_kwh[r] = 0
        if not np.isnan(amount) and amount > 0:
            a.pay_ts[r, a.pay_n[r] % NPAY] = ts
            a.pay_n[r] += 1
            if np.isnan(bal) and not np.isnan(a.bal[r]):
                a.bal[r] += amount
            for key, label in (("pr_open", "low balance"), ("mp_open", "missed payment")):
                if a[key][r]:
                    out.append(_resolve(eng, r, "payment_risk", int(a[key][r]), amount, label))
                    a[key][r] = 0
    if len(t.pay_rows):
        out += _low_balance(eng, np.unique(t.pay_rows), now)
    if not (eng.tracks_balance or len(t.ev_rows) or eng.any_cutoff):
        return out
    cut = a.relay_open | (a.bal <= 0)
    eng.any_cutoff = bool(cut.any())
    for r in routine.rows(cut & (a.cut_open == 0)):
        out.append(_cutoff(eng, r))
        a.cut_open[r] = now
    for r in routine.rows(~cut & (a.cut_open > 0)):
        out.append(
            eng.resolved(
                "prepaid_cutoff", r, int(a.cut_open[r]),
                "Prepaid supply restored.", "预付费供电已恢复。",
            )
        )  # fmt: skip
        a.cut_open[r] = 0
        a.cut_until[r] = now
    a.explained |= cut  # exactly the homes with an open cut-off now
    return out


def day(eng, end: int, d: int) -> list:
    a, cfg = eng.a, eng.cfg
    out = []
    if eng.tracks_balance:
        out += _low_balance(eng, np.arange(eng.n), end)
    n = a.pay_n
    many = n >= cfg.missed_payment_min_payments
    if many.any():
        ts = np.sort(a.pay_ts, axis=1).astype(np.float64)
        ts[ts == 0] = np.nan
        gaps = np.diff(ts, axis=1)
        med, k = routine.ring_quantile(gaps, 0.5)
        last = np.nanmax(np.where(np.isnan(ts), -np.inf, ts), axis=1)
        due = many & (k >= 2) & (end - last > cfg.missed_payment_factor * med) & (a.mp_open == 0)
        for r in routine.rows(due):
            l_en, l_zh = when(int(last[r]), end, eng.tz)
            g_en, g_zh = hours(float(med[r]) / 3600)
            out.append(
                eng.finding(
                    "payment_risk", "info", r, end,
                    f"No payment since {l_en}; this home usually pays every {g_en}.",
                    f"自{l_zh}起未缴费；该户通常每{g_zh}缴费一次。",
                    {"last_payment": utc(int(last[r])).isoformat(),
                     "usual_gap_days": float(med[r]) / 86400},
                )
            )  # fmt: skip
            a.mp_open[r] = end
    return out


def _low_balance(eng, rows, when_s) -> list:
    """payment_risk where the balance, followed by use since it was reported, will run out
    within `payment_days_warning` days at the home's usual daily cost."""
    a, cfg = eng.a, eng.cfg
    rows = np.asarray(rows)
    bal = a.bal[rows]
    tracked = ~np.isnan(bal) & (bal > 0) & (a.pr_open[rows] == 0)
    if not tracked.any():
        return []
    rows = rows[tracked]
    usual, n = routine.ring_quantile(a.tot_ring[rows], 0.5)
    daily_cost = np.where(n > 0, usual, 5.0) * cfg.price_per_kwh
    left = np.maximum(a.bal[rows] - a.bal_kwh[rows] * cfg.price_per_kwh, 0)
    days = left / np.maximum(daily_cost, 1e-3)
    out = []
    for r, lf, dd, dc in zip(rows, left, days, daily_cost, strict=True):
        if dd >= cfg.payment_days_warning:
            continue
        out.append(
            eng.finding(
                "payment_risk", "warning", r, when_s,
                f"Prepaid balance about to run out: about {lf:.2f} left, {dd:.1f} days at this "
                f"home's usual {dc:.2f} a day. Help the resident pay before the supply is cut.",
                f"预付费余额即将用完：约剩{lf:.2f}元，按该户日均{dc:.2f}元约可用{dd:.1f}天。"
                "请在停电前协助缴费。",
                {"balance_estimate": float(lf), "days_left": float(dd),
                 "usual_daily_cost": float(dc)},
            )
        )  # fmt: skip
        a.pr_open[r] = when_s
    return out


def _cutoff(eng, r):
    a = eng.a
    if a.relay_open[r]:
        en = "Supply cut by prepaid cost control (the meter relay opened): help the resident pay."
        zh = "预付费费控已断电（电表继电器断开）：请协助用户缴费。"
    else:
        en = f"Prepaid balance exhausted ({a.bal[r]:.2f}): supply will be or has been cut."
        zh = f"预付费余额已用完（{a.bal[r]:.2f}元）：已经或即将停电。"
    return eng.finding(
        "prepaid_cutoff",
        "critical",
        r,
        eng.now,
        en,
        zh,
        {"relay_open": bool(a.relay_open[r]), "balance": float(a.bal[r])},
    )


def _resolve(eng, r, kind, start, amount, label):
    return eng.resolved(
        kind,
        r,
        start,
        f"Payment received ({amount:.2f}).",
        f"已收到缴费（{amount:.2f}元）。",
        {"amount": float(amount), "was": label},
    )
