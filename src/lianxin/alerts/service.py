"""Findings in, alerts out; and the case steps that belong to the alert itself.

The monitor calls apply_findings(findings) and nothing else. It is idempotent on
(finding_id, event): a finding applied twice changes nothing the second time.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, Exists, OuterRef, When
from django.db.models.expressions import RawSQL
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import (
    ACTIVE,
    NO_RERAISE_OUTCOMES,
    NOT_RESOLVED,
    RERAISE_KINDS,
    Action,
    Alert,
    AlertEvent,
    AppliedFinding,
    AwayPeriod,
    Outcome,
    Status,
    TransitionError,
)
from lianxin.alerts.signals import step
from lianxin.care.models import CareRecipient, Consent, Household, TransformerArea
from lianxin.engine.findings import SEVERITY_RANK, Finding, Kind, Severity
from lianxin.errors import LianxinError

log = logging.getLogger(__name__)

# A grid outage inhibits these per-home alarms of the homes inside it.
INHIBITED_BY_OUTAGE = {Kind.NO_POWER.value, Kind.INACTIVITY.value}


def alert_key(finding: Finding) -> str:
    return f"{finding.kind}|{finding.subject}"


class UnknownSubject(LianxinError):
    """A finding names a household or transformer area this database does not know (deleted)."""


def apply_findings(
    findings: Iterable[Finding], now: datetime | None = None, skipped: list | None = None
) -> list[Alert]:
    """Open, update or clear alerts from findings; returns the alerts touched, in order.

    One bad finding never stops the others: a finding that names a household or transformer
    area this database does not know (deleted since the engine learned it), or that fails for
    any reason of its own, is logged naming it and skipped, and appended to `skipped` (when
    given) as (finding, reason). Only a database failure (locked, down) propagates, so the
    caller retries the whole step and nothing is lost. A finding about a home
    where nobody is enrolled with consent to monitoring opens no alert (the engine watches every
    home of a transformer area to tell a grid outage from a fault at home; the duty room acts
    only for people who agreed): it is recorded as applied, with no alert.
    """
    now = now or timezone.now()
    # Grid outages raised first: the homes' alarms of the same step then open already
    # inhibited, and no per-home notification has to wait to see whether an outage covers it.
    findings = sorted(findings, key=lambda f: (f.kind, f.event) != (Kind.GRID_OUTAGE, "raised"))
    known = _Known(findings)
    # First the findings that touch no alert (most of a burst), recorded together; which ones
    # they are does not depend on the others, so they need not wait their turn.
    findings = _apply_unwatched(findings, now, known)
    known.read_applied(findings)
    # One transaction per STEP_CHUNK findings, a savepoint per finding: what apps above write
    # about these alerts (notify's outbox) is gathered and written once, at the chunk's end,
    # and commits or rolls back with them. Chunks, so that a catch-up step of thousands of
    # findings does not hold SQLite's write lock past the web's timeout. A database failure
    # propagates; the caller retries the step, which is idempotent.
    chunks = [findings[i : i + STEP_CHUNK] for i in range(0, len(findings), STEP_CHUNK)] or [[]]
    touched: list[Alert] = []
    seen: set[int] = set()  # pks of `touched`: a burst touches thousands, `in` on a list is slow
    for i, chunk in enumerate(chunks):
        try:
            with transaction.atomic():
                step.send(sender=Alert, phase="begin", now=now)
                if i == 0:
                    release_expired_silences(now)
                _apply_chunk(chunk, now, skipped, touched, seen, known)
                if i == len(chunks) - 1:
                    # After the findings: a clear among them (the data since a close) stops
                    # its re-raise.
                    touched += reraise_persisting(now)
                step.send(sender=Alert, phase="end", now=now)
        finally:
            step.send(sender=Alert, phase="close", now=now)
    return touched


STEP_CHUNK = 250
# Findings that touch no alert are recorded this many to a transaction: on SQLite ~0.1 s each,
# so that the web's writes wait no longer; PostgreSQL does not lock readers or other writers
# out, and a burst of ~30 k goes in one statement (0.45 s against 0.8 s in six).
QUIET_CHUNK = {"sqlite": 5000}
QUIET_CHUNK_DEFAULT = 50_000


def _batches(values) -> list[list]:
    """`values` in lists short enough for one IN (...) each (SQLite allows 999 parameters in
    older builds)."""
    values = list(values)
    size = min(connection.features.max_query_params or 5000, 5000) - 50
    return [values[i : i + size] for i in range(0, len(values), size)]


def _in(values, pks: bool = False) -> list:
    """Right sides for `field__in=`, one query each, covering `values` (none for none): the
    values as a single parameter, a JSON array, on SQLite and PostgreSQL. A burst at a million
    homes names tens of thousands of homes and findings; as an IN list, preparing and quoting
    each value took most of the look-ups' time (SQLite: 1 s of 2; PostgreSQL: 1.1 s), and
    SQLite's parameter limit cut them into several queries. `pks`: the values are primary
    keys (compared as bigint on PostgreSQL); otherwise text, whatever they look like."""
    values = list(values)
    if not values:
        return []
    if connection.vendor == "sqlite":
        return [RawSQL("SELECT value FROM json_each(%s)", (json.dumps(values),))]
    if connection.vendor == "postgresql":
        cast = "::bigint" if pks else ""
        sql = f"SELECT (jsonb_array_elements_text(%s::jsonb)){cast}"
        return [RawSQL(sql, (json.dumps(values),))]
    return _batches(values)


class _Known:
    """What the step's findings need to look up, read with one query (per few thousand
    findings) for the whole step instead of per finding: the homes they name (code -> (pk,
    transformer area pk)), which of those have someone enrolled with consent, and
    (read_applied) which findings were applied already. Homes as tuples, not model instances:
    a burst names tens of thousands of homes and only the ~1 % watched ones open alerts; those
    are read as instances when first needed (`home`)."""

    def __init__(self, findings: list[Finding]):
        watching = CareRecipient.objects.filter(
            household=OuterRef("pk"),
            consents__scope=Consent.Scope.MONITORING,
            consents__withdrawn_at__isnull=True,
        )
        self.homes: dict[str, tuple[int, int]] = {}
        self.watched: set[int] = set()
        for codes in _in({f.household_id for f in findings if f.household_id}):
            for code, pk, ta, watched in (
                Household.objects.filter(code__in=codes)
                .annotate(watched=Exists(watching))
                .order_by()
                .values_list("code", "pk", "transformer_area_id", "watched")
            ):
                self.homes[code] = (pk, ta)
                if watched:
                    self.watched.add(pk)
        self.applied: set[tuple[str, str]] = set()
        self._instances: dict[str, Household] | None = None

    def read_applied(self, findings: list[Finding]):
        """Which of `findings` were applied already (the findings recorded together need not
        ask: their insert skips those recorded before)."""
        for ids in _in({f.finding_id for f in findings}):
            self.applied.update(
                AppliedFinding.objects.filter(finding_id__in=ids)
                .order_by()
                .values_list("finding_id", "event")
            )

    def is_watched(self, code: str | None) -> bool:
        home = self.homes.get(code)
        return home is not None and home[0] in self.watched

    def home(self, code: str) -> Household | None:
        """The home as an instance (with its transformer area); the step's watched homes are
        read together at the first call, any other on its own."""
        if self._instances is None:
            self._instances = {
                h.code: h
                for pks in _in(self.watched, pks=True)
                for h in Household.objects.filter(pk__in=pks).select_related("transformer_area")
            }
        if code not in self._instances and code in self.homes:
            self._instances[code] = (
                Household.objects.filter(code=code).select_related("transformer_area").first()
            )
        return self._instances.get(code)


def _apply_chunk(findings, now, skipped, touched: list[Alert], seen: set[int], known) -> None:
    opened = _open_together(findings, now, known)
    for finding in findings:
        if id(finding) in opened:
            touched.append(opened[id(finding)])
            seen.add(opened[id(finding)].pk)
            continue
        try:
            try:
                step.send(sender=Alert, phase="finding", now=now)
                applied, alert = _apply_one(finding, now, known)
            except IntegrityError:
                # Another writer (a second monitor) applied this finding, or opened the alert of
                # its key, at the same instant: its transaction has committed; apply again on top.
                step.send(sender=Alert, phase="undo", now=now)
                step.send(sender=Alert, phase="finding", now=now)
                applied, alert = _apply_one(finding, now)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - one finding must not stop the others
            step.send(sender=Alert, phase="undo", now=now)
            reason = str(exc) if isinstance(exc, UnknownSubject) else f"{type(exc).__name__}: {exc}"
            log.log(
                logging.WARNING if isinstance(exc, UnknownSubject) else logging.ERROR,
                "finding %s (%s %s) skipped: %s",
                finding.finding_id,
                finding.kind,
                finding.subject,
                reason,
                exc_info=not isinstance(exc, UnknownSubject),
            )
            if skipped is not None:
                skipped.append((finding, reason))
            continue
        if applied and alert is not None and alert.pk not in seen:
            touched.append(alert)
            seen.add(alert.pk)


def _apply_unwatched(findings: list[Finding], now, known: _Known) -> list[Finding]:
    """Record as applied, with one insert per QUIET_CHUNK findings in a transaction of its own
    and without a savepoint each, the findings that open, update and clear no alert: about a
    known home where nobody is enrolled with consent to monitoring (most of a burst at a
    million homes, where ~1 % of homes are), raised, or cleared with no alert of theirs to
    clear (one raised before a consent was withdrawn is still cleared one by one). Exactly what
    _apply_one would record for them; one recorded before is skipped by the insert, as
    _apply_one skips it. Returns the other findings, to be applied one by one."""
    candidates = [
        f
        for f in findings
        if f.kind != Kind.GRID_OUTAGE
        and f.household_id in known.homes
        and not known.is_watched(f.household_id)
    ]
    clears = [f for f in candidates if f.event != "raised"]
    with_alert, open_keys = set(), set()
    for ids in _in({f.finding_id for f in clears}):
        with_alert.update(
            AppliedFinding.objects.filter(finding_id__in=ids, event="raised", alert__isnull=False)
            .order_by()
            .values_list("finding_id", flat=True)
        )
    for keys in _in({alert_key(f) for f in clears}):
        open_keys.update(
            Alert.objects.filter(key__in=keys)
            .exclude(status=Status.RESOLVED)  # the partial unique index's condition
            .order_by()
            .values_list("key", flat=True)
        )
    chosen = {id(f) for f in candidates}
    quiet: dict[tuple[str, str], Finding] = {}
    rest = []
    for f in findings:
        if id(f) not in chosen or (
            f.event != "raised" and (f.finding_id in with_alert or alert_key(f) in open_keys)
        ):
            rest.append(f)
        else:
            quiet.setdefault((f.finding_id, f.event), f)  # the same finding twice: once
    items = list(quiet.items())
    chunk = QUIET_CHUNK.get(connection.vendor, QUIET_CHUNK_DEFAULT)
    for i in range(0, len(items), chunk):
        with transaction.atomic():
            # Conflicts ignored: a second monitor that recorded one at the same instant.
            _record_applied(
                [(f, None, f.brief()) for _once, f in items[i : i + chunk]],
                now,
                ignore_conflicts=True,
            )
        known.applied.update(once for once, _f in items[i : i + chunk])
    return rest


def _record_applied(rows: list[tuple[Finding, int | None, dict]], now, ignore_conflicts=False):
    """Insert the AppliedFinding rows of (finding, alert pk, what is kept of it): with one COPY
    (PostgreSQL) or one executemany (SQLite, where it is as fast: one statement reading the
    rows from a JSON parameter measured no faster there). bulk_create builds a model and
    prepares every value through its field (~20 µs a value): seconds for the ~30 k findings
    of a burst at a million homes. A conflict raises IntegrityError unless ignored."""
    if not rows:
        return
    meta = AppliedFinding._meta
    fields = [meta.get_field(n) for n in ("finding_id", "event", "alert", "applied_at", "finding")]
    qn = connection.ops.quote_name
    table, columns = qn(meta.db_table), ", ".join(qn(f.column) for f in fields)
    into = f"INSERT INTO {table} ({columns}) "
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    at = fields[3].get_db_prep_save(now, connection)
    encode = (fields[4].encoder or json.JSONEncoder)().encode  # what the field does
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: half the time of one INSERT … ON CONFLICT reading the rows from a JSON
            # parameter (0.2 s against 0.45 s for a burst's ~30 k; executemany, 1.7 s). COPY
            # cannot skip a conflict: a row recorded before (a retried step, a second monitor
            # at the same instant) fails it, in a savepoint, and that rare case goes by the
            # INSERT.
            def copy():
                with (
                    connection.wrap_database_errors,
                    cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as out,
                ):
                    for f, a, kept in rows:
                        out.write_row((f.finding_id, f.event, a, at, encode(kept)))

            if not ignore_conflicts:
                copy()
                return
            try:
                with transaction.atomic():
                    copy()
                return
            except IntegrityError:
                pass
            rows_json = json.dumps(
                [{"f": f.finding_id, "e": f.event, "a": a, "d": kept} for f, a, kept in rows],
                cls=fields[4].encoder,
            )
            select = (
                "SELECT r.f, r.e, r.a, %s, r.d FROM jsonb_to_recordset(%s::jsonb) "
                "AS r(f text, e text, a bigint, d jsonb)"
            )
            cursor.execute(into + select + tail, (at, rows_json))
            return
        cursor.executemany(
            into + f"VALUES ({', '.join(['%s'] * len(fields))})" + tail,
            [(f.finding_id, f.event, a, at, encode(kept)) for f, a, kept in rows],
        )


def _open_together(findings: list[Finding], now, known: _Known) -> dict[int, Alert]:
    """Open, with one insert per table and one savepoint for them all, the alerts of the
    findings that open a plain new alert: raised about a watched home, with no open alert of
    their key, not inside a grid outage or an away period, and the only finding of the chunk
    with that key or finding id (so applying them before the chunk's others changes nothing;
    a chunk with a grid outage finding goes one by one). Each gets the rows _raise and
    _apply_one would write: the alert, its OPENED event, its AppliedFinding. If anything fails,
    the savepoint rolls back (with the notification chains asked for) and they are applied one
    by one, where a bad finding is skipped alone. Returns {id(finding): alert} of those opened.

    A burst's per-alert cost was ~10 queries (two savepoints, the key and outage and away
    look-ups, three inserts); here it is a handful per chunk."""
    if not connection.features.can_return_rows_from_bulk_insert or any(
        f.kind == Kind.GRID_OUTAGE for f in findings
    ):
        return {}
    keys = Counter(alert_key(f) for f in findings)
    ids = Counter(f.finding_id for f in findings)
    fresh = [
        f
        for f in findings
        if f.event == "raised"
        and keys[alert_key(f)] == 1
        and ids[f.finding_id] == 1
        and (f.finding_id, f.event) not in known.applied
        and known.is_watched(f.household_id)
    ]
    if len(fresh) < 2:
        return {}  # one alone costs the same one by one
    # exclude(status=resolved), not status__in: the same condition as the partial unique
    # index on key, so SQLite looks the keys up in it instead of scanning open alerts.
    taken = set(
        Alert.objects.filter(key__in=[alert_key(f) for f in fresh])
        .exclude(status=Status.RESOLVED)
        .values_list("key", flat=True)
    )
    fresh = [f for f in fresh if alert_key(f) not in taken]
    if any(f.kind in INHIBITED_BY_OUTAGE for f in fresh):
        covered = {
            code
            for households in Alert.objects.filter(
                kind=Kind.GRID_OUTAGE.value,
                status__in=NOT_RESOLVED,
                condition_cleared_at__isnull=True,
            ).values_list("households", flat=True)
            for code in households
        }
        fresh = [
            f for f in fresh if f.kind not in INHIBITED_BY_OUTAGE or f.household_id not in covered
        ]
    if any(f.kind in AwayPeriod.SILENCES for f in fresh):
        away = set(
            AwayPeriod.objects.filter(
                household_id__in=[known.homes[f.household_id][0] for f in fresh],
                starts_at__lte=now,
                ends_at__gt=now,
            ).values_list("household_id", flat=True)
        )
        fresh = [
            f
            for f in fresh
            if f.kind not in AwayPeriod.SILENCES or known.homes[f.household_id][0] not in away
        ]
    if len(fresh) < 2:
        return {}
    step.send(sender=Alert, phase="finding", now=now)
    try:
        with transaction.atomic():
            alerts = []
            for f in fresh:
                home, ta = known.homes[f.household_id]
                alert = Alert(
                    kind=f.kind.value,
                    key=alert_key(f),
                    household_id=home,
                    transformer_area_id=ta,
                    reason_en=f.reason_en,
                    reason_zh=f.reason_zh,
                    evidence=f.evidence,
                    started_at=f.started_at,
                    detected_at=f.detected_at,
                    last_detected_at=f.detected_at,
                    opened_at=now,
                )
                alert.set_severity(f.severity)
                alerts.append(alert)
            Alert.objects.bulk_create(alerts)
            events = [
                AlertEvent(
                    alert=alert,
                    action=Action.OPENED,
                    data={"finding_id": f.finding_id},
                    at=now,
                    from_status=alert.status,
                    to_status=alert.status,
                )
                for f, alert in zip(fresh, alerts, strict=True)
            ]
            AlertEvent.objects.bulk_create(events)
            # What save() would have signalled, alert then event, finding by finding:
            # lianxin.notify starts each new alert's chain from its OPENED event.
            for alert, event in zip(alerts, events, strict=True):
                post_save.send(sender=Alert, instance=alert, created=True, raw=False,
                               using=alert._state.db, update_fields=None)  # fmt: skip
                post_save.send(sender=AlertEvent, instance=event, created=True, raw=False,
                               using=event._state.db, update_fields=None)  # fmt: skip
            _record_applied(
                [(f, a.pk, f.to_dict()) for f, a in zip(fresh, alerts, strict=True)], now
            )
    except (OperationalError, InterfaceError):
        raise
    except Exception:  # noqa: BLE001 - one by one instead, where a bad finding is skipped alone
        step.send(sender=Alert, phase="undo", now=now)
        log.info("%d new alerts opened one by one instead of together", len(fresh), exc_info=True)
        return {}
    known.applied |= {(f.finding_id, f.event) for f in fresh}
    return {id(f): alert for f, alert in zip(fresh, alerts, strict=True)}


def _apply_one(finding: Finding, now, known: _Known | None = None) -> tuple[bool, Alert | None]:
    """`known`: the step's look-ups read at its start. The retry after a concurrent writer's
    IntegrityError goes without, so it sees what that writer committed since."""
    once = (finding.finding_id, finding.event)
    with transaction.atomic():
        if known is not None:
            if once in known.applied:
                return False, None
        elif AppliedFinding.objects.filter(
            finding_id=finding.finding_id, event=finding.event
        ).exists():
            return False, None
        if finding.event == "raised":
            alert = _raise(finding, now, known)
        else:
            alert = _clear(finding, now)
        AppliedFinding.objects.create(
            finding_id=finding.finding_id,
            event=finding.event,
            alert=alert,
            applied_at=now,
            finding=_record(finding, alert, known),
        )
    if known is not None:
        known.applied.add(once)  # the same finding twice in one step is applied once
    return True, alert


def _record(finding: Finding, alert: Alert | None, known: _Known | None = None) -> dict:
    """What is kept of an applied finding: all of it, unless it is about a home where nobody
    is enrolled with consent to monitoring and touched no alert. Then only what names it
    (kind, severity, home, event, when): the engine watches such a home only to judge its
    transformer area, and its reasons and evidence (when the home was quiet, what it used)
    describe the life of someone who did not agree to be watched; the care database does not
    keep them. (Most of a burst at a million homes is such findings: it is also ~0.6 kB of
    ~0.9 kB a finding.)"""
    if alert is not None or finding.household_id is None:
        return finding.to_dict()
    if known is not None and finding.household_id in known.homes:
        watched = known.is_watched(finding.household_id)
    else:
        watched = CareRecipient.objects.filter(
            household__code=finding.household_id,
            consents__scope=Consent.Scope.MONITORING,
            consents__withdrawn_at__isnull=True,
        ).exists()
    return finding.to_dict() if watched else finding.brief()


def _subject(finding: Finding, known: _Known | None = None):
    if finding.kind == Kind.GRID_OUTAGE:
        ta = TransformerArea.objects.filter(code=finding.transformer_area).first()
        if ta is None:
            raise UnknownSubject(
                f"finding {finding.finding_id}: unknown transformer_area "
                f"{finding.transformer_area!r}"
            )
        return None, ta
    home = known.home(finding.household_id) if known is not None else None
    if home is None:
        home = Household.objects.filter(code=finding.household_id).first()
    if home is None:
        raise UnknownSubject(
            f"finding {finding.finding_id}: unknown household_id {finding.household_id!r}"
        )
    return home, home.transformer_area


def _watched(home: Household) -> bool:
    return CareRecipient.objects.filter(
        household=home,
        consents__scope=Consent.Scope.MONITORING,
        consents__withdrawn_at__isnull=True,
    ).exists()


def _raise(finding: Finding, now, known: _Known | None = None) -> Alert | None:
    home, ta = _subject(finding, known)
    if home is not None:
        watched = home.pk in known.watched if known is not None else _watched(home)
        if not watched:
            return None
    key = alert_key(finding)
    alert = Alert.objects.select_for_update().filter(key=key, status__in=NOT_RESOLVED).first()
    if alert is not None:
        _update(alert, finding, now)
        return alert
    reason_en, reason_zh = _reasons(finding, ta)
    alert = Alert(
        kind=finding.kind.value,
        key=key,
        household=home,
        transformer_area=ta,
        reason_en=reason_en,
        reason_zh=reason_zh,
        evidence=finding.evidence,
        started_at=finding.started_at,
        detected_at=finding.detected_at,
        last_detected_at=finding.detected_at,
        opened_at=now,
    )
    alert.set_severity(finding.severity)
    if finding.kind == Kind.GRID_OUTAGE:
        codes = list(finding.households) or list(ta.households.values_list("code", flat=True))
        alert.households = codes
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:
        # Another writer opened the alert of this key first: update theirs.
        alert = Alert.objects.get(key=key, status__in=NOT_RESOLVED)
        _update(alert, finding, now)
        return alert
    alert.log(Action.OPENED, data={"finding_id": finding.finding_id}, at=now)
    if finding.kind == Kind.GRID_OUTAGE:
        _inhibit_homes(alert, now)
    else:
        _inhibit_or_silence_new(alert, now)
    return alert


def _reasons(finding: Finding, ta: TransformerArea | None) -> tuple[str, str]:
    """The finding's reasons, with a grid outage's transformer area called by its name (the
    engine knows areas by code only)."""
    en, zh = finding.reason_en, finding.reason_zh
    if finding.kind == Kind.GRID_OUTAGE and ta is not None and ta.name:
        en = en.replace(ta.code, f"{ta.name_en or ta.name} ({ta.code})")
        zh = zh.replace(ta.code, ta.name)
    return en, zh


def _update(alert: Alert, finding: Finding, now=None):
    """Deduplication: the open alert of this key takes the newer reason and time."""
    old_rank = alert.severity_rank
    recurred = alert.condition_cleared_at is not None
    alert.reason_en, alert.reason_zh = _reasons(finding, alert.transformer_area)
    alert.evidence = finding.evidence
    alert.last_detected_at = max(alert.last_detected_at, finding.detected_at)
    alert.condition_cleared_at = None
    if SEVERITY_RANK[Severity(finding.severity)] > old_rank:
        alert.set_severity(finding.severity)
    if finding.kind == Kind.GRID_OUTAGE and finding.households:
        alert.households = sorted(set(alert.households) | set(finding.households))
    alert.save()
    data = {"finding_id": finding.finding_id}
    if alert.severity_rank > old_rank:
        # At the step's time (the notification chain restarts from it).
        alert.log(Action.ESCALATED, data=data | {"severity": alert.severity}, at=now)
    elif recurred:
        alert.log(Action.RECURRED, data=data, at=now)
    if finding.kind == Kind.GRID_OUTAGE:
        _inhibit_homes(alert, timezone.now())


def covering_outage(home: Household) -> Alert | None:
    # households is a JSON list; filtering it in Python keeps the query the same on SQLite
    # and PostgreSQL, and there are only ever a handful of active outages.
    for outage in Alert.objects.filter(
        kind=Kind.GRID_OUTAGE.value, status__in=NOT_RESOLVED, condition_cleared_at__isnull=True
    ).order_by("-opened_at"):
        if home.code in outage.households:
            return outage
    return None


def active_away(home: Household, at) -> AwayPeriod | None:
    return (
        AwayPeriod.objects.filter(household=home, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )


def _inhibit_or_silence_new(alert: Alert, now):
    if alert.kind in INHIBITED_BY_OUTAGE:
        outage = covering_outage(alert.household)
        if outage is not None:
            alert.parent = outage
            alert.transition(
                Status.INHIBITED, action=Action.INHIBITED, data={"outage": outage.pk}, at=now
            )
            return
    if alert.kind in AwayPeriod.SILENCES:
        away = active_away(alert.household, now)
        if away is not None:
            alert.transition(
                Status.SILENCED,
                action=Action.SILENCED,
                note=away.comment,
                data={"away_period": away.pk},
                at=now,
            )


def _inhibit_homes(outage: Alert, now):
    """Mute the no_power/inactivity alarms of homes inside the outage that nobody works yet."""
    for alert in Alert.objects.filter(
        household__code__in=outage.households,
        kind__in=INHIBITED_BY_OUTAGE,
        status=Status.OPEN,
    ):
        alert.parent = outage
        alert.transition(
            Status.INHIBITED, action=Action.INHIBITED, data={"outage": outage.pk}, at=now
        )


def _clear(finding: Finding, now) -> Alert | None:
    applied = (
        AppliedFinding.objects.filter(finding_id=finding.finding_id, event="raised")
        .select_related("alert")
        .first()
    )
    alert = applied.alert if applied else None
    if alert is None:
        alert = Alert.objects.filter(key=alert_key(finding), status__in=NOT_RESOLVED).first()
    if alert is not None and alert.status == Status.RESOLVED:
        # Closed before the meter agreed: now it does, so the case is not raised again; the
        # alert raised again meanwhile (same key) clears with it.
        if alert.condition_cleared_at is None:
            alert.condition_cleared_at = finding.detected_at
            alert.reraise_pending = False
            alert.save(update_fields=["condition_cleared_at", "reraise_pending"])
            alert.log(Action.CLEARED, data={"finding_id": finding.finding_id}, at=now)
        again = Alert.objects.filter(key=alert.key, status__in=NOT_RESOLVED).first()
        if again is None:
            return alert
        alert = again
    if alert is None:
        return alert
    alert.condition_cleared_at = finding.detected_at
    alert.save(update_fields=["condition_cleared_at"])
    alert.log(Action.CLEARED, data={"finding_id": finding.finding_id}, at=now)
    if alert.kind == Kind.GRID_OUTAGE:
        # Power is back: a home that still has no power (or no activity) is a case of its own.
        for child in alert.children.filter(
            status=Status.INHIBITED, condition_cleared_at__isnull=True
        ):
            child.transition(
                Status.OPEN, action=Action.RELEASED, note=_("The grid outage is over."), at=now
            )
    return alert


def reraise_persisting(now=None) -> list[Alert]:
    """Cases closed while the meter still showed the condition, and still showing it
    LIANXIN_RERAISE_AFTER_MINUTES later, are raised again as a new alert (linked to the closed
    one in its log). A condition that clears and returns is raised by the engine itself.

    Each close is checked once: the close marks the alert (`reraise_pending`, see
    Alert.transition), a clear from the engine or this check takes the mark off. So a close is
    checked however long the monitor was down, and nothing already checked is scanned again:
    one query on a partial index per step. apply_findings runs this after the step's findings,
    so a clear the engine found in the data since the close (a catch-up after downtime) counts.
    """
    now = now or timezone.now()
    wait = timedelta(minutes=settings.LIANXIN_RERAISE_AFTER_MINUTES)
    raised = []
    due = Alert.objects.filter(reraise_pending=True, resolved_at__lte=now - wait)
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            old = (
                Alert.objects.select_for_update(of=("self",))
                .select_related("household", "transformer_area")
                .filter(pk=pk, reraise_pending=True)
                .first()
            )
            if old is None:
                continue  # checked by another monitor meanwhile
            old.reraise_pending = False
            old.save(update_fields=["reraise_pending"])
            if (
                old.condition_cleared_at is not None
                or old.kind not in RERAISE_KINDS
                or old.outcome in NO_RERAISE_OUTCOMES
            ):
                continue
            if Alert.objects.filter(key=old.key, opened_at__gte=old.resolved_at).exists():
                continue  # raised again already (by the engine)
            if Alert.objects.filter(key=old.key, status__in=NOT_RESOLVED).exists():
                continue
            closed = timezone.localtime(old.resolved_at).strftime("%m-%d %H:%M")
            alert = Alert(
                kind=old.kind,
                key=old.key,
                household=old.household,
                transformer_area=old.transformer_area,
                reason_en=f"Still going after the case was closed at {closed}: {old.reason_en}",
                reason_zh=f"{closed}结案后仍未恢复：{old.reason_zh}",
                evidence=old.evidence,
                started_at=old.started_at,
                detected_at=now,
                last_detected_at=now,
                opened_at=now,
            )
            alert.set_severity(old.severity)
            alert.save()
            alert.log(Action.OPENED, data={"reraised_from": old.pk}, at=now)
            old.log(
                Action.NOTE,
                note=_("Raised again: the condition persists."),
                data={"reraised_as": alert.pk},
                at=now,
            )
            _inhibit_or_silence_new(alert, now)
        raised.append(alert)
    return raised


def release_expired_silences(now=None):
    """Silenced alerts whose away period is over come back to the queue if still active."""
    now = now or timezone.now()
    for alert in Alert.objects.filter(status=Status.SILENCED).select_related("household"):
        if active_away(alert.household, now) is None:
            alert.transition(
                Status.OPEN, action=Action.RELEASED, note=_("The away period is over."), at=now
            )


# --- case steps on the alert itself (calls and work orders live in lianxin.dispatch) -------


def acknowledge(alert: Alert, user, note: str = "") -> Alert:
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == Status.ACKNOWLEDGED and alert.holder_id == user.pk:
            return alert
        alert.holder = user
        alert.transition(Status.ACKNOWLEDGED, actor=user, action=Action.ACKNOWLEDGED, note=note)
    return alert


class StillPersists(TransitionError):
    """Closing was asked while the meter data still shows the condition; the person must
    confirm (the case is raised again if it still persists later)."""


def persists_message(alert: Alert) -> str:
    return _(
        "The meter data still shows %(kind)s (since %(since)s): the condition has not cleared. "
        "Close anyway? If it still persists in %(minutes)d min, it is raised again."
    ) % {
        "kind": alert.get_kind_display(),
        "since": timezone.localtime(alert.started_at).strftime("%m-%d %H:%M"),
        "minutes": settings.LIANXIN_RERAISE_AFTER_MINUTES,
    }


def resolve(
    alert: Alert, user, outcome: str, note: str = "", ask_if_persisting: bool = False
) -> Alert:
    """Close the case. With ask_if_persisting (the case page, until the person confirms), a
    condition the meter still shows refuses with StillPersists, which says so."""
    if outcome not in Outcome.values:
        raise TransitionError(_("Choose an outcome."))
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == Status.RESOLVED:
            raise TransitionError(_("This alert is already resolved."))
        if ask_if_persisting and alert.condition_cleared_at is None:
            raise StillPersists(persists_message(alert))
        alert.outcome = outcome
        if alert.holder_id is None:
            alert.holder = user
        alert.transition(
            Status.RESOLVED,
            actor=user,
            action=Action.RESOLVED,
            note=note,
            data={"outcome": outcome},
        )
        if alert.kind == Kind.GRID_OUTAGE:
            _close_children(alert, user, outcome)
    return alert


def cleared_in_queue():
    """Alerts a person still holds open although the engine says the condition is over, and
    no crew is out for: what the queue's bulk close offers."""
    return Alert.objects.filter(
        status__in=[Status.OPEN, Status.ACKNOWLEDGED], condition_cleared_at__isnull=False
    )


def close_cleared(user, outcome: str, ids=None) -> int:
    """Resolve every alert of cleared_in_queue() (only those in `ids` when given) with one
    outcome; returns how many were closed."""
    qs = cleared_in_queue()
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    closed = 0
    for alert in qs.order_by("pk"):
        try:
            resolve(alert, user, outcome, _("Closed together: the condition had cleared."))
        except TransitionError:
            continue  # closed by someone else meanwhile
        closed += 1
    return closed


def _close_children(outage: Alert, user, outcome: str):
    for child in outage.children.filter(status=Status.INHIBITED):
        if child.condition_cleared_at is not None:
            child.outcome = outcome
            child.transition(
                Status.RESOLVED,
                actor=user,
                action=Action.RESOLVED,
                note=_("Closed with the grid outage."),
                data={"outcome": outcome},
            )
        else:
            child.transition(
                Status.OPEN,
                actor=user,
                action=Action.RELEASED,
                note=_("The grid outage was closed but this home still shows the problem."),
            )


def add_note(alert: Alert, user, note: str):
    if not note.strip():
        raise TransitionError(_("Write a note."))
    return alert.log(Action.NOTE, actor=user, note=note.strip())


def add_away_period(household: Household, user, starts_at, ends_at, comment: str) -> AwayPeriod:
    """Set an away period and silence the home's open inactivity alerts now inside it."""
    if ends_at <= starts_at:
        raise TransitionError(_("An away period must end after it starts."))
    if not comment.strip():
        raise TransitionError(_("Say why the resident is away."))
    with transaction.atomic():
        away = AwayPeriod.objects.create(
            household=household,
            starts_at=starts_at,
            ends_at=ends_at,
            comment=comment.strip(),
            author=user,
        )
        now = timezone.now()
        if away.covers(now):
            # Acknowledged too: the operator who calls often is the one who learns she is away.
            for alert in Alert.objects.filter(
                household=household,
                kind__in=AwayPeriod.SILENCES,
                status__in=[Status.OPEN, Status.ACKNOWLEDGED],
            ):
                alert.transition(
                    Status.SILENCED,
                    actor=user,
                    action=Action.SILENCED,
                    note=away.comment,
                    data={"away_period": away.pk},
                )
    return away


def end_away_period(away: AwayPeriod, user) -> AwayPeriod:
    now = timezone.now()
    if away.ends_at > now:
        # An away period that has not begun yet simply ends at its start (the constraint
        # wants ends_at after starts_at).
        away.ends_at = max(now, away.starts_at + timedelta(seconds=1))
        away.save(update_fields=["ends_at"])
    release_expired_silences(now)
    return away


# Worst first: severity, then whether anyone holds it (nobody works an unowned alert yet),
# then whether the condition is still going on (power back is less urgent than power still
# off), then the oldest anomaly.
WORST_FIRST = [
    "-severity_rank",
    Case(When(holder__isnull=True, then=0), default=1),
    Case(When(condition_cleared_at__isnull=True, then=0), default=1),
    "started_at",
    "id",
]


# The queue page's state filter: which statuses each choice shows.
STATE_FILTERS = {
    "active": ACTIVE,
    "open": [Status.OPEN],
    "acknowledged": [Status.ACKNOWLEDGED],
    "dispatched": [Status.DISPATCHED],
    "inhibited": [Status.INHIBITED],
    "silenced": [Status.SILENCED],
    "resolved": [Status.RESOLVED],
}


def queue(state="active", *, kind=None, area=None, team=None, **filters):
    """The alerts a person works, worst first (severity, then oldest anomaly); the resolved
    ones latest first. kind, area (a transformer area code) and team (a team id, through the
    residents of the home) narrow it."""
    qs = Alert.objects.filter(status__in=STATE_FILTERS[state]).select_related(
        "household", "transformer_area", "holder", "escalation"
    )
    qs = qs.filter(**filters)
    if kind:
        qs = qs.filter(kind=kind)
    if area:
        qs = qs.filter(transformer_area__code=area)
    if team is not None:
        qs = qs.filter(household__care_recipients__team_id=team).distinct()
    if state == "resolved":
        return qs.order_by("-resolved_at")
    return qs.order_by(*WORST_FIRST)


def with_residents(alerts) -> list[tuple[Alert, CareRecipient | None]]:
    """Each alert with the first resident of its home (for the queue's rows)."""
    residents = {}
    homes = [a.household_id for a in alerts if a.household_id]
    for r in CareRecipient.objects.filter(household_id__in=homes).order_by("pk"):
        residents.setdefault(r.household_id, r)
    return [(a, residents.get(a.household_id)) for a in alerts]


def active_outages():
    return Alert.objects.filter(kind=Kind.GRID_OUTAGE.value, status__in=ACTIVE)


def not_in_queue() -> dict[str, int]:
    """What the active queue leaves out, for its footer: alerts covered by a grid outage and
    alerts silenced while the resident is away."""
    return {
        "inhibited": Alert.objects.filter(status=Status.INHIBITED).count(),
        "silenced": Alert.objects.filter(status=Status.SILENCED).count(),
    }


# Steps whose first occurrence the duty room is measured by, in case order.
RESPONSE_STEPS = [Action.ACKNOWLEDGED, Action.CALL, Action.ARRIVED, Action.RESOLVED]


def response_times(alert: Alert) -> list[tuple[str, timedelta]]:
    """(action, time since the alert reached the duty room) for the first of each step, read
    from the event log."""
    firsts: dict[str, datetime] = {}
    for action, at in alert.events.order_by("at", "id").values_list("action", "at"):
        firsts.setdefault(action, at)
    opened = firsts.get(Action.OPENED, alert.opened_at)
    return [(a, firsts[a] - opened) for a in RESPONSE_STEPS if a in firsts]
