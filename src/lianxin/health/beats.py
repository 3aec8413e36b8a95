"""Writing heartbeats and source arrivals."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime

from django.utils import timezone

from lianxin.health import conf
from lianxin.health.models import Heartbeat, Source

KEEP_GAPS = 50
_started = timezone.now()
# (kind, name) -> when this process last wrote an arrival: most arrivals need no query.
_last_written: dict[tuple[str, str], datetime] = {}
_lock = threading.Lock()


def beat(
    process: str,
    *,
    duration: float | None = None,
    clock: datetime | None = None,
    reference: datetime | None = None,
    lateness: float | None = None,
    behind: int | None = None,
    backlog: int | None = None,
    every: float | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
) -> Heartbeat:
    now = at or timezone.now()
    fields = {
        "host": socket.gethostname()[:200],
        "pid": os.getpid(),
        "at": now,
        "every_s": every,
        "duration_s": duration,
        "clock": clock,
        "lag_s": ((reference or now) - clock).total_seconds() if clock else None,
        "lateness_s": lateness,
        "behind": behind,
        "detail": detail or {},
        "stopped_at": None,
    }
    hb = Heartbeat.objects.filter(process=process).first()
    if hb is None or hb.pid != os.getpid() or hb.stopped_at is not None:
        fields["started_at"] = _started
    if backlog is not None:
        fields["backlog"] = backlog
        previous = hb.backlog if hb else None
        if backlog == 0 or (previous is not None and backlog < previous):
            fields["backlog_since"] = None  # empty or draining
        else:
            fields["backlog_since"] = (hb.backlog_since if hb else None) or now
    hb, _ = Heartbeat.objects.update_or_create(process=process[:200], defaults=fields)
    return hb


def stopped(process: str) -> None:
    Heartbeat.objects.filter(process=process).update(stopped_at=timezone.now())


def seen(kind: str, name: str, at: datetime | None = None) -> None:
    """Data arrived from a source; gaps shorter than the resolution are one arrival."""
    at = at or timezone.now()
    key = (kind, name[:300])
    resolution = conf.value("LIANXIN_SOURCE_RESOLUTION_SECONDS")
    with _lock:
        last = _last_written.get(key)
        if last is not None and 0 <= (at - last).total_seconds() < resolution:
            return
        _last_written[key] = at
    source, created = Source.objects.get_or_create(
        kind=kind, name=key[1], defaults={"first_seen_at": at, "last_seen_at": at, "arrivals": 1}
    )
    if created:
        return
    gap = (at - source.last_seen_at).total_seconds()
    if gap < resolution:
        return  # another process wrote it just now
    source.gaps = (list(source.gaps) + [round(gap, 3)])[-KEEP_GAPS:]
    source.last_seen_at = at
    source.arrivals += 1
    source.save(update_fields=["gaps", "last_seen_at", "arrivals"])


def forget(kind: str, name: str) -> None:
    """A source retired on purpose (a revoked token): its silence is no longer watched."""
    Source.objects.filter(kind=kind, name=name[:300]).delete()
    with _lock:
        _last_written.pop((kind, name[:300]), None)


def forget_written() -> None:
    """Forget this process's arrival cache (tests that move the clock)."""
    with _lock:
        _last_written.clear()


def monitor_beat(monitor, report, duration: float, every: float, reference=None) -> Heartbeat:
    """The monitor's heartbeat after a step: its engine clock against `reference` (real time,
    or the demo's clock), and the readings already stored but not judged yet."""
    clock = (
        datetime.fromtimestamp(monitor.engine.now, tz=UTC)
        if monitor.engine.now is not None
        else None
    )
    reference = reference or timezone.now()
    behind = None
    if clock is not None:
        t0 = time.perf_counter()
        behind = monitor.stores.readings.read(None, clock, reference).height
        duration += time.perf_counter() - t0
    return beat(
        "monitor",
        duration=round(duration, 3),
        clock=clock,
        reference=reference,
        lateness=monitor.lateness.total_seconds(),
        behind=behind,
        every=every,
        detail={
            "readings": report.readings,
            "events": report.events,
            "findings": len(report.findings),
            "alerts": report.alerts,
        },
    )
