"""voltage: supply quality from meter events (voltage out of range).

Raised at the first voltage_high/voltage_low event (a warning once `voltage_warning_count`
arrive within a day, info before); resolved after a day without one.
"""

from __future__ import annotations

import numpy as np

from lianxin.engine import routine
from lianxin.engine.text import utc, when
from lianxin.meterdata import EngineEvent

KIND = "voltage"
AFTER: tuple[str, ...] = ()  # detectors whose this-interval writes it reads

FIELDS = {
    "v_open": (np.int64, (), 0),
    "v_last": (np.int64, (), 0),
    "v_count": (np.int32, (), 0),  # events in the open episode
}


def tick(eng, t) -> list:
    a, cfg, now = eng.a, eng.cfg, t.now
    out = []
    if len(t.ev_rows):
        m = (t.ev_codes == EngineEvent.VOLTAGE_HIGH) | (t.ev_codes == EngineEvent.VOLTAGE_LOW)
        for r, code, ts in zip(t.ev_rows[m], t.ev_codes[m], t.ev_ts[m], strict=True):
            a.v_count[r] += 1
            a.v_last[r] = ts
            if a.v_open[r] == 0:
                a.v_open[r] = ts
                a.v_count[r] = 1
            count = int(a.v_count[r])
            first = count == 1
            if not (first or count == cfg.voltage_warning_count):
                continue
            # The info at the first event, and one warning when they keep coming.
            high = code == EngineEvent.VOLTAGE_HIGH
            w_en, w_zh = when(int(a.v_open[r]), now, eng.tz)
            sev = "warning" if count >= cfg.voltage_warning_count else "info"
            if not first:
                out.append(_close(eng, r, int(a.v_open[r])))
                a.v_open[r] = ts
            start = int(a.v_open[r])
            out.append(
                eng.finding(
                    KIND, sev, r, start,
                    f"Supply voltage out of range ({'too high' if high else 'too low'}) since "
                    f"{w_en}: {count} meter event{'s' if count > 1 else ''}.",
                    f"自{w_zh}起电压{'偏高' if high else '偏低'}：电表报告{count}次越限。",
                    {"events": count, "last_event": utc(int(ts)).isoformat(),
                     "direction": "high" if high else "low"},
                )
            )  # fmt: skip
    if not np.count_nonzero(a.v_open):  # the usual interval: no episode open
        return out
    done = (a.v_open > 0) & (now - a.v_last >= 86400)
    for r in routine.rows(done):
        out.append(_close(eng, r, int(a.v_open[r])))
        a.v_open[r] = 0
        a.v_count[r] = 0
    return out


def _close(eng, r, start):
    return eng.resolved(
        KIND,
        r,
        start,
        "No voltage events for a day.",
        "已一天无电压越限事件。",
        {"events": int(eng.a.v_count[r])},
    )
