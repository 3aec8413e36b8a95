"""One module per detector, all behind the same small interface.

A detector declares the per-home arrays it keeps (`FIELDS`, allocated and snapshotted by the
engine) and implements `tick(engine, t)` — called once per interval with the readings that ended
then — and optionally `day(engine, end, d)`, called when a local day ends, `prepare(engine, rows,
d)` ahead of it and `feedback(engine, rows, started, outcomes)` with the duty room's outcomes.
tick and day return findings. They read the shared signals the engine computed for the interval
(`t.has`, `t.kw`, `t.zero`, `t.resumed`, ...) and flag the homes they explain
(`engine.a["explained"]`) so later detectors stay quiet about them.
"""

from lianxin.engine.detectors import (
    consumption_shift,
    data_gap,
    high_load,
    inactivity,
    payment,
    power,
    voltage,
)

# Order matters: a detector may rely on the flags set by those before it.
DETECTORS = [data_gap, payment, power, inactivity, high_load, consumption_shift, voltage]
