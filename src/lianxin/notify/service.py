"""Escalation, the outbox, one-time links and the entry point for system events.

Public API for other apps:
- enqueue_system(key, severity, text_zh, text_en, link="", roles=("duty",), team=None):
  notify about an event that is not a household alert (a stopped monitor, a silent feed).
- on_alert_event: connected to AlertEvent's post_save (see apps.py); nothing to call by hand.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import Action, Alert, AlertEvent, Outcome, Status
from lianxin.care.models import CareRecipient, Consent, EmergencyContact, Membership
from lianxin.care.roles import Role
from lianxin.engine.findings import SEVERITY_RANK, Kind, Severity
from lianxin.notify import messages, wake
from lianxin.notify.models import (
    Channel,
    Escalation,
    EscalationPolicy,
    Notification,
    OneTimeLink,
    PersonPreference,
    RosterShift,
    Silence,
    Target,
)

# Per-home alarms a grid outage may cover wait this long before their first notification
# (Alertmanager's group_wait). An outage found in the same step needs no wait: apply_findings
# applies it first, so the homes' alarms open already inhibited. A deployment whose outage and
# home alarms arrive in separate steps a few seconds apart may set a wait.
log = logging.getLogger(__name__)

GROUP_WAIT = timedelta(seconds=float(os.environ.get("LIANXIN_NOTIFY_GROUP_WAIT_SECONDS", "0")))
FINE_LINK_HOURS = 6
AWAY_LINK_HOURS = 72
STOPPING = {
    Action.ACKNOWLEDGED: "acknowledged",
    Action.DISPATCHED: "dispatched",
    Action.INHIBITED: "inhibited",
    Action.SILENCED: "silenced",
    Action.RESOLVED: "resolved",
    # The meter shows the condition over (power back, use again): the alert stays in the queue
    # for the duty room to close, but nobody is paged, and no family texted, about it any more.
    Action.CLEARED: "condition cleared",
}


class _Step:
    """One monitor step's notification work (see lianxin.alerts.signals): chains asked for
    while the step applies its findings, started together at its end with the channels,
    policies and roster read once, and their rows written with one insert per table, inside
    the step's transaction."""

    def __init__(self, now: datetime):
        self.now = now
        self.requests: list[tuple[int, str, datetime]] = []  # (alert id, start|restart, at)
        self.mark = 0  # requests before the finding being applied
        self.fresh: set[int] = set()  # alerts opened in this step: no chain in the database
        self.cache: dict = {}
        self.flushing = False
        self.notifications: list[Notification] = []
        self.events: list[AlertEvent] = []
        self.escalations: list[Escalation] = []

    def cached(self, key, compute):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def drop(self, alert_id: int) -> bool:
        """The alert was worked or muted in the same step: its chain is not started."""
        before = len(self.requests)
        self.requests = [r for r in self.requests if r[0] != alert_id]
        self.mark = min(self.mark, len(self.requests))
        return len(self.requests) != before

    def flush(self):
        wanted: dict[int, tuple[str, datetime]] = {}
        for alert_id, mode, at in self.requests:
            wanted.setdefault(alert_id, (mode, at))
        if not wanted or not _any_channel():
            return
        self.flushing = True
        # Fresh from the database: a request made when the alert opened may be about an alert
        # inhibited or silenced later in the step (through another instance).
        alerts = Alert.objects.select_related("household").in_bulk(list(wanted))
        homes = [a.household_id for a in alerts.values() if a.household_id]
        teams_of: dict[int, set[int]] = {}
        for home_id, team_id in CareRecipient.objects.filter(
            household_id__in=homes, team__isnull=False
        ).values_list("household_id", "team_id"):
            teams_of.setdefault(home_id, set()).add(team_id)
        for alert_id, (mode, at) in wanted.items():
            alert = alerts.get(alert_id)
            if alert is None or alert.status != Status.OPEN:
                continue
            teams = (
                sorted(teams_of.get(alert.household_id, ()))
                if alert.household_id
                else _team_ids(alert)
            )
            if mode == "restart" and alert_id not in self.fresh:
                restart(alert, at, teams=teams)
            else:
                start(alert, at, fresh=alert_id in self.fresh, teams=teams)
        Escalation.objects.bulk_create(self.escalations)
        Notification.objects.bulk_create(self.notifications)
        AlertEvent.objects.bulk_create(self.events)
        if self.notifications:
            wake.soon()


_local = threading.local()


def _batch() -> _Step | None:
    return getattr(_local, "step", None)


def _cached(key, compute):
    batch = _batch()
    return batch.cached(key, compute) if batch is not None else compute()


def _any_channel() -> bool:
    return _cached("any", lambda: Channel.objects.filter(enabled=True).exists())


def on_step(sender, phase: str, now: datetime, **kwargs):
    """lianxin.alerts.signals.step: gather the step's chains and write them at its end."""
    if phase == "begin":
        _local.step = _Step(now)
    elif phase == "close":
        _local.step = None
    elif (batch := _batch()) is not None:
        if phase == "finding":
            batch.mark = len(batch.requests)
        elif phase == "undo":
            del batch.requests[batch.mark :]
        elif phase == "end":
            try:
                with transaction.atomic():
                    batch.flush()
            except (OperationalError, InterfaceError):
                raise  # the database: the step rolls back and is retried whole
            except Exception:
                # A fault of ours must not lose the step's alerts: they commit and show in the
                # queue; the log says which chains did not start.
                log.exception("notification chains of %d alert(s) not started", len(batch.requests))


@dataclass(frozen=True)
class Plan:
    name: str
    steps: list[dict]  # [{"target": ..., "wait": minutes after the previous step}]
    repeat_minutes: int
    max_repeats: int


def default_plan(kind: str, severity: str) -> Plan:
    """The chain when no policy in the admin matches: faster and wider the worse it is."""
    if kind == Kind.GRID_OUTAGE:
        # An incident for the duty room and the lead at once; families are not told one by one.
        return Plan(
            _("default: grid outage"),
            [{"target": "duty", "wait": 0}, {"target": "lead", "wait": 0}],
            15,
            4,
        )
    if severity == Severity.CRITICAL:
        steps = [
            {"target": "duty", "wait": 0},
            {"target": "lead", "wait": 5},
            {"target": "contacts", "wait": 10},
        ]
        return Plan(_("default: critical"), steps, 10, 6)
    if severity == Severity.WARNING:
        steps = [
            {"target": "duty", "wait": 0},
            {"target": "lead", "wait": 15},
            {"target": "contacts", "wait": 30},
        ]
        return Plan(_("default: warning"), steps, 30, 3)
    return Plan(_("default: info"), [{"target": "duty", "wait": 0}], 0, 0)


def _team_ids(alert: Alert) -> list[int]:
    codes = [alert.household.code] if alert.household_id else list(alert.households)
    return list(
        CareRecipient.objects.filter(household__code__in=codes, team__isnull=False)
        .values_list("team_id", flat=True)
        .distinct()
    )


def _policies() -> list[EscalationPolicy]:
    return _cached(
        "policies", lambda: list(EscalationPolicy.objects.prefetch_related("steps").order_by("pk"))
    )


def choose_plan(alert: Alert, teams: list[int] | None = None) -> Plan:
    teams = _team_ids(alert) if teams is None else teams
    rank = SEVERITY_RANK[Severity(alert.severity)]
    candidates = []
    for p in _policies():
        if p.team_id is not None and p.team_id not in teams:
            continue
        if p.kind not in ("", alert.kind):
            continue
        if SEVERITY_RANK[Severity(p.min_severity)] > rank:
            continue
        specificity = (p.team_id is not None, p.kind != "", SEVERITY_RANK[Severity(p.min_severity)])
        candidates.append((specificity, p.pk, p))
    if not candidates:
        return default_plan(alert.kind, alert.severity)
    policy = max(candidates, key=lambda c: (c[0], c[1]))[2]
    steps = [{"target": s.target, "wait": s.wait_minutes} for s in policy.steps.all()]
    return Plan(policy.name, steps, policy.repeat_minutes, policy.max_repeats)


def _resident(alert: Alert) -> tuple[CareRecipient, PersonPreference] | None:
    if alert.household_id is None:
        return None
    pref = (
        PersonPreference.objects.filter(
            care_recipient__household_id=alert.household_id, ask_resident_first=True
        )
        .select_related("care_recipient")
        .first()
    )
    if pref is None or not pref.care_recipient.phone:
        return None
    return pref.care_recipient, pref


# --- reacting to alert changes (inside the change's transaction) -----------------------------


def on_alert_event(sender, instance: AlertEvent, created: bool, **kwargs):
    if not created or kwargs.get("raw"):
        return
    alert = instance.alert
    batch = _batch()
    if batch is not None and not batch.flushing:
        # Inside a monitor step: the chain starts at the step's end, with the others.
        if instance.action in (Action.OPENED, Action.RELEASED) and alert.status == Status.OPEN:
            batch.requests.append((alert.pk, "start", instance.at))
            if instance.action == Action.OPENED:
                batch.fresh.add(alert.pk)
            return
        if instance.action == Action.ESCALATED and alert.status == Status.OPEN:
            batch.requests.append((alert.pk, "restart", instance.at))
            return
        if instance.action in STOPPING:
            batch.drop(alert.pk)
            if alert.pk in batch.fresh:
                return  # opened in this step: no chain and no outbox rows in the database
    if instance.action in (Action.OPENED, Action.RELEASED) and alert.status == Status.OPEN:
        start(alert, instance.at, fresh=instance.action == Action.OPENED)
    elif instance.action == Action.ESCALATED and alert.status == Status.OPEN:
        restart(alert, instance.at)
    elif instance.action in STOPPING:
        stop(alert, STOPPING[instance.action], instance.at)


def restart(alert: Alert, at: datetime, teams: list[int] | None = None) -> Escalation | None:
    """The alert's severity rose while nobody had taken it: the chain starts again from step 1
    with the policy of the new severity (a critical one is faster and wider than a warning),
    and what the old chain had not sent yet is dropped. The resident is not asked again."""
    current = Escalation.objects.filter(alert=alert).first()
    if current is None:
        return start(alert, at, teams=teams)
    if not _any_channel():
        return None
    was = current.policy_name
    dropped = Notification.objects.filter(alert=alert, status=Notification.Status.PENDING).update(
        status=Notification.Status.CANCELLED, last_error="severity rose"
    )
    _timeline(
        alert,
        at,
        _(
            "Severity rose to %(severity)s: escalation restarts from step 1 "
            "(was %(was)s); %(n)s waiting notification(s) dropped."
        )
        % {"severity": alert.get_severity_display(), "was": was, "n": dropped},
        {"restarted": alert.severity, "was": was, "cancelled": dropped},
    )
    return start(alert, at, current=current, ask_resident=False, teams=teams)


def start(
    alert: Alert,
    at: datetime,
    fresh: bool = False,
    current: Escalation | None = None,
    ask_resident: bool = True,
    teams: list[int] | None = None,
) -> Escalation | None:
    """Copy the matching policy onto the alert and run its first step (into the outbox).
    `fresh`: the alert has just opened, so it cannot have a chain yet (one query fewer on the
    path every finding takes). `current`: the chain to replace (restart), running or not."""
    if current is None:
        current = None if fresh else Escalation.objects.filter(alert=alert).first()
        if current is not None and current.stopped_at is None:
            return current
    if not _any_channel():
        # Nowhere to send: no chain, and nothing on the timeline about one.
        return None
    teams = _team_ids(alert) if teams is None else teams
    plan = choose_plan(alert, teams)
    steps = list(plan.steps)
    found = _resident(alert) if ask_resident and alert.kind == Kind.INACTIVITY else None
    if found is not None and steps:
        _, pref = found
        steps = (
            [{"target": "resident", "wait": 0}]
            + [dict(steps[0], wait=max(steps[0]["wait"], pref.wait_minutes))]
            + steps[1:]
        )
    if not steps:
        return None
    esc = current or Escalation(alert=alert)
    esc.policy_name = plan.name
    esc.steps = steps
    esc.repeat_minutes, esc.max_repeats = plan.repeat_minutes, plan.max_repeats
    esc.next_index = esc.repeats_done = 0
    esc.next_at = at + timedelta(minutes=steps[0]["wait"])
    esc.started_at, esc.stopped_at, esc.stop_reason = at, None, ""
    esc.resident_unanswered = False
    delay = GROUP_WAIT if alert.kind in (Kind.NO_POWER, Kind.INACTIVITY) else timedelta(0)
    advance(esc, at, delay=delay, teams=teams)  # saves esc once, after the due steps
    return esc


def stop(alert: Alert, reason: str, at: datetime):
    """Acknowledged, muted or closed: stop the chain and drop what has not gone out yet."""
    updated = Escalation.objects.filter(alert=alert, stopped_at__isnull=True).update(
        stopped_at=at, stop_reason=reason, next_at=None
    )
    cancelled = Notification.objects.filter(alert=alert, status=Notification.Status.PENDING).update(
        status=Notification.Status.CANCELLED, last_error=reason
    )
    if updated:
        AlertEvent.objects.create(
            alert=alert,
            action=Action.ESCALATION,
            at=at,
            from_status=alert.status,
            to_status=alert.status,
            note=_("Escalation stopped (%(reason)s); %(n)s waiting notification(s) dropped.")
            % {"reason": reason, "n": cancelled},
            data={"stopped": reason, "cancelled": cancelled},
        )


def advance(
    esc: Escalation, now: datetime, delay: timedelta = timedelta(0), teams: list[int] | None = None
) -> int:
    """Run every step of the chain that is due at `now`; returns the notifications written."""
    written = 0
    alert = esc.alert
    teams = _team_ids(alert) if teams is None else teams
    while esc.stopped_at is None and esc.next_at is not None and esc.next_at <= now:
        if esc.next_index < len(esc.steps):
            step = esc.steps[esc.next_index]
            if esc.next_index > 0 and esc.steps[esc.next_index - 1]["target"] == "resident":
                esc.resident_unanswered = True
                _timeline(
                    alert,
                    now,
                    _("The resident did not confirm in time; escalating."),
                    {"resident": "no_answer"},
                )
            # Steps that run at once with the first (wait 0) do not say "not acknowledged".
            late = esc.next_at > esc.started_at
            n = _run_step(alert, teams, step["target"], esc.next_index, now, delay, late=late)
            written += n
            esc.next_index += 1
            if esc.next_index < len(esc.steps):
                esc.next_at = esc.next_at + timedelta(minutes=esc.steps[esc.next_index]["wait"])
            elif esc.repeat_minutes and esc.repeats_done < esc.max_repeats:
                esc.next_at = esc.next_at + timedelta(minutes=esc.repeat_minutes)
            else:
                esc.next_at = None
        else:
            # Repeats remind the staff reached so far; families are not texted again and again.
            esc.repeats_done += 1
            for target in dict.fromkeys(s["target"] for s in esc.steps):
                if target in (Target.DUTY, Target.LEAD):
                    written += _run_step(
                        alert, teams, target, esc.next_index, now, delay, repeat=esc.repeats_done
                    )
            # A worker that was down does not fire the missed reminders in one burst.
            every = timedelta(minutes=esc.repeat_minutes)
            more = esc.repeats_done < esc.max_repeats
            esc.next_at = max(esc.next_at + every, now + every) if more else None
        delay = timedelta(0)
    batch = _batch()
    if batch is not None and esc.pk is None:
        batch.escalations.append(esc)  # a new chain: inserted with the step's others
    else:
        esc.save()
    return written


def _timeline(alert: Alert, at, note: str, data: dict):
    batch = _batch()
    if batch is not None:
        batch.events.append(
            AlertEvent(
                alert=alert,
                action=Action.ESCALATION,
                at=at,
                from_status=alert.status,
                to_status=alert.status,
                note=note,
                data=data,
            )
        )
        return
    AlertEvent.objects.create(
        alert=alert,
        action=Action.ESCALATION,
        at=at,
        from_status=alert.status,
        to_status=alert.status,
        note=note,
        data=data,
    )


def _channels(audience: str, teams: list[int], kind: str | None = None):
    enabled = _cached("channels", lambda: list(Channel.objects.filter(enabled=True)))
    return [
        ch
        for ch in enabled
        if ch.audience == audience
        and (ch.team_id is None or ch.team_id in teams)
        and (not kind or ch.kind == kind)
    ]


def on_duty(teams: list[int], at: datetime) -> dict[int, list[int]]:
    """{team id: [user ids rostered at `at`]} for the teams that have someone rostered then."""
    found: dict[int, list[int]] = {}
    for team_id, user_id in RosterShift.objects.filter(
        team_id__in=teams, starts_at__lte=at, ends_at__gt=at
    ).values_list("team_id", "user_id"):
        found.setdefault(team_id, []).append(user_id)
    return found


def _staff_phones(teams: list[int], role: str, at: datetime | None = None) -> list[tuple[str, int]]:
    """(phone, user id) of the team members with `role`, one row per phone. For duty operators
    at `at`: the people on the roster then, in the teams that roster that moment."""
    return _cached(("phones", tuple(sorted(teams)), role, at), lambda: _phones(teams, role, at))


def _phones(teams: list[int], role: str, at: datetime | None) -> list[tuple[str, int]]:
    members = Membership.objects.filter(team_id__in=teams, user__groups__name=role)
    if at is not None and role == Role.DUTY_OPERATOR:
        rostered = on_duty(teams, at)
        if rostered:
            members = Membership.objects.filter(
                Q(team_id__in=[t for t in teams if t not in rostered]) & Q(user__groups__name=role)
                | Q(
                    *[Q(team_id=t, user_id__in=users) for t, users in rostered.items()],
                    _connector=Q.OR,
                )
            )
    found: dict[str, int] = {}
    for phone, user_id in members.exclude(phone="").values_list("phone", "user_id").order_by("pk"):
        found.setdefault(phone, user_id)
    return list(found.items())


def _run_step(alert, teams, target, index, now, delay, repeat: int = 0, late=True) -> int:
    due = now + delay
    rows: list[Notification] = []
    if target in (Target.DUTY, Target.LEAD):
        role = Role.DUTY_OPERATOR if target == Target.DUTY else Role.TEAM_LEAD
        for ch in _channels(target, teams):
            title, text, link = messages.staff(alert, ch.language, index if late else 0, repeat)
            person = ch.kind in ("sms", "voice")
            addresses = _staff_phones(teams, role, now) if person else [("", None)]
            for address, user_id in addresses:
                if ch.kind == "voice":
                    # The call says what it is; pressing 1 acknowledges as this member.
                    link = make_link(
                        OneTimeLink.Purpose.ACK, alert, now, channel=ch, user_id=user_id
                    )
                rows.append(
                    _row(
                        alert,
                        ch,
                        Notification.To.STAFF,
                        address,
                        index,
                        due,
                        ch.language,
                        title,
                        text,
                        link,
                    )
                )
    elif target == Target.CONTACTS:
        rows += _contact_rows(alert, index, now, due, teams)
    elif target == Target.RESIDENT:
        rows += _resident_rows(alert, index, now, due, teams)
    batch = _batch()
    if batch is not None:
        batch.notifications += rows  # one insert for the whole step
    else:
        Notification.objects.bulk_create(rows)
        if rows:
            wake.soon()
    label = Target(target).label
    if repeat:
        note = _("Reminder %(n)s: %(target)s, %(count)s notification(s).") % {
            "n": repeat,
            "target": label,
            "count": len(rows),
        }
    else:
        note = _("Step %(n)s: %(target)s, %(count)s notification(s).") % {
            "n": index + 1,
            "target": label,
            "count": len(rows),
        }
    _timeline(
        alert,
        now,
        note,
        {"step": index + 1, "target": target, "notifications": len(rows), "repeat": repeat},
    )
    return len(rows)


def _row(alert, ch, to, address, step, due, language, title, text, link) -> Notification:
    return Notification(
        key=Notification.new_key(),
        alert=alert,
        channel=ch,
        to=to,
        address=address,
        step=step,
        severity=alert.severity if alert else "warning",
        language=language,
        title=title,
        text=text,
        link=link,
        due_at=due,
    )


def _contact_rows(alert, index, now, due, teams) -> list[Notification]:
    if alert.household_id is None:
        return []
    rows = []
    people = CareRecipient.objects.filter(
        household_id=alert.household_id,
        consents__scope=Consent.Scope.FAMILY,
        consents__withdrawn_at__isnull=True,
    ).distinct()
    for person in people:
        pref = PersonPreference.objects.filter(care_recipient=person).first()
        language = pref.family_language if pref else "zh-hans"
        for c in person.contacts.exclude(notify_by=EmergencyContact.NotifyBy.NONE):
            kind = "voice" if c.notify_by == EmergencyContact.NotifyBy.PHONE else "sms"
            chans = _channels(Channel.Audience.PEOPLE, teams, kind) or _channels(
                Channel.Audience.PEOPLE, teams, "sms"
            )
            for ch in chans[:1]:
                away = alert.kind == Kind.INACTIVITY and ch.kind == "sms"
                title, text = messages.contact(alert, language, away)
                link = make_link(OneTimeLink.Purpose.AWAY, alert, now, contact=c) if away else ""
                rows.append(
                    _row(
                        alert,
                        ch,
                        Notification.To.CONTACT,
                        c.phone,
                        index,
                        due,
                        language,
                        title,
                        text,
                        link,
                    )
                )
    return rows


def _resident_rows(alert, index, now, due, teams) -> list[Notification]:
    found = _resident(alert)
    if found is None:
        return []
    person, pref = found
    chans = _channels(Channel.Audience.PEOPLE, teams, pref.reach_by)
    if not chans:
        return []
    if pref.reach_by == PersonPreference.Reach.VOICE:
        title, text = messages.resident_voice(pref.resident_language)
        # The gateway's callback URL: the provider reports the key the resident pressed.
        link = make_link(OneTimeLink.Purpose.VOICE, alert, now, channel=chans[0])
    else:
        link = make_link(OneTimeLink.Purpose.FINE, alert, now)
        title, text = messages.resident(pref.resident_language, link)
    return [
        _row(
            alert,
            chans[0],
            Notification.To.RESIDENT,
            person.phone,
            index,
            due,
            pref.resident_language,
            title,
            text,
            link,
        )
    ]


def advance_due(now: datetime) -> int:
    """The worker's escalation pass: every chain with a step due."""
    written = 0
    for pk in Escalation.objects.filter(stopped_at__isnull=True, next_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            esc = (
                Escalation.objects.select_for_update()
                .select_related("alert")
                .filter(pk=pk, stopped_at__isnull=True, next_at__lte=now)
                .first()
            )
            if esc is None:
                continue
            if esc.alert.status != Status.OPEN:
                # Re-check before acting: an alert worked or muted needs no next step.
                esc.stopped_at, esc.stop_reason, esc.next_at = now, esc.alert.status, None
                esc.save()
                continue
            written += advance(esc, now)
    return written


# --- silences -----------------------------------------------------------------------------


def active_silences(now: datetime):
    return Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)


def never_hidden(alert: Alert) -> bool:
    """A critical no_power at an enrolled home is notified even under a silence (the queue
    says so), because a silence set for works on a line must not hide a person without power."""
    return (
        alert.kind == Kind.NO_POWER
        and alert.severity == Severity.CRITICAL
        and alert.household_id is not None
    )


def silence_for(alert: Alert, now: datetime) -> Silence | None:
    for s in active_silences(now):
        if s.matches(alert):
            return s
    return None


# --- one-time links -----------------------------------------------------------------------

_SIGNER = signing.Signer(salt="lianxin.notify.link")


LINK_PREFIX = {
    OneTimeLink.Purpose.FINE: "f",
    OneTimeLink.Purpose.AWAY: "a",
    OneTimeLink.Purpose.VOICE: "v",
    OneTimeLink.Purpose.ACK: "v",
}


def make_link(
    purpose: str, alert: Alert | None, now: datetime, contact=None, channel=None, user_id=None
) -> str:
    """A single-use, expiring link: a random token (only its SHA-256 is stored), signed with
    the deployment's secret so a forged one is refused before any lookup. Voice purposes give
    the callback URL a voice gateway calls with the key pressed."""
    token = secrets.token_urlsafe(24)
    hours = AWAY_LINK_HOURS if purpose == OneTimeLink.Purpose.AWAY else FINE_LINK_HOURS
    OneTimeLink.objects.create(
        digest=OneTimeLink.hash(token),
        purpose=purpose,
        alert=alert,
        household_id=alert.household_id,
        contact=contact,
        channel=channel,
        user_id=user_id,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    signed = _SIGNER.sign(token)
    return f"{messages.base_url()}/n/{LINK_PREFIX[purpose]}/{signed}"


class LinkRefused(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why  # "forged", "expired", "used"


def check_link(
    signed: str, purpose: str | tuple[str, ...], now: datetime | None = None
) -> OneTimeLink:
    now = now or timezone.now()
    try:
        token = _SIGNER.unsign(signed)
    except signing.BadSignature as exc:
        raise LinkRefused("forged") from exc
    purposes = (purpose,) if isinstance(purpose, str) else purpose
    link = OneTimeLink.objects.filter(digest=OneTimeLink.hash(token), purpose__in=purposes).first()
    if link is None:
        raise LinkRefused("forged")
    if link.used_at is not None:
        raise LinkRefused("used")
    if link.expires_at <= now:
        raise LinkRefused("expired")
    return link


def confirm_fine(signed: str, now: datetime | None = None) -> Alert | None:
    """The resident says "I am fine": the alert is resolved as resident_fine, the resident its
    source. Single use: the link is spent in the same transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        link = check_link(signed, OneTimeLink.Purpose.FINE, now)
        _spend(link, now)
        return _resident_fine(link, now, _("The resident confirmed they are fine (one-time link)."))


def _spend(link: OneTimeLink, now: datetime) -> None:
    if OneTimeLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now) != 1:
        raise LinkRefused("used")


def _resident_fine(link: OneTimeLink, now: datetime, note: str, via: str = "link") -> Alert:
    alert = Alert.objects.select_for_update().get(pk=link.alert_id)
    if alert.status == Status.RESOLVED:
        return alert
    alert.outcome = Outcome.RESIDENT_FINE
    alert.transition(
        Status.RESOLVED,
        action=Action.RESOLVED,
        note=note,
        data={"outcome": Outcome.RESIDENT_FINE, "source": "resident", "via": via},
        at=now,
    )
    return alert


# Keys on a voice call. The resident: 1 "I am fine", 2 "I need help". Staff: 1 acknowledges.
KEY_FINE, KEY_HELP, KEY_ACK = "1", "2", "1"


def voice_answer(signed: str, digits: str, now: datetime | None = None) -> str:
    """The voice gateway reports the key pressed on a call (the callback URL of the call).
    Returns what it did: "resident_fine", "help", "acknowledged", "already" (the alert was
    taken or closed meanwhile) or "ignored" (another key: recorded, the link stays usable).
    Raises LinkRefused for a forged, expired or spent callback."""
    now = now or timezone.now()
    digits = (digits or "").strip()[:8]
    with transaction.atomic():
        link = check_link(signed, (OneTimeLink.Purpose.VOICE, OneTimeLink.Purpose.ACK), now)
        alert = Alert.objects.select_for_update().get(pk=link.alert_id)
        resident = link.purpose == OneTimeLink.Purpose.VOICE
        if digits not in ((KEY_FINE, KEY_HELP) if resident else (KEY_ACK,)):
            who = _("The resident") if resident else _("The staff member called")
            _timeline(
                alert,
                now,
                _("%(who)s pressed %(key)s on the voice call: no action.")
                % {"who": who, "key": digits or "-"},
                {"voice": "ignored", "digits": digits},
            )
            return "ignored"
        _spend(link, now)
        if resident and digits == KEY_FINE:
            if alert.status == Status.RESOLVED:
                return "already"
            _resident_fine(
                link, now, _("The resident pressed 1 on the voice call: I am fine."), via="voice"
            )
            return "resident_fine"
        if resident:
            # Help asked for: the next step of the chain (the duty room) goes out now.
            _timeline(
                alert,
                now,
                _("The resident pressed 2 on the voice call: asks for help. Escalating now."),
                {"voice": "help", "digits": digits},
            )
            Escalation.objects.filter(alert=alert, stopped_at__isnull=True).update(next_at=now)
            return "help"
        if alert.status != Status.OPEN or link.user is None:
            return "already"
        from lianxin.alerts.service import acknowledge

        acknowledge(alert, link.user, _("Acknowledged by pressing 1 on the voice call."))
        return "acknowledged"


def family_link_user():
    """Away periods need an author; a family member has no account, so the period is written
    by this service user and names the contact in its comment and its link record."""
    User = get_user_model()
    user, _created = User.objects.get_or_create(
        username="family-link", defaults={"first_name": "家属链接", "is_active": False}
    )
    return user


def set_away_by_family(signed: str, until: datetime, comment: str, now=None):
    from lianxin.alerts.service import add_away_period

    now = now or timezone.now()
    with transaction.atomic():
        link = check_link(signed, OneTimeLink.Purpose.AWAY, now)
        if OneTimeLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now) != 1:
            raise LinkRefused("used")
        contact = link.contact
        who = f"{contact.name}（{contact.relation}）" if contact else _("family")
        text = _("Set by %(who)s through the family link") % {"who": who}
        if comment.strip():
            text += f": {comment.strip()}"
        return add_away_period(link.household, family_link_user(), now, until, text[:200])


# --- events that are not a household alert ------------------------------------------------


def enqueue_system(
    key: str,
    severity: str,
    text_zh: str,
    text_en: str,
    link: str = "",
    roles: tuple[str, ...] = ("duty",),
    team=None,
    at: datetime | None = None,
) -> list[Notification]:
    """Queue a notification about an event that is not a household alert: e.g.
    enqueue_system("monitor-stopped", "critical", "监测进程已停止", "The monitor stopped",
    link="/healthz", roles=("duty", "lead")). Each enabled channel whose audience is in
    `roles` (duty / lead) gets one row, in its own language; the worker sends it like any
    other. Call it inside the transaction that records the event, and it is sent only if that
    commits. Repeated calls with the same key while an earlier one is still waiting add nothing.
    """
    if severity not in Severity._value2member_map_:
        raise ValueError(f"severity must be one of {[s.value for s in Severity]}, got {severity!r}")
    at = at or timezone.now()
    if Notification.objects.filter(
        system_key=key, status__in=[Notification.Status.PENDING, Notification.Status.SENDING]
    ).exists():
        return []
    teams = [team.pk] if team is not None else []
    rows = []
    for role in roles:
        qs = Channel.objects.filter(enabled=True, audience=role)
        qs = qs.filter(Q(team__isnull=True) | Q(team_id__in=teams)) if teams else qs
        for ch in qs:
            title = "[Lianxin] " if ch.language == "en" else "【连心】"
            text = messages.system(text_zh, text_en, ch.language)
            rows.append(
                Notification(
                    key=Notification.new_key(),
                    system_key=key,
                    channel=ch,
                    to=Notification.To.STAFF,
                    severity=severity,
                    language=ch.language,
                    title=(title + text)[:200],
                    text=text,
                    link=link,
                    due_at=at,
                )
            )
    if rows:
        wake.soon()
    return Notification.objects.bulk_create(rows)
