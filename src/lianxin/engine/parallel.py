"""A replay on two cores: inactivity and high_load run in a second process, beside the rest.

Inactivity is the engine's costliest detector (about half of a replay's time per interval);
it and high_load, which runs right after it, are sinks: they read the state the engine and
the detectors before them leave for the interval (quiet spells, what is explained, the
readings, the learned routine) and write only their own fields, which nothing else reads. So
the replaying process runs everything else and, where they would run, a stand-in (Tap)
copies what they read and leaves a placeholder in the interval's findings; batches of
intervals go to a forked process, which runs the real two on a copy of the engine brought up
to date interval by interval, while the replay goes on. At the end their findings take the
placeholders' places and their fields come back into the engine: the findings, their order
and the engine's state are those of the one-process replay.

What they read that changes (see the detectors): every interval quiet_since, explained and
the interval itself (now, local hour, UTC offset, has, kw); at hour ends the slot of
quiet_thr, q_ring and high_kw that hour wrote (and the population's quiet figures); at day
ends days_seen and inactivity's day() (the decay of in_recent); when the local day changes
the activity and data rings (quiet_windows reads the days before today, which change only
then). Inactivity's low-use path reads hourly use as well: with it on, the replay stays in one
process.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import queue
import traceback
import warnings
from datetime import datetime

import numpy as np

from lianxin.engine import routine
from lianxin.engine.detectors import DETECTORS, high_load, inactivity

BATCH = 256  # intervals per message: the other process lags the replay by about this many
SLOTS = 8  # batches in flight at most (their arrays are shared memory, reused in turn)
MARK = object()  # the place of one interval's inactivity and high_load findings
# The detectors moved, in the order the engine runs them (next to each other in DETECTORS).
MOVED = (inactivity, high_load)
FIELDS = [name for det in MOVED for name in det.FIELDS]
# One placeholder holds the findings of both: nothing may run between them.
_at = DETECTORS.index(inactivity)
if DETECTORS[_at : _at + len(MOVED)] != list(MOVED):
    raise RuntimeError("lianxin.engine.parallel moves inactivity and high_load, run in a row")


def available(eng) -> bool:
    """Whether this engine's replay can put inactivity and high_load in another process."""
    return (
        "fork" in mp.get_all_start_methods()
        and not eng.cfg.inactivity_low_use
        and eng.detectors is DETECTORS
        and eng.n > 0
    )


class Offload:
    """Inactivity and high_load in a forked process for the length of one replay (a context
    manager).

    Fork it when the engine holds its homes and before the first interval: the other process
    starts from the engine as it is then. Each interval's arrays go through memory both
    processes share (SLOTS batches of them, reused in turn); only the small rest is pickled."""

    def __init__(self, eng):
        self.eng = eng
        ctx = mp.get_context("fork")
        self.inbox = ctx.Queue()
        self.outbox = ctx.Queue()
        self.free = ctx.Semaphore(SLOTS)  # batch slots the replay may fill
        self.shared = Batches(eng.n)
        self.proc = ctx.Process(
            target=_work, args=(eng, self.shared, self.inbox, self.outbox, self.free), daemon=True
        )
        self.found: dict[int, list] = {}  # interval number -> the other process's findings
        self.tap = Tap(eng, self.shared, self._send)

    def __enter__(self) -> Offload:
        with warnings.catch_warnings():
            # Python 3.12+ warns when a process with threads (polars' pool) forks: the child
            # runs only numpy detector code and never touches those threads or their locks.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.proc.start()
        self._acquire()  # the first batch's slot
        eng = self.eng
        self.detectors = eng.detectors
        stand_in = {inactivity: self.tap, high_load: _Quiet}
        eng.detectors = [stand_in.get(d, d) for d in eng.detectors]
        return self

    def __exit__(self, *exc) -> None:
        self.eng.detectors = self.detectors
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()

    def findings(self, out: list) -> list:
        """`out` (the replay's findings, a placeholder per interval) with the other process's
        in their places; its detectors' fields are copied back into the engine."""
        self.tap.flush(last=True)
        self.inbox.put(None)
        found, fields = self.found, self._result()
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

    def _send(self, message, last: bool) -> None:
        self.inbox.put(message)
        # Take in the findings of the batches done so far: unpickling them here, as the replay
        # goes on, rather than all at the end.
        while True:
            try:
                self._take(self.outbox.get_nowait())
            except queue.Empty:
                break
        if not last:
            self._acquire()  # the next batch's slot, once the other process is done with it

    def _acquire(self) -> None:
        while not self.free.acquire(timeout=1.0):
            self._alive()

    def _alive(self) -> None:
        if not self.proc.is_alive():
            while True:  # its last words, if any
                try:
                    self._take(self.outbox.get_nowait())
                except queue.Empty:
                    break
            raise RuntimeError("the inactivity process ended without a result")

    def _take(self, message):
        kind, payload = message
        if kind == "error":
            raise RuntimeError(f"the inactivity process failed:\n{payload}")
        if kind == "found":
            self.found.update(payload)
            return None
        return payload

    def _result(self) -> dict:
        while True:
            try:
                message = self.outbox.get(timeout=1.0)
            except queue.Empty:
                self._alive()
                continue
            fields = self._take(message)
            if fields is not None:
                return fields


class Batches:
    """The per-interval arrays of SLOTS batches, in memory shared with the forked process."""

    def __init__(self, n: int):
        def shared(dtype):
            size = SLOTS * BATCH * max(n, 1) * np.dtype(dtype).itemsize
            buf = mmap.mmap(-1, size)  # anonymous and shared: the fork sees the same pages
            return np.frombuffer(buf, dtype).reshape(SLOTS, BATCH, n)

        self.qs = shared(np.int64)
        self.kw = shared(np.float32)
        self.explained = shared(np.bool_)
        self.has = shared(np.bool_)


class _Quiet:
    """Stands in for high_load in the replaying engine (the Tap sends what it reads)."""

    KIND = high_load.KIND
    AFTER = high_load.AFTER
    FIELDS = high_load.FIELDS

    @staticmethod
    def tick(eng, t) -> list:
        return []


class Tap:
    """Stands in for inactivity in the replaying engine: copies what it and high_load read,
    interval by interval, and sends it on in batches."""

    KIND = inactivity.KIND
    AFTER = inactivity.AFTER
    FIELDS = inactivity.FIELDS

    def __init__(self, eng, shared: Batches, send):
        self.shared, self.send = shared, send
        self.slot = 0
        self.meta: list[tuple] = []
        self.hour_end = eng.hour_end  # the engine's, at the latest interval sent
        self.today = None  # the local day of the latest interval sent
        self.days: list[tuple[int, int]] = []  # day() calls since the latest interval

    def day(self, eng, end: int, d: int) -> list:
        self.days.append((end, d))
        return []

    def tick(self, eng, t) -> list:
        a, b = eng.a, self.shared
        at = self.slot, len(self.meta)
        b.qs[at] = a.quiet_since
        b.explained[at] = a.explained
        b.has[at] = t.has
        b.kw[at] = t.kw
        hours = None
        if eng.hour_end != self.hour_end:
            hours = []
            if self.hour_end is not None:
                for end in range(self.hour_end, eng.hour_end, 3600):
                    local = datetime.fromtimestamp(end - 1, eng.tz)
                    h, d = local.hour, routine.local_day(local) % eng.D
                    hours.append(
                        (h, d, a.quiet_thr[:, h].copy(), a.q_ring[:, h, d].copy(),
                         a.high_kw[:, h].copy())
                    )  # fmt: skip
            hours.append(eng.pop["quiet"].copy())
            self.hour_end = eng.hour_end
        days = None
        today = (t.now + t.utc_offset - 1) // 86400
        if self.days or today != self.today:
            # The rings' days before today change only when the day does: the day just ended
            # is the one slot to send (all of them the first time, or after a jump).
            if self.today is not None and today == self.today + 1:
                slot = (today - 1) % eng.D
                rings = (slot, a.act_bits[:, slot].copy(), a.seen_bits[:, slot].copy())
            else:
                rings = (None, a.act_bits.copy(), a.seen_bits.copy())
            days = (self.days, a.days_seen.copy(), rings)
            self.days, self.today = [], today
        self.meta.append((t.now, t.hour, t.utc_offset, eng.hour_end, hours, days))
        if len(self.meta) == BATCH:
            self.flush()
        return [MARK]

    def flush(self, last: bool = False) -> None:
        if self.meta or last:
            meta, self.meta = self.meta, []
            self.send((self.slot, meta), last)
            self.slot = (self.slot + 1) % SLOTS


def _work(eng, shared: Batches, inbox, outbox, free) -> None:
    """The other process: inactivity and high_load on the engine it was forked with, brought
    up to date interval by interval from the batches."""
    from lianxin.engine.core import Tick

    try:
        a = eng.a
        k = 0
        while (batch := inbox.get()) is not None:
            slot, meta = batch
            found: dict[int, list] = {}
            for i, (now, hour, offset, hour_end, hours, days) in enumerate(meta):
                if hours is not None:
                    *slots, pop = hours
                    for h, d, thr, q, high in slots:
                        a.quiet_thr[:, h] = thr
                        a.q_ring[:, h, d] = q
                        a.high_kw[:, h] = high
                    eng.pop["quiet"][...] = pop
                if days is not None:
                    calls, a.days_seen[...], (day, act, seen) = days
                    if day is None:
                        a.act_bits[...], a.seen_bits[...] = act, seen
                    else:
                        a.act_bits[:, day], a.seen_bits[:, day] = act, seen
                    for end, d in calls:
                        inactivity.day(eng, end, d)
                eng.now, eng.hour_end = now, hour_end
                a.quiet_since[...] = shared.qs[slot, i]
                a.explained[...] = shared.explained[slot, i]
                t = Tick(now, hour, offset, shared.has[slot, i], shared.kw[slot, i], *[None] * 10)
                f = inactivity.tick(eng, t)
                f += high_load.tick(eng, t)
                if f:
                    found[k] = f
                k += 1
            free.release()  # the slot may be filled again
            if found:
                outbox.put(("found", found))
        outbox.put(("done", {name: a[name] for name in FIELDS}))
    except BaseException:  # noqa: BLE001 - reported to the replaying process, which raises
        outbox.put(("error", traceback.format_exc()))
