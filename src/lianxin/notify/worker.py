"""The notification worker: a plain loop in the healthchecks style (`sendalerts`).

Each pass: run the escalation steps that are due (writing outbox rows), then claim due
notifications one by one with a conditional UPDATE (0 rows: another worker won) and send them.
A claim is a lease: a worker killed between claim and send leaves the row to be claimed again
when the lease ends, and the repeat carries the same idempotency key. Delivery is therefore at
least once; a receiver that honours Idempotency-Key (or the SMTP Message-ID) sees one message.

Why not a task queue: the outbox is already the queue, in the same database and the same
transaction as the alert change; a worker that polls its partial index needs no broker and no
second copy of the work, and `lianxin demo` / `lianxin monitor` can run it in a thread.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.db import close_old_connections, connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import Action, AlertEvent, Status
from lianxin.engine.findings import Severity
from lianxin.notify import channels, service, wake
from lianxin.notify.models import Attempt, Channel, Escalation, Notification

MAX_ATTEMPTS = 6
BACKOFF_FIRST = timedelta(seconds=10)
BACKOFF_MAX = timedelta(minutes=15)


def lease() -> timedelta:
    return timedelta(seconds=float(os.environ.get("LIANXIN_NOTIFY_LEASE_SECONDS", "60")))


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_FIRST * 2 ** max(0, attempts - 1), BACKOFF_MAX)


@dataclass
class Pass:
    escalated: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    cancelled: int = 0


def senders() -> int:
    """Notifications sent at the same time: a provider that takes 300 ms to answer must not
    hold the hundredth alert of a grid storm for 30 s behind the others."""
    return max(1, int(os.environ.get("LIANXIN_NOTIFY_SENDERS", "8")))


def run_once(now: datetime | None = None, limit: int = 200) -> Pass:
    now = now or timezone.now()
    report = Pass(escalated=service.advance_due(now))
    due = Notification.objects.filter(
        Q(status=Notification.Status.PENDING, due_at__lte=now)
        | Q(status=Notification.Status.SENDING, claimed_until__lt=now)
    ).order_by("due_at", "id")
    rows = list(due.values_list("pk", "status", "claimed_until")[:limit])
    in_memory = connection.vendor == "sqlite" and connection.is_in_memory_db()
    if len(rows) <= 1 or senders() == 1 or connection.in_atomic_block or in_memory:
        # Inside a caller's transaction (tests, `--once` in a script) other connections would
        # not see its rows, and an in-memory SQLite refuses a second writer at once rather than
        # waiting: send from this thread.
        for row in rows:
            _claim_and_deliver(row, now, report)
        return report
    with ThreadPoolExecutor(max_workers=min(senders(), len(rows))) as pool:
        parts = list(pool.map(lambda row: _in_thread(row, now), rows))
    for part in parts:
        for f in fields(Pass):
            if f.name != "escalated":
                setattr(report, f.name, getattr(report, f.name) + getattr(part, f.name))
    return report


def _in_thread(row, now) -> Pass:
    part = Pass()
    try:
        _claim_and_deliver(row, now, part)
    finally:
        connection.close()  # each sender thread has its own connection
    return part


def _claim_and_deliver(row, now: datetime, report: Pass) -> None:
    pk, status, claimed = row
    # Claim: a conditional UPDATE; 0 rows means another worker won the row.
    won = Notification.objects.filter(pk=pk, status=status, claimed_until=claimed).update(
        status=Notification.Status.SENDING,
        claimed_until=now + lease(),
        attempts=F("attempts") + 1,
    )
    if won:
        deliver(Notification.objects.select_related("channel", "alert").get(pk=pk), now, report)


def next_due(now: datetime) -> float | None:
    """Seconds until the next notification or escalation step is due (None: nothing waits)."""
    times = [
        Notification.objects.filter(status=Notification.Status.PENDING).aggregate(t=Min("due_at"))[
            "t"
        ],
        Escalation.objects.filter(stopped_at__isnull=True).aggregate(t=Min("next_at"))["t"],
    ]
    times = [t for t in times if t is not None]
    return (min(times) - now).total_seconds() if times else None


def _hold(n: Notification, now: datetime, report: Pass) -> bool:
    """Quiet hours, silences and alerts that need nobody any more: not sent now."""
    alert = n.alert
    if alert is not None and alert.status in (Status.INHIBITED, Status.SILENCED, Status.RESOLVED):
        _finish(n, Notification.Status.CANCELLED, alert.status)
        report.cancelled += 1
        return True
    until, why = None, ""
    if alert is not None and not service.never_hidden(alert):
        silence = service.silence_for(alert, now)
        if silence is not None:
            until, why = silence.ends_at, _("maintenance silence: %(r)s") % {"r": silence.reason}
    if until is None and n.severity != Severity.CRITICAL and n.channel.in_quiet_hours(now):
        # Critical always goes out; anything else waits for the end of the quiet hours.
        until, why = _quiet_end(n.channel, now), _("quiet hours of %(c)s") % {"c": n.channel.name}
    if until is None:
        return False
    Notification.objects.filter(pk=n.pk).update(
        status=Notification.Status.PENDING,
        due_at=until,
        claimed_until=None,
        attempts=F("attempts") - 1,
        last_error=why,
    )
    if alert is not None:
        note = _("Held until %(t)s: %(why)s") % {
            "t": timezone.localtime(until).strftime("%m-%d %H:%M"),
            "why": why,
        }
        _event(
            n,
            Action.ESCALATION,
            now,
            note,
            {"held_until": until.isoformat(), "channel": n.channel.name, "to": n.address},
        )
    report.deferred += 1
    return True


def _quiet_end(channel: Channel, now: datetime) -> datetime:
    """The next local time the channel's quiet hours end (calendar maths in local time)."""
    local = timezone.localtime(now)
    end = local.replace(
        hour=channel.quiet_end.hour, minute=channel.quiet_end.minute, second=0, microsecond=0
    )
    if end <= local:
        end = timezone.make_aware(
            datetime.combine(local.date() + timedelta(days=1), channel.quiet_end),
            local.tzinfo,
        )
    return end


def deliver(n: Notification, now: datetime, report: Pass):
    if _hold(n, now, report):
        return
    message = channels.Message(
        title=n.title,
        text=n.text,
        link=n.link,
        key=n.key,
        address=n.address,
        severity=n.severity,
        language=n.language,
    )
    try:
        response = channels.send(n.channel, message)
    except channels.TransportError as exc:
        permanent = exc.permanent or n.attempts >= MAX_ATTEMPTS
        _record(n, now, ok=False, permanent=permanent, response=exc.message)
        if permanent:
            _finish(n, Notification.Status.FAILED, exc.message)
            Channel.objects.filter(pk=n.channel_id).update(last_error=exc.message[:300])
            report.failed += 1
        else:
            Notification.objects.filter(pk=n.pk).update(
                status=Notification.Status.PENDING,
                due_at=now + backoff(n.attempts),
                claimed_until=None,
                last_error=exc.message[:300],
            )
            report.retried += 1
        return
    except Exception as exc:  # noqa: BLE001 - a bug in one transport must not stop the worker
        _record(n, now, ok=False, permanent=False, response=f"{type(exc).__name__}: {exc}")
        # Pushed forward so one bad row cannot crash-loop the worker.
        Notification.objects.filter(pk=n.pk).update(
            status=Notification.Status.PENDING, due_at=now + BACKOFF_MAX, claimed_until=None
        )
        report.retried += 1
        return
    _record(n, now, ok=True, response=response)
    Notification.objects.filter(pk=n.pk).update(
        status=Notification.Status.SENT, sent_at=now, claimed_until=None, last_error=""
    )
    report.sent += 1


def _finish(n, status, why):
    Notification.objects.filter(pk=n.pk).update(
        status=status, claimed_until=None, last_error=str(why)[:300]
    )


def _record(n: Notification, now, ok: bool, response: str, permanent: bool = False):
    response = " ".join(str(response).split())[:300]
    with transaction.atomic():
        Attempt.objects.create(
            notification=n, at=now, ok=ok, permanent=permanent, response=response
        )
        if n.alert_id:
            result = (
                _("delivered")
                if ok
                else (_("failed for good") if permanent else _("failed, will retry"))
            )
            _event(
                n,
                Action.NOTIFIED if ok else Action.NOT_DELIVERED,
                now,
                f"{n.channel.name} → {n.address or n.get_to_display()}: {result} · {response}",
                {
                    "channel": n.channel.name,
                    "kind": n.channel.kind,
                    "to": n.address or n.to,
                    "attempt": n.attempts,
                    "ok": ok,
                    "permanent": permanent,
                    "response": response,
                    "key": n.key,
                },
            )


def _event(n, action, at, note, data):
    status = n.alert.status
    AlertEvent.objects.create(
        alert_id=n.alert_id,
        action=action,
        at=at,
        from_status=status,
        to_status=status,
        note=note,
        data=data,
    )


BEAT_EVERY = 15.0


def loop(stop: threading.Event, every: float = 0.5, out=None):
    """Run passes until `stop` is set. Errors of one pass are printed and the loop goes on."""
    from lianxin import health

    last_beat = 0.0
    while not stop.is_set():
        pause = every
        try:
            r = run_once()
            # The health checks watch this beat and backlog: a worker that stops, or stops
            # draining, is a system alert. Not every pass: a pass may come twice a second.
            if time.monotonic() - last_beat >= BEAT_EVERY:
                health.beat("notify", every=BEAT_EVERY, backlog=pending_count())
                last_beat = time.monotonic()
            if out and (r.sent or r.failed or r.escalated):
                print(
                    f"notify: sent {r.sent} failed {r.failed} retrying {r.retried} "
                    f"held {r.deferred} escalation rows {r.escalated}",
                    file=out,
                    flush=True,
                )
            # Sleep to the next due row (a grouped alarm's 2 s) rather than a whole poll, and
            # wake at once when this process commits outbox rows.
            due = next_due(timezone.now())
            if due is not None:
                pause = min(every, max(0.05, due))
        except Exception as exc:  # noqa: BLE001 - the worker outlives one bad pass
            if out:
                print(f"notify: pass failed: {type(exc).__name__}: {exc}", file=out, flush=True)
        finally:
            close_old_connections()
        if not stop.is_set():
            wake.wait(pause)
    try:
        health.stopped("notify")
    except Exception:  # noqa: BLE001 - stopping must not fail on a database that went away
        pass


def pending_count() -> int:
    """Notifications due and not yet sent: the backlog the health checks watch (one held for
    the end of quiet hours is not a backlog)."""
    return Notification.objects.filter(
        Q(status=Notification.Status.PENDING, due_at__lte=timezone.now())
        | Q(status=Notification.Status.SENDING)
    ).count()


def start_thread(out=None) -> tuple[threading.Thread, threading.Event]:
    """For `lianxin demo` and `lianxin monitor`: the worker beside them in the same process."""
    stop = threading.Event()
    t = threading.Thread(
        target=loop, args=(stop,), kwargs={"out": out}, daemon=True, name="notify-worker"
    )
    t.start()
    return t, stop
