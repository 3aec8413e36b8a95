"""no_power (supply lost at one home) and grid_outage (many homes of one transformer area).

An electricity meter reads exactly zero — or sends a power_off event — while this home's own
history says it never sits at zero that long (a fridge always draws). When at least
`grid_min_homes` homes and `grid_min_share` of a transformer area lose power within a couple of
intervals, one grid_outage lists them and their individual no_power findings are not raised.
If other homes of the area are going dark too but not yet enough for an outage, a home's
no_power waits one more interval so an outage can be recognised first.
"""

from __future__ import annotations

import numpy as np

from lianxin.engine import routine
from lianxin.engine.findings import Finding
from lianxin.engine.text import hours, utc, when
from lianxin.meterdata import EngineEvent

# Same-interval fields of other detectors read here: payment's cut_open and cut_until.
AFTER: tuple[str, ...] = ("payment",)  # detectors whose this-interval writes it reads

FIELDS = {
    "lost_since": (np.int64, (), 0),  # supply lost since (first zero interval start / event)
    "off_event": (np.bool_, (), False),  # a power_off event not yet followed by power_on
    "off_ts": (np.int64, (), 0),  # time of the latest power_off event
    "np_open": (np.int64, (), 0),  # open no_power: its started_at
    "in_outage": (np.bool_, (), False),  # covered by an open grid_outage of its area
}


def tick(eng, t) -> list:
    a, now = eng.a, t.now
    out: list = []
    areas = len(eng.area_names) > 0
    if len(t.ev_rows):
        off = t.ev_codes == EngineEvent.POWER_OFF
        for r, ts in zip(t.ev_rows[off], t.ev_ts[off], strict=True):
            a.off_event[r] = True
            a.off_ts[r] = ts
            if a.lost_since[r] == 0:
                a.lost_since[r] = ts
        on = t.ev_rows[t.ev_codes == EngineEvent.POWER_ON]
        a.off_event[on] = False
    # The usual interval has no power_off event open, no prepaid cut-off and no grid outage:
    # the terms for those are left out then (they would all be False).
    off = a.off_event
    any_off = np.count_nonzero(off) > 0
    if any_off:
        off &= ~(
            t.has & ~t.zero
        )  # a non-zero reading means power is back, whatever the events said
        any_off = np.count_nonzero(off) > 0
    cuts = np.count_nonzero(a.cut_open) + np.count_nonzero(a.cut_until) > 0
    # (A coarse register meter's zeros count only once the run is long enough: see config.)
    zthr = a.zero_thr_h if eng.zero_min_h is None else np.maximum(a.zero_thr_h, eng.zero_min_h)
    zero_long = a.zrun_cur > zthr + 1e-3
    lost = a.zrun_cur > 0
    if any_off:
        lost |= off
    # Supply back: a quiet spell restarts here, the dark hours were no evidence of inactivity.
    back_on = ~lost & (a.lost_since > 0)
    if np.count_nonzero(back_on):
        back_on &= (a.np_open > 0) | a.in_outage | (a.lost_since < a.cut_until)
        if np.count_nonzero(back_on):
            own = a.owner[back_on]
            since = now - a.interval_s[back_on]
            a.quiet_since[own] = np.maximum(a.quiet_since[own], since)
    if np.count_nonzero(t.resumed):
        # Zeros after a gap say nothing of the silent hours: the loss, unless a power_off
        # event says otherwise, starts with them (Engine.tick restarted the zero run). One
        # that began inside a prepaid cut-off keeps its start: the cut-off explains it.
        a.lost_since[t.resumed & ~a.off_event & (a.lost_since >= a.cut_until)] = 0
    newly = lost & (a.lost_since == 0)
    np.copyto(a.lost_since, now - a.interval_s, where=newly)  # (no boolean indexing: cheaper)
    np.multiply(a.lost_since, lost, out=a.lost_since)  # 0 where not lost
    # A prepaid cut-off explains the dark meter: it is reported as prepaid_cutoff instead.
    alarming = off | zero_long if any_off else zero_long
    if cuts:
        cut = (a.cut_open > 0) | (lost & (a.lost_since < a.cut_until))
        alarming = alarming & ~cut

    area = a.area
    if areas:
        if np.count_nonzero(alarming):
            out += _grid(eng, t, lost & ~cut if cuts else lost, area)
        out += _resolve_grid(eng, lost, area)

    # Zeros alarm only on a fresh reading: a home that then goes silent is a data_gap.
    cand = alarming & (t.has | off) if any_off else alarming & t.has
    cand &= a.np_open == 0
    if areas:
        cand &= ~a.in_outage
    if areas and np.count_nonzero(cand):
        # Hold one interval while neighbours are going dark too: it may be a grid outage.
        in_area = area >= 0
        dark = np.bincount(area[in_area & lost], minlength=len(eng.area_names))
        neighbours = np.where(in_area, dark[np.maximum(area, 0)], 0)
        young = now - a.lost_since < 2 * a.interval_s
        cand &= ~((neighbours >= 2) & young)
    for r in routine.rows(cand):
        out.append(_no_power(eng, r))
        a.np_open[r] = a.lost_since[r]
    back = (a.np_open > 0) & ~lost
    for r in routine.rows(back):
        start = int(a.np_open[r])
        h_en, h_zh = hours((now - start) / 3600)
        out.append(
            eng.resolved(
                "no_power", r, start, f"Power is back after {h_en}.", f"已恢复供电，停电{h_zh}。",
                {"outage_hours": (now - start) / 3600},
            )
        )  # fmt: skip
        a.np_open[r] = 0
    dark_home = a.np_open > 0
    if areas:
        dark_home |= a.in_outage
    # Zeros explain silence only when they are not this home's habit (or a cut-off made them).
    # (zero_long and an open power_off imply lost.)
    explains = dark_home | zero_long
    if any_off:
        explains |= off
    if cuts:
        explains |= lost & cut
    a.explained |= explains
    a.hour_anom |= dark_home
    if areas:
        # A grid outage says nothing about this home's own zero runs: keep it out of their
        # history, the run going on too when it ends (after the outage, for a home whose
        # supply came back later than the area's; Engine.tick).
        if np.count_nonzero(a.in_outage):
            a.day_zrun[a.in_outage] = 0
            a.zrun_outage |= a.in_outage
    return out


def _no_power(eng, r):
    a = eng.a
    start = int(a.lost_since[r])
    w_en, w_zh = when(start, eng.now, eng.tz)
    usual = float(a.zero_thr_h[r])
    days = int(min(a.days_seen[r], eng.D))
    if a.off_event[r]:
        en = f"Power lost at this home since {w_en}: the meter sent a power-off signal"
        zh = f"自{w_zh}起该户停电：电表发出断电信号"
    elif a.res_kwh[r] > 0:
        step, still = float(a.res_kwh[r]), float(a.zrun_cur[r])
        z_en, z_zh = hours(still)
        watts = f"{step * 1000 / still:.0f}"
        en = (
            f"Power lost at this home since {w_en}: the meter's register has not moved by its "
            f"smallest step ({step:g} kWh) in {z_en}, under {watts} W on average"
        )
        zh = (
            f"自{w_zh}起该户停电：电表示值{z_zh}内未走动"
            f"（最小刻度{step:g}千瓦时，平均不足{watts}瓦）"
        )
    else:
        en = f"Power lost at this home since {w_en}: the meter reads zero"
        zh = f"自{w_zh}起该户停电：电表读数为零"
    if a.res_kwh[r] > 0 and not a.off_event[r]:
        # Its zeros are steps too small to show: how long the register has stood still before.
        before = float(np.nanmax(a.zrun_ring[r], initial=0.0))
        b_en, b_zh = hours(before)
        en += f"; its longest standstill in the last {days} days was {b_en}."
        zh += f"；过去{days}天示值最长停走{b_zh}。"
    elif usual <= 0:
        en += f"; in the last {days} days it never read zero (a fridge always draws)."
        zh += f"；过去{days}天从未出现零读数（冰箱始终在用电）。"
    else:
        u_en, u_zh = hours(usual)
        en += f"; its longest zero run in the last {days} days was {u_en}."
        zh += f"；过去{days}天最长零读数持续{u_zh}。"
    en += " The rest of its transformer area has power."
    zh += "同台区其他用户供电正常。"
    return eng.finding(
        "no_power", "critical", r, start, en, zh,
        {"lost_since": utc(start).isoformat(), "zero_hours": float(a.zrun_cur[r]),
         "usual_longest_zero_hours": usual, "power_off_event": bool(a.off_event[r])},
    )  # fmt: skip


def _grid(eng, t, lost, area) -> list:
    a, cfg, now = eng.a, eng.cfg, t.now
    n_areas = len(eng.area_names)
    in_area = area >= 0
    fresh = lost & in_area & (now - a.lost_since <= 2 * a.interval_s)
    n_fresh = np.bincount(area[fresh], minlength=n_areas)
    recent = in_area & (a.last_end >= now - 86400) & (a.kind == 0)
    n_rep = np.bincount(area[recent], minlength=n_areas)
    need = np.maximum(cfg.grid_min_homes, np.ceil(cfg.grid_min_share * n_rep))
    out = []
    open_since = eng.g.outage_since
    for ar in routine.rows((n_fresh >= need) & (open_since == 0)):
        members = np.flatnonzero(lost & (area == ar))
        start = int(a.lost_since[members].min())
        open_since[ar] = start
        a.in_outage[members] = True
        names = tuple(sorted(eng.households[r] for r in members))
        w_en, w_zh = when(start, now, eng.tz)
        name = eng.area_names[ar]
        out.append(
            Finding(
                kind="grid_outage", severity="critical", started_at=utc(start),
                detected_at=utc(now), transformer_area=name, households=names,
                reason_en=f"Grid outage in transformer area {name}: {len(names)} of "
                f"{int(n_rep[ar])} homes lost power together since {w_en}.",
                reason_zh=f"台区{name}停电：自{w_zh}起{int(n_rep[ar])}户中有{len(names)}户同时失电。",
                evidence={"homes_dark": len(names), "homes_reporting": int(n_rep[ar]),
                          "since": utc(start).isoformat()},
            )
        )  # fmt: skip
    # Homes of an area with an open outage that go dark later join it silently.
    if (open_since > 0).any():
        joins = lost & in_area & ~a.in_outage
        joins &= np.where(in_area, open_since[np.maximum(area, 0)] > 0, False)
        a.in_outage[joins] = True
    return out


def _resolve_grid(eng, lost, area) -> list:
    a, now = eng.a, eng.now
    open_since = eng.g.outage_since
    out = []
    for ar in routine.rows(open_since > 0):
        members = a.in_outage & (area == ar)
        still = int((members & lost).sum())
        total = int(members.sum())
        if still * 2 > total:
            continue
        start = int(open_since[ar])
        name = eng.area_names[ar]
        h_en, h_zh = hours((now - start) / 3600)
        names = tuple(sorted(eng.households[r] for r in routine.rows(members)))
        out.append(
            Finding(
                kind="grid_outage", severity="info", started_at=utc(start), detected_at=utc(now),
                transformer_area=name, households=names, event="resolved",
                reason_en=f"Power is back in transformer area {name} after {h_en} "
                f"({still} of {total} homes still dark).",
                reason_zh=f"台区{name}已恢复供电，停电{h_zh}（{total}户中仍有{still}户无电）。",
                evidence={"homes_still_dark": still, "homes": total},
            )
        )  # fmt: skip
        open_since[ar] = 0
        # Homes still dark after the area is back have a fault of their own: no_power next.
        a.in_outage[members] = False
    return out
