"""The dead-man's switch on Lianxin itself: conditions computed from heartbeats, source
arrivals and the readings store, reconciled into system alerts that open and clear by themselves.

Each check is a function now -> list[Condition], registered with the kinds of alert it decides:
a check that fails to run leaves its kinds' open alerts as they are (not knowing is not healthy).
More checks can be plugged in with `register(kinds, fn)` (e.g. by the notification app).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from lianxin.health import conf
from lianxin.health.models import Heartbeat, Source, SystemAlert
from lianxin.health.signals import system_alert_cleared, system_alert_raised

log = logging.getLogger(__name__)
Kind = SystemAlert.Kind


@dataclass
class Condition:
    key: str
    kind: str
    subject: str
    detail: dict = field(default_factory=dict)


Check = Callable[[datetime], list[Condition]]
CHECKS: list[tuple[tuple[str, ...], Check]] = []


def register(kinds: tuple[str, ...], fn: Check) -> Check:
    CHECKS.append((tuple(kinds), fn))
    return fn


def _age(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds()


# ---- processes -----------------------------------------------------------------------------


def check_monitor(now: datetime) -> list[Condition]:
    """The monitor has not stepped in N minutes; its engine clock trails more than allowed.
    A monitor that never beat is not an alert (a fresh install); once seen, it is expected."""
    hb = Heartbeat.objects.filter(process="monitor").first()
    if hb is None:
        return []
    out = []
    silent = _age(now, hb.at)
    stale = max(
        conf.minutes("LIANXIN_MONITOR_STALE_MINUTES").total_seconds(), 3 * (hb.every_s or 0)
    )
    if silent > stale:
        out.append(
            Condition(
                "monitor_down",
                Kind.MONITOR_DOWN,
                "monitor",
                {
                    "silent_s": round(silent),
                    "allowed_s": round(stale),
                    "last_beat": hb.at.isoformat(),
                },
            )
        )
    if hb.clock is not None and hb.lag_s is not None:
        # The clock does not move between beats: the lag grows with the heartbeat's age.
        lag = hb.lag_s + max(0.0, silent)
        # Between beats the clock is expected to stand still for one interval (`every`).
        grace = conf.minutes("LIANXIN_LAG_GRACE_MINUTES").total_seconds()
        allowed = (hb.lateness_s or 0) + (hb.every_s or 0) + grace
        if lag > allowed:
            out.append(
                Condition(
                    "engine_lag",
                    Kind.ENGINE_LAG,
                    "monitor",
                    {
                        "lag_s": round(lag),
                        "allowed_s": round(allowed),
                        "clock": hb.clock.isoformat(),
                    },
                )
            )
    return out


def check_processes(now: datetime) -> list[Condition]:
    """Other long-running processes: silent for too long (unless they stopped cleanly)."""
    out = []
    floor = conf.minutes("LIANXIN_PROCESS_STALE_MINUTES").total_seconds()
    for hb in Heartbeat.objects.exclude(process="monitor").filter(stopped_at__isnull=True):
        silent = _age(now, hb.at)
        allowed = max(floor, 3 * (hb.every_s or 0))
        if silent > allowed:
            out.append(
                Condition(
                    f"process_down:{hb.process}",
                    Kind.PROCESS_DOWN,
                    hb.process,
                    {"silent_s": round(silent), "allowed_s": round(allowed)},
                )
            )
    return out


def check_backlogs(now: datetime) -> list[Condition]:
    """Any process that reports a backlog (the notification worker's outbox): not going down
    for too long. Pluggable by design: whatever beats with backlog=N is watched."""
    out = []
    allowed = conf.minutes("LIANXIN_BACKLOG_MINUTES").total_seconds()
    for hb in Heartbeat.objects.filter(backlog_since__isnull=False, backlog__gt=0):
        since = _age(now, hb.backlog_since)
        if since > allowed:
            out.append(
                Condition(
                    f"backlog:{hb.process}",
                    Kind.BACKLOG,
                    hb.process,
                    {"backlog": hb.backlog, "since_s": round(since), "allowed_s": round(allowed)},
                )
            )
    return out


# ---- data sources --------------------------------------------------------------------------


def usual_gap(gaps: list[float]) -> float | None:
    """The 90th percentile of the source's recent gaps (nearest rank), once enough are known."""
    if len(gaps) < conf.value("LIANXIN_SOURCE_MIN_GAPS"):
        return None
    ordered = sorted(gaps)
    return float(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))])


def allowed_silence(gaps: list[float]) -> float | None:
    usual = usual_gap(gaps)
    if usual is None:
        return None
    grace = conf.minutes("LIANXIN_SOURCE_GRACE_MINUTES").total_seconds()
    return max(usual * conf.value("LIANXIN_SOURCE_GAP_FACTOR"), usual + grace)


def check_sources(now: datetime) -> list[Condition]:
    """A source silent for longer than its own usual gap: a daily file is not late at night."""
    out = []
    for s in Source.objects.all():
        allowed = allowed_silence(s.gaps)
        silent = _age(now, s.last_seen_at)
        if allowed is not None and silent > allowed:
            out.append(
                Condition(
                    f"source_silent:{s.kind}:{s.name}",
                    Kind.SOURCE_SILENT,
                    f"{s.kind} {s.name}",
                    {
                        "silent_s": round(silent),
                        "usual_gap_s": round(usual_gap(s.gaps)),
                        "allowed_s": round(allowed),
                        "last_seen": s.last_seen_at.isoformat(),
                    },
                )
            )
    return out


# ---- transformer areas (concentrators) -----------------------------------------------------

AREA_RECENT = timedelta(hours=1)
AREA_BASELINE = timedelta(hours=24)
_area_cache: dict = {}


def check_areas(now: datetime) -> list[Condition]:
    """Of the meters of one transformer area that reported in the day before, a large share
    sent nothing in the last hour: the area's concentrator (or its link) is down. Judged at the
    engine's clock when a monitor beats (the time up to which data is due), else at now."""
    import polars as pl
    from django.conf import settings

    from lianxin.care.models import Meter
    from lianxin.store import ReadingsStore

    hb = Heartbeat.objects.filter(process="monitor").only("clock").first()
    ref = hb.clock if hb is not None and hb.clock is not None else now
    # The store read is the costly part: at most once a minute per process.
    cached = _area_cache.get("result")
    if (
        cached
        and time.monotonic() - cached[1] < 60
        and abs((cached[0] - ref).total_seconds()) < 900
    ):
        return cached[2]
    meters = pl.DataFrame(
        list(
            Meter.objects.filter(
                active=True, household__transformer_area__isnull=False
            ).values_list("number", "household__transformer_area__code")
        ),
        schema={"meter": pl.String, "area": pl.String},
        orient="row",
    )
    out: list[Condition] = []
    if meters.height:
        store = ReadingsStore(settings.LIANXIN_HOME / "readings")
        recent_start = ref - AREA_RECENT
        frame = store.read(None, recent_start - AREA_BASELINE, ref)
        if frame.height:
            # Per meter: did it report before the last hour (expected), and within it?
            per_meter = (
                frame.group_by("meter")
                .agg(first=pl.col("ts").min(), last=pl.col("ts").max())
                .filter(pl.col("first") < recent_start)
                .join(meters, on="meter", how="inner")
                .with_columns(silent=pl.col("last") < recent_start)
            )
            areas = per_meter.group_by("area").agg(
                meters=pl.len(),
                silent=pl.col("silent").sum(),
                examples=pl.col("meter").filter(pl.col("silent")).sort().head(5),
            )
            share = conf.value("LIANXIN_AREA_SILENT_SHARE")
            least = conf.value("LIANXIN_AREA_MIN_METERS")
            down = [
                row
                for row in areas.sort("area").iter_rows(named=True)
                if row["meters"] >= least and row["silent"] / row["meters"] >= share
            ]
            # Every area silent at once is the feed (a source alert) or data that comes in
            # batches, not one area's concentrator: judged only while other areas report.
            if len(down) == areas.height:
                down = []
            for row in down:
                out.append(
                    Condition(
                        f"concentrator_down:{row['area']}",
                        Kind.CONCENTRATOR_DOWN,
                        row["area"],
                        {
                            "silent": row["silent"],
                            "meters": row["meters"],
                            "since": recent_start.isoformat(),
                            "examples": row["examples"],
                        },
                    )
                )
    _area_cache["result"] = (ref, time.monotonic(), out)
    return out


register((Kind.MONITOR_DOWN, Kind.ENGINE_LAG), check_monitor)
register((Kind.PROCESS_DOWN,), check_processes)
register((Kind.BACKLOG,), check_backlogs)
register((Kind.SOURCE_SILENT,), check_sources)
register((Kind.CONCENTRATOR_DOWN,), check_areas)


# ---- conditions -> system alerts -----------------------------------------------------------


@dataclass
class Reconciled:
    open: list[SystemAlert]
    opened: list[SystemAlert]
    cleared: list[SystemAlert]
    failed: list[str]  # checks that could not run, with why


def reconcile(now: datetime | None = None) -> Reconciled:
    """Evaluate every check; open a system alert for each new condition and clear the open ones
    whose condition has ended. Safe to run from several processes at once."""
    now = now or timezone.now()
    current: dict[str, Condition] = {}
    unknown: set[str] = set()
    failed = []
    for kinds, fn in list(CHECKS):
        try:
            for c in fn(now):
                current[c.key] = c
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            log.exception("health check %s failed", fn.__name__)
            failed.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")
            unknown.update(kinds)
    opened, cleared = [], []
    existing = {a.key: a for a in SystemAlert.objects.filter(cleared_at__isnull=True)}
    for key, c in current.items():
        if key in existing:
            a = existing[key]
            if a.detail != c.detail:
                SystemAlert.objects.filter(pk=a.pk).update(detail=c.detail)
                a.detail = c.detail
            continue
        try:
            with transaction.atomic():
                a = SystemAlert.objects.create(
                    key=key[:400],
                    kind=c.kind,
                    subject=c.subject[:300],
                    detail=c.detail,
                    opened_at=now,
                )
        except IntegrityError:
            continue  # another process opened it a moment ago; it sends the signal
        existing[key] = a
        opened.append(a)
        system_alert_raised.send(sender=SystemAlert, alert=a)
    for key, a in list(existing.items()):
        if key in current or a.kind in unknown:
            continue
        cleared_at = max(now, a.opened_at)
        if SystemAlert.objects.filter(pk=a.pk, cleared_at__isnull=True).update(
            cleared_at=cleared_at
        ):
            a.cleared_at = cleared_at
            cleared.append(a)
            system_alert_cleared.send(sender=SystemAlert, alert=a)
        del existing[key]
    return Reconciled(sorted(existing.values(), key=lambda a: a.opened_at), opened, cleared, failed)


_due_lock = threading.Lock()
_last_run = [0.0]


def reconcile_if_due() -> None:
    """For the web process: re-check at most every LIANXIN_HEALTH_CHECK_SECONDS, so that it
    notices a dead monitor while serving pages, without a query storm."""
    every = conf.value("LIANXIN_HEALTH_CHECK_SECONDS")
    with _due_lock:
        if time.monotonic() - _last_run[0] < every:
            return
        _last_run[0] = time.monotonic()
    try:
        reconcile()
    except Exception:  # noqa: BLE001 - a page must still render; /healthz reports the failure
        log.exception("health reconcile failed")
