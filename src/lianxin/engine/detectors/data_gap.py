"""data_gap: the meter stopped reporting. Missing rows are no data — never zero, never quiet.

Raised when a meter has sent nothing for `data_gap_h` hours (and at least `data_gap_intervals`
of its intervals), or at once after a comm_loss event; resolved when readings come back.
While a gap is open the home's silence is explained, so inactivity and no_power stay quiet.
"""

from __future__ import annotations

import numpy as np

from lianxin.engine import routine
from lianxin.engine.text import hours, utc, when
from lianxin.meterdata import EngineEvent

KIND = "data_gap"
# Reads power's off_event/off_ts as the previous interval left them (it runs first), and
# writes the shared `explained` flag that inactivity reads.
AFTER: tuple[str, ...] = ()  # detectors whose this-interval writes it reads

FIELDS = {
    "gap_open": (np.int64, (), 0),  # start of the open gap (end of the last reading), 0 = none
    "comm_lost": (np.bool_, (), False),
}


def tick(eng, t) -> list:
    a, now = eng.a, t.now
    out = []
    if len(t.ev_rows):
        loss = t.ev_rows[t.ev_codes == EngineEvent.COMM_LOSS]
        a.comm_lost[loss] = True
    if np.count_nonzero(a.comm_lost):
        a.comm_lost &= ~t.has
    # Most intervals every meter reported: then no gap can open.
    quiet = ~t.has & (a.last_end > 0)
    if np.count_nonzero(quiet):
        # A meter that signalled power_off cannot report: that silence is no_power, not a gap.
        silent = quiet & ((now - a.last_end >= eng.gap_s) | a.comm_lost)
        silent &= ~a.off_event
        new = silent & (a.gap_open == 0)
        for r in routine.rows(new):
            out.append(_raise(eng, r, int(a.last_end[r])))
            a.gap_open[r] = a.last_end[r]
    # A gap only seen once data came back (nothing ticked in between): raise and close it.
    if np.count_nonzero(t.resumed):
        late = t.resumed & (a.gap_open == 0) & ~a.off_event
        late &= a.off_ts <= t.resumed_from  # no power_off while it was silent
        for r in routine.rows(late):
            out.append(_raise(eng, r, int(t.resumed_from[r])))
            a.gap_open[r] = t.resumed_from[r]
    open_ = a.gap_open > 0
    if not np.count_nonzero(open_):
        return out
    back = t.has & open_
    for r in routine.rows(back):
        start = int(a.gap_open[r])
        h_en, h_zh = hours((now - eng.a.interval_s[r] - start) / 3600)
        out.append(
            eng.resolved(
                KIND, r, start,
                f"The meter is reporting again after {h_en} without data.",
                f"电表已恢复上报数据，此前{h_zh}无数据。",
                {"gap_hours": (now - eng.a.interval_s[r] - start) / 3600},
            )
        )  # fmt: skip
        a.gap_open[r] = 0
    open_ = a.gap_open > 0
    a.explained |= open_
    a.hour_anom |= open_
    return out


def _raise(eng, r, start):
    w_en, w_zh = when(start, eng.now, eng.tz)
    h_en, h_zh = hours((eng.now - start) / 3600)
    kind = ("electricity", "water", "gas")[eng.a.kind[r]]
    return eng.finding(
        KIND, "info", r, start,
        f"No data from the {kind} meter since {w_en} ({h_en}); check the meter, this is not "
        "a sign of inactivity.",
        f"自{w_zh}起{_zh_kind(kind)}无数据上报（{h_zh}）；请检查电表，这不代表无活动。",
        {"last_reading_end": utc(start).isoformat(), "silent_hours": (eng.now - start) / 3600,
         "meter_kind": kind,
         "comm_loss_event": bool(eng.a.comm_lost[r])},
    )  # fmt: skip


def _zh_kind(kind: str) -> str:
    return {"electricity": "电表", "water": "水表", "gas": "燃气表"}[kind]
