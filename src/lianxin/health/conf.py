"""The health checks' settings: Django settings of the same name, else environment variables,
else the defaults below (documented in docs/operations.md)."""

import os
from datetime import timedelta

from django.conf import settings

from lianxin.errors import LianxinError

DEFAULTS = {
    # The monitor has not finished a step for this long: monitor_down.
    "LIANXIN_MONITOR_STALE_MINUTES": 5.0,
    # The engine's clock may trail real time by the monitor's lateness plus this much.
    "LIANXIN_LAG_GRACE_MINUTES": 15.0,
    # Any other process (MQTT subscriber, watch folder, notification worker) silent this long,
    # or three of its own intervals if longer: process_down.
    "LIANXIN_PROCESS_STALE_MINUTES": 5.0,
    # A source is judged once this many gaps between its arrivals are known.
    "LIANXIN_SOURCE_MIN_GAPS": 3,
    # A source may be silent for its usual gap (the 90th percentile of its recent gaps) times
    # this factor, and at least its usual gap plus the grace below.
    "LIANXIN_SOURCE_GAP_FACTOR": 1.5,
    "LIANXIN_SOURCE_GRACE_MINUTES": 10.0,
    # Arrivals closer together than this are one arrival (spares a write per MQTT batch).
    "LIANXIN_SOURCE_RESOLUTION_SECONDS": 30.0,
    # A transformer area whose meters mostly reported in the day before but this share of them
    # sent nothing in the last hour: concentrator_down (only areas with enough meters).
    "LIANXIN_AREA_SILENT_SHARE": 0.5,
    "LIANXIN_AREA_MIN_METERS": 3,
    # A backlog (e.g. the notification outbox) that has not gone down for this long: backlog.
    "LIANXIN_BACKLOG_MINUTES": 10.0,
    # How often the web process re-checks while serving pages.
    "LIANXIN_HEALTH_CHECK_SECONDS": 15.0,
}


def value(name: str) -> float:
    if hasattr(settings, name):
        return float(getattr(settings, name))
    raw = os.environ.get(name, "").strip()
    if not raw:
        return float(DEFAULTS[name])
    try:
        v = float(raw)
    except ValueError as exc:
        raise LianxinError(f"{name}={raw!r} is not a number") from exc
    if v < 0:
        raise LianxinError(f"{name}={raw!r} must not be negative")
    return v


def minutes(name: str) -> timedelta:
    return timedelta(minutes=value(name))
