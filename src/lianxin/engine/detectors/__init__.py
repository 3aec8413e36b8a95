"""One module per detector, all behind the same small interface.

A detector declares the per-home arrays it keeps (`FIELDS`, allocated and snapshotted by the
engine) and implements `tick(engine, t)` — called once per interval with the readings that ended
then — and optionally `day(engine, t)`, called when a local day ends. Both return findings.
They read the shared signals the engine computed for the interval (`t.has`, `t.kw`, `t.active`,
`t.lost`, ...) and flag the homes they explain (`engine.a["explained"]`) so later detectors
stay quiet about them.
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
