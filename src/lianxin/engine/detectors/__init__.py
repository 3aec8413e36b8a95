"""One module per detector, all behind the same small interface.

A detector declares the per-home arrays it keeps (`FIELDS`, allocated and snapshotted by the
engine) and implements `tick(engine, t)` — called once per interval with the readings that ended
then — and optionally `day(engine, end, d)`, called when a local day ends, `prepare(engine, rows,
d)` ahead of it and `feedback(engine, rows, started, outcomes)` with the duty room's outcomes.
tick and day return findings. They read the shared signals the engine computed for the interval
(`t.has`, `t.kw`, `t.zero`, `t.resumed`, ...) and flag the homes they explain
(`engine.a.explained`) so later detectors stay quiet about them. A detector that reads what
another writes in the same interval names it in `AFTER`.
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

# The order they run in each interval. A detector that reads fields another one writes in the
# same interval names it in its AFTER; the check below keeps this list true to those names.
DETECTORS = [data_gap, payment, power, inactivity, high_load, consumption_shift, voltage]


def _check_order(detectors) -> None:
    seen: set[str] = set()
    for det in detectors:
        name = det.__name__.rsplit(".", 1)[-1]
        missing = [d for d in det.AFTER if d not in seen]
        if missing:
            raise RuntimeError(f"detector {name} must run after {', '.join(missing)}")
        seen.add(name)


_check_order(DETECTORS)
