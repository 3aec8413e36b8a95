"""high_load: sustained load far above this home's usual range for the time of day.

Electricity: each interval above the hour's usual high (the `high_load_quantile` of the home's
hourly means) plus a margin counts toward a run; the run is raised once it has lasted
`high_load_min_h` with a mean excess of `high_load_mean_excess_kw` (a heater or stove left on).
Water or gas flowing in every interval for `flow_min_h` is a tap left on or a leak. Short
dips below the line (up to an hour) do not end a run.
"""

from __future__ import annotations

import numpy as np

from lianxin.engine import routine
from lianxin.engine.text import hours, utc, when

KIND = "high_load"
AFTER: tuple[str, ...] = ()  # detectors whose this-interval writes it reads

FIELDS = {
    "hl_run_h": (np.float32, (), 0.0),  # hours above the line in the current run
    "hl_excess": (np.float32, (), 0.0),  # kWh above the usual high in the current run
    "hl_calm_h": (np.float32, (), 0.0),  # hours below the line since the run's last excess
    "hl_start": (np.int64, (), 0),
    "hl_open": (np.int64, (), 0),
}


# No hour_anom here: a quantile is robust to one long run, and a home whose evenings are simply
# heavier than the prior must be able to learn that.


def tick(eng, t) -> list:
    a, cfg, now = eng.a, eng.cfg, t.now
    s = a.sens
    ih = a.ih
    usual = a.high_kw[:, t.hour]
    elec = eng.elec
    over = t.kw > _line(eng, t.hour)  # kw is NaN (never over) where there is no reading
    # Most intervals no home is above its line: then runs only grow calmer (or end).
    any_over = np.count_nonzero(over) > 0
    under = t.has & ~over if any_over else t.has
    if any_over:
        fresh = over & (a.hl_run_h == 0)
        np.copyto(a.hl_start, now - a.interval_s, where=fresh)  # (no boolean indexing: cheaper)
        np.add(a.hl_run_h, ih, out=a.hl_run_h, where=over)
        np.add(a.hl_excess, (t.kw - usual) * ih, out=a.hl_excess, where=over)
        calm = a.hl_calm_h
        np.add(calm, ih, out=calm, where=under)
        np.copyto(calm, 0, where=over)
    else:
        a.hl_calm_h += ih * under
    # Water and gas must flow in every interval; electricity may dip for up to an hour.
    ended = a.hl_calm_h > 1.0
    if not eng.all_elec:
        ended |= ~elec & under
    out = []
    for r in routine.rows(ended & (a.hl_open > 0)):
        start = int(a.hl_open[r])
        h_en, h_zh = hours((now - start) / 3600)
        out.append(
            eng.resolved(
                KIND, r, start,
                f"Load back to usual after {h_en}.", f"负荷已恢复正常，持续{h_zh}。",
                {"hours": (now - start) / 3600},
            )
        )  # fmt: skip
        a.hl_open[r] = 0
    if np.count_nonzero(ended):
        going = ~ended  # (the three are never negative: x * False is 0)
        np.multiply(a.hl_run_h, going, out=a.hl_run_h)
        np.multiply(a.hl_excess, going, out=a.hl_excess)
        np.multiply(a.hl_calm_h, going, out=a.hl_calm_h)
    if not any_over:
        return out
    run = a.hl_run_h
    mean_excess = a.hl_excess / np.maximum(run, 1e-6)
    min_h, min_excess = _fire_levels(eng)
    fire = (run >= min_h) & (mean_excess >= min_excess)
    if not eng.all_elec:
        fire = np.where(elec, fire, run >= cfg.flow_min_h * s)
    fire &= (a.hl_open == 0) & over
    for r in routine.rows(fire):
        out.append(_raise(eng, r, t, float(usual[r]), float(mean_excess[r])))
        a.hl_open[r] = a.hl_start[r]
    return out


def _fire_levels(eng) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the run (h) and mean excess (kW) that raise high_load, from its sensitivity
    (they change only with settings)."""
    cfg, s = eng.cfg, eng.a.sens
    return eng.memo(
        "high_load_levels",
        (eng.settings_version, eng.n),
        lambda: (cfg.high_load_min_h * s, cfg.high_load_mean_excess_kw * s),
    )


def _line(eng, hour: int) -> np.ndarray:
    """The level above which an interval counts toward a run. Its inputs change only at hour
    ends and with settings, so it is computed once for each of those."""

    def line():
        a = eng.a
        level = a.high_kw[:, hour] + eng.cfg.high_load_margin_kw * a.sens
        return level if eng.all_elec else np.where(eng.elec, level, 0.0)

    return eng.memo("high_load_line", (hour, eng.hour_end, eng.settings_version, eng.n), line)


def _raise(eng, r, t, usual, mean_excess):
    a = eng.a
    start = int(a.hl_start[r])
    w_en, w_zh = when(start, t.now, eng.tz)
    run = float(a.hl_run_h[r])
    r_en, r_zh = hours((t.now - start) / 3600)
    if a.kind[r] == 0:
        mean = usual + mean_excess
        en = (
            f"Unusually high load since {w_en} ({r_en}): {mean:.1f} kW on average, against "
            f"a usual high of {usual:.1f} kW at this time. Something may have been left on."
        )
        zh = (
            f"自{w_zh}起负荷异常偏高（{r_zh}）：平均{mean:.1f}千瓦，此时段通常最高"
            f"{usual:.1f}千瓦。可能有电器未关。"
        )
        sev = "warning"
    else:
        kind = "water" if a.kind[r] == 1 else "gas"
        zkind = "用水" if kind == "water" else "用气"
        en = (
            f"{kind.capitalize()} has been flowing without a break since {w_en} ({r_en}): "
            "a tap left on or a leak?"
        )
        zh = f"自{w_zh}起持续{zkind}未间断（{r_zh}）：可能未关阀门或有泄漏。"
        sev = "critical" if kind == "gas" else "warning"
    return eng.finding(
        KIND, sev, r, start, en, zh,
        {"since": utc(start).isoformat(), "hours_above": run, "usual_high_kw": usual,
         "mean_excess_kw": mean_excess,
         "meter_kind": ("electricity", "water", "gas")[a.kind[r]]},
    )  # fmt: skip
