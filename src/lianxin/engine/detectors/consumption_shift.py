"""consumption_shift: daily totals far from the home's own history for several days running.

A gentle check (moved out, in hospital, a new appliance): raised at the end of a local day when
each of the last `shift_days` complete days was above `shift_factor` times, or below
1/`shift_factor` of, the median of the days before them; resolved when a day is back in range.
"""

from __future__ import annotations

import numpy as np

from lianxin.engine import routine
from lianxin.engine.text import utc

KIND = "consumption_shift"
AFTER: tuple[str, ...] = ()  # detectors whose this-interval writes it reads

FIELDS = {
    "cs_open": (np.int64, (), 0),
    "cs_dir": (np.int8, (), 0),
    # The median daily total of the days before the coming day end's recent ones, and of how
    # many days: those days are complete before it, so it is prepared during the day.
    "cs_usual": (np.float32, (), np.nan),
    "cs_usual_n": (np.int16, (), 0),
}


def tick(eng, t) -> list:
    return []


def _recent(eng, d: int) -> list:
    return [(d - i) % eng.D for i in range(eng.cfg.shift_days)]


def prepare(eng, rows, d: int) -> None:
    """Before the end of the day in ring slot d: the usual total of the days before it."""
    a = eng.a
    before = a.tot_ring[rows]
    if isinstance(rows, slice):
        before = before.copy()
    before[:, _recent(eng, d)] = np.nan
    a.cs_usual[rows], a.cs_usual_n[rows] = routine.ring_quantile(before, 0.5, owned=True)


def day(eng, end: int, d: int) -> list:
    a, cfg = eng.a, eng.cfg
    S = cfg.shift_days
    days = _recent(eng, d)  # ring slots, newest first
    med, n = a.cs_usual, a.cs_usual_n
    f = cfg.shift_factor
    with np.errstate(invalid="ignore", divide="ignore"):
        latest = a.tot_ring[:, days[0]] / med  # an unknown (NaN) day is neither up nor down
        ok = (n >= cfg.shift_min_history_days) & (med > 0.1)
        # Only homes whose newest day is already far off can have S such days in a row: the
        # older days are read for those few (a column of every home's ring costs a pass).
        far = np.flatnonzero(ok & ((latest > f) | (latest < 1 / f)))
        ratios = a.tot_ring[far[:, None], days] / med[far, None]
        up = np.zeros(eng.n, bool)
        down = np.zeros(eng.n, bool)
        up[far] = (ratios > f).all(axis=1)
        down[far] = (ratios < 1 / f).all(axis=1)
    out = []
    back = (a.cs_open > 0) & (latest < f) & (latest > 1 / f)
    for r in routine.rows(back):
        out.append(
            eng.resolved(
                KIND, r, int(a.cs_open[r]),
                "Daily use is back within this home's usual range.",
                "日用电量已回到该户正常范围。",
                {"latest_kwh": float(a.tot_ring[r, days[0]]), "usual_kwh": float(med[r])},
            )
        )  # fmt: skip
        a.cs_open[r] = 0
    start = end - S * 86400
    for r in routine.rows((up | down) & (a.cs_open == 0) & eng.primary):
        daily = [round(float(a.tot_ring[r, i]), 1) for i in days[::-1]]
        usual = float(med[r])
        shown = ", ".join(f"{x:g}" for x in daily)
        if up[r]:
            en = (
                f"Daily use has been much higher than usual for {S} days: {shown} kWh against "
                f"a usual {usual:.1f} kWh. A new appliance, or a change at home?"
            )
            zh = (
                f"连续{S}天日用电量明显偏高：{shown}千瓦时，通常为{usual:.1f}千瓦时。"
                "是否添置了新电器或家中有变化？"
            )
        else:
            en = (
                f"Daily use has been much lower than usual for {S} days: {shown} kWh against "
                f"a usual {usual:.1f} kWh. Away, in hospital, or moved out?"
            )
            zh = (
                f"连续{S}天日用电量明显偏低：{shown}千瓦时，通常为{usual:.1f}千瓦时。"
                "是否外出、住院或已搬离？"
            )
        out.append(
            eng.finding(
                KIND, "info", r, start, en, zh,
                {"daily_kwh": daily, "usual_daily_kwh": usual, "days_compared": int(n[r]),
                 "direction": "up" if up[r] else "down", "since": utc(start).isoformat()},
            )
        )  # fmt: skip
        a.cs_open[r] = start
    return out
