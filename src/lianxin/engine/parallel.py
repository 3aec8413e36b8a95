"""A replay on two cores: the inactivity detector runs in a second process, beside the rest.

Inactivity is the engine's costliest detector (about half of a replay's time per interval) and
a sink: it reads the state the engine and the detectors before it leave for the interval (quiet
spells, what is explained, the learned routine) and writes only its own fields, which nothing
else reads. So the replaying process runs everything else and, where inactivity would run,
a stand-in (Tap) copies what inactivity reads and leaves a placeholder in the interval's
findings; batches of intervals go to a forked process, which runs the real inactivity on a
copy of the engine brought up to date interval by interval, while the replay goes on. At the
end its findings take the placeholders' places and its fields come back into the engine: the
findings, their order and the engine's state are those of the one-process replay.

What inactivity reads that changes (see the detector): every interval quiet_since, explained
and the interval itself (now, local hour, UTC offset, has); at hour ends the slot of
quiet_thr and q_ring that hour wrote (and the population's quiet figures); at day ends
days_seen and its own day() (the decay of in_recent); when the local day changes the
activity and data rings (quiet_windows reads the days before today, which change only then).
The low-use path reads hourly use as well: with it on, the replay stays in one process.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from datetime import datetime

import numpy as np

from lianxin.engine import routine
from lianxin.engine.detectors import DETECTORS, inactivity

BATCH = 256  # intervals per message: the other process lags the replay by about this many
MARK = object()  # the place of one interval's inactivity findings in the replay's list


def available(eng) -> bool:
    """Whether this engine's replay can put inactivity in another process."""
    return (
        "fork" in mp.get_all_start_methods()
        and not eng.cfg.inactivity_low_use
        and inactivity in eng.detectors
        and eng.n > 0
    )


class Offload:
    """Inactivity in a forked process for the length of one replay (a context manager).

    Fork it when the engine holds its homes and before the first interval: the other process
    starts from the engine as it is then."""

    def __init__(self, eng):
        self.eng = eng
        ctx = mp.get_context("fork")
        self.inbox = ctx.Queue()
        self.outbox = ctx.Queue()
        self.proc = ctx.Process(target=_work, args=(eng, self.inbox, self.outbox), daemon=True)
        self.tap = Tap(eng, self.inbox.put)

    def __enter__(self) -> Offload:
        self.proc.start()
        eng = self.eng
        self.detectors = eng.detectors
        eng.detectors = [self.tap if d is inactivity else d for d in eng.detectors]
        return self

    def __exit__(self, *exc) -> None:
        self.eng.detectors = self.detectors
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()

    def findings(self, out: list) -> list:
        """`out` (the replay's findings, a placeholder per interval) with inactivity's in
        their places; inactivity's fields are copied back into the engine."""
        self.tap.flush()
        self.inbox.put(None)
        found, fields = self._result()
        for name, values in fields.items():
            self.eng.a[name][...] = values
        merged = []
        k = 0
        for f in out:
            if f is MARK:
                merged += found.get(k, ())
                k += 1
            else:
                merged.append(f)
        return merged

    def _result(self):
        while True:
            try:
                kind, *payload = self.outbox.get(timeout=1.0)
            except queue.Empty:
                if not self.proc.is_alive():
                    raise RuntimeError("the inactivity process ended without a result") from None
                continue
            if kind == "error":
                raise RuntimeError(f"the inactivity process failed:\n{payload[0]}")
            return payload


class Tap:
    """Stands in for inactivity in the replaying engine: copies what it reads, interval by
    interval, and sends it on in batches."""

    KIND = inactivity.KIND
    AFTER = inactivity.AFTER
    FIELDS = inactivity.FIELDS

    def __init__(self, eng, send):
        self.send = send
        self.n = eng.n
        self.hour_end = eng.hour_end  # the engine's, at the latest interval sent
        self.today = None  # the local day of the latest interval sent
        self.days: list[tuple[int, int]] = []  # day() calls since the latest interval
        self._new()

    def _new(self) -> None:
        self.qs = np.empty((BATCH, self.n), np.int64)
        self.explained = np.empty((BATCH, self.n), bool)
        self.has = np.empty((BATCH, self.n), bool)
        self.meta: list[tuple] = []

    def day(self, eng, end: int, d: int) -> list:
        self.days.append((end, d))
        return []

    def tick(self, eng, t) -> list:
        a = eng.a
        i = len(self.meta)
        self.qs[i] = a.quiet_since
        self.explained[i] = a.explained
        self.has[i] = t.has
        hours = None
        if eng.hour_end != self.hour_end:
            hours = []
            if self.hour_end is not None:
                for end in range(self.hour_end, eng.hour_end, 3600):
                    local = datetime.fromtimestamp(end - 1, eng.tz)
                    h, d = local.hour, routine.local_day(local) % eng.D
                    hours.append((h, d, a.quiet_thr[:, h].copy(), a.q_ring[:, h, d].copy()))
            hours.append(eng.pop["quiet"].copy())
            self.hour_end = eng.hour_end
        days = None
        today = (t.now + t.utc_offset - 1) // 86400
        if self.days or today != self.today:
            days = (self.days, a.days_seen.copy(), a.act_bits.copy(), a.seen_bits.copy())
            self.days, self.today = [], today
        self.meta.append((t.now, t.hour, t.utc_offset, eng.hour_end, hours, days))
        if len(self.meta) == BATCH:
            self.flush()
        return [MARK]

    def flush(self) -> None:
        k = len(self.meta)
        if k:
            self.send((self.qs[:k], self.explained[:k], self.has[:k], self.meta))
            self._new()  # (the queue pickles the batch later, in its own thread)


def _work(eng, inbox, outbox) -> None:
    """The other process: inactivity on the engine it was forked with, brought up to date
    interval by interval from the batches."""
    from lianxin.engine.core import Tick

    try:
        eng.detectors = DETECTORS
        a = eng.a
        found: dict[int, list] = {}
        k = 0
        while (batch := inbox.get()) is not None:
            qs, explained, has, meta = batch
            for i, (now, hour, offset, hour_end, hours, days) in enumerate(meta):
                if hours is not None:
                    *slots, pop = hours
                    for h, d, thr, q in slots:
                        a.quiet_thr[:, h] = thr
                        a.q_ring[:, h, d] = q
                    eng.pop["quiet"][...] = pop
                if days is not None:
                    calls, a.days_seen[...], a.act_bits[...], a.seen_bits[...] = days
                    for end, d in calls:
                        inactivity.day(eng, end, d)
                eng.now, eng.hour_end = now, hour_end
                a.quiet_since[...] = qs[i]
                a.explained[...] = explained[i]
                t = Tick(now, hour, offset, has[i], *([None] * 11))
                f = inactivity.tick(eng, t)
                if f:
                    found[k] = f
                k += 1
        outbox.put(("done", found, {name: a[name] for name in inactivity.FIELDS}))
    except BaseException:  # noqa: BLE001 - reported to the replaying process, which raises
        outbox.put(("error", traceback.format_exc()))
