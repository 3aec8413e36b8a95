"""The health report that /healthz returns as JSON and `lianxin status` prints as a table."""

from __future__ import annotations

import os
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def store_reachable() -> dict:
    path = settings.LIANXIN_HOME / "readings"
    try:
        path.mkdir(parents=True, exist_ok=True)
        next(os.scandir(path), None)
        ok = os.access(path, os.R_OK | os.W_OK | os.X_OK)
        return {"ok": ok, "path": str(path), **({} if ok else {"error": "not writable"})}
    except OSError as exc:
        return {"ok": False, "path": str(path), "error": f"{type(exc).__name__}: {exc}"}


def database_reachable() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health report
        return {"ok": False, "vendor": connection.vendor, "error": f"{type(exc).__name__}: {exc}"}


def build(now: datetime | None = None) -> dict:
    """Run the checks and describe everything; report["healthy"] is what the probes act on."""
    now = now or timezone.now()
    report = {"checked_at": _iso(now), "database": database_reachable(), "store": store_reachable()}
    if not report["database"]["ok"]:
        report.update(healthy=False, status="unhealthy", processes=[], sources=[], system_alerts=[])
        return report
    from lianxin.health.checks import allowed_silence, reconcile, usual_gap
    from lianxin.health.models import Heartbeat, Source

    result = reconcile(now)
    report["processes"] = [
        {
            "process": h.process,
            "host": h.host,
            "pid": h.pid,
            "started_at": _iso(h.started_at),
            "last_beat": _iso(h.at),
            "age_s": round((now - h.at).total_seconds(), 1),
            "every_s": h.every_s,
            "step_s": h.duration_s,
            "engine_clock": _iso(h.clock),
            "lag_s": None if h.lag_s is None else round(h.lag_s + (now - h.at).total_seconds()),
            "lateness_s": h.lateness_s,
            "readings_behind": h.behind,
            "backlog": h.backlog,
            "stopped_at": _iso(h.stopped_at),
            "last_step": h.detail,
        }
        for h in Heartbeat.objects.all()
    ]
    report["sources"] = [
        {
            "kind": s.kind,
            "name": s.name,
            "last_seen": _iso(s.last_seen_at),
            "silent_s": round((now - s.last_seen_at).total_seconds()),
            "usual_gap_s": usual_gap(s.gaps),
            "allowed_s": allowed_silence(s.gaps),
        }
        for s in Source.objects.all()
    ]
    report["system_alerts"] = [
        {
            "kind": a.kind,
            "subject": a.subject,
            "opened_at": _iso(a.opened_at),
            "for_s": round((now - a.opened_at).total_seconds()),
            "detail": a.detail,
        }
        for a in result.open
    ]
    report["failed_checks"] = result.failed
    healthy = report["store"]["ok"] and not result.open and not result.failed
    report["healthy"] = healthy
    report["status"] = "ok" if healthy else "unhealthy"
    return report
