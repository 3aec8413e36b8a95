"""The case steps after acknowledgement: calls, work orders, visits; who may see what; the audit
log. Every step that belongs to an alert is also written to its append-only event log."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import Action, Alert, Outcome, Status, TransitionError
from lianxin.alerts.service import StillPersists, persists_message
from lianxin.care.models import CareRecipient, Household, Team
from lianxin.care.roles import Role, sees_everything
from lianxin.dispatch.audit_codes import MESSAGES, english
from lianxin.dispatch.models import AuditEntry, Call, WorkOrder


def log_call(
    user,
    household: Household,
    result: str,
    note: str = "",
    alert: Alert | None = None,
    called: str = "",
) -> Call:
    if result not in Call.Result.values:
        raise TransitionError(_("Choose how the call went."))
    with transaction.atomic():
        call = Call.objects.create(
            alert=alert,
            household=household,
            by=user,
            result=result,
            note=note.strip(),
            called=called.strip(),
        )
        if alert is not None:
            if alert.status in (Status.OPEN, Status.INHIBITED, Status.SILENCED):
                # Calling is working the alert: whoever calls holds it.
                alert.holder = user
                alert.transition(
                    Status.ACKNOWLEDGED, actor=user, action=Action.ACKNOWLEDGED, at=call.at
                )
            alert.log(
                Action.CALL,
                actor=user,
                note=call.note,
                data={
                    "call": call.pk,
                    "result": result,
                    "called": call.called,
                    # A welfare call (grid outage) reaches one of many homes: say which.
                    "household": household.code,
                },
                at=call.at,
            )
    return call


def dispatch(user, alert: Alert, assignee, request: str) -> WorkOrder:
    """Send a team member to the home of an alert."""
    if alert.household is None:
        raise TransitionError(_("A grid outage goes to repair dispatch, not to a home visit."))
    if alert.status == Status.DISPATCHED:
        raise TransitionError(_("A work order is already out for this alert."))
    team = team_of(assignee)
    with transaction.atomic():
        order = WorkOrder.objects.create(
            source=WorkOrder.Source.ALERT,
            alert=alert,
            household=alert.household,
            request=request.strip() or alert.reason,
            team=team,
            assignee=assignee,
            created_by=user,
        )
        if alert.holder_id is None:
            alert.holder = user
        if alert.status in (Status.OPEN, Status.INHIBITED, Status.SILENCED):
            # Sending a crew is working the alert: it is acknowledged, at the same moment, so
            # the response-time figures have no hole.
            alert.transition(
                Status.ACKNOWLEDGED,
                actor=user,
                action=Action.ACKNOWLEDGED,
                data={"implied_by": "dispatch"},
                at=order.created_at,
            )
        alert.transition(
            Status.DISPATCHED,
            actor=user,
            action=Action.DISPATCHED,
            note=order.request,
            data={
                "work_order": order.pk,
                "assignee": assignee.get_username(),
                "assignee_name": assignee.get_full_name() or assignee.get_username(),
            },
            at=order.created_at,
        )
    return order


def hotline_request(user, household: Household, assignee, request: str) -> WorkOrder:
    """A resident phoned the hotline: the same kind of work order, without an alert."""
    if not request.strip():
        raise TransitionError(_("Say what the resident asked for."))
    return WorkOrder.objects.create(
        source=WorkOrder.Source.HOTLINE,
        household=household,
        request=request.strip(),
        team=team_of(assignee),
        assignee=assignee,
        created_by=user,
    )


def team_of(assignee) -> Team:
    """The team a work order for `assignee` belongs to (their first, when in several)."""
    team = Team.objects.filter(membership__user=assignee).order_by("pk").first()
    if team is None:
        raise TransitionError(
            _("%(user)s is not a member of any team.") % {"user": assignee.get_username()}
        )
    return team


def _move(order: WorkOrder, to: str):
    if to not in WorkOrder.TRANSITIONS[order.status]:
        raise TransitionError(
            _("A work order that is %(old)s cannot become %(new)s.")
            % {"old": order.get_status_display(), "new": WorkOrder.Status(to).label}
        )
    order.status = to


def arrived(user, order: WorkOrder, note: str = "") -> WorkOrder:
    with transaction.atomic():
        order = WorkOrder.objects.select_for_update().get(pk=order.pk)
        _move(order, WorkOrder.Status.ARRIVED)
        order.arrived_at = timezone.now()
        order.arrival_note = note.strip()
        order.save()
        if order.alert_id:
            order.alert.log(
                Action.ARRIVED,
                actor=user,
                note=order.arrival_note,
                data={"work_order": order.pk},
                at=order.arrived_at,
            )
    return order


def done(
    user,
    order: WorkOrder,
    outcome: str,
    note: str = "",
    satisfaction: int | None = None,
    ask_if_persisting: bool = False,
) -> WorkOrder:
    """Finish the visit. The alert it came from is resolved with the same outcome. With
    ask_if_persisting (the phone, until the field member confirms), an alert whose condition
    the meter still shows refuses with StillPersists, as the case page does."""
    if outcome not in Outcome.values:
        raise TransitionError(_("Choose an outcome."))
    if satisfaction is not None and not 1 <= satisfaction <= 5:
        raise TransitionError(_("Satisfaction is a number from 1 to 5."))
    with transaction.atomic():
        order = WorkOrder.objects.select_for_update().get(pk=order.pk)
        pending = order.alert
        if (
            ask_if_persisting
            and pending is not None
            and pending.status != Status.RESOLVED
            and pending.condition_cleared_at is None
        ):
            raise StillPersists(persists_message(pending))
        _move(order, WorkOrder.Status.DONE)
        order.done_at = timezone.now()
        order.done_note = note.strip()
        order.outcome = outcome
        order.satisfaction = satisfaction
        order.save()
        alert = order.alert
        if alert is not None:
            alert.log(
                Action.WORK_DONE,
                actor=user,
                note=order.done_note,
                data={"work_order": order.pk, "satisfaction": satisfaction, "outcome": outcome},
                at=order.done_at,
            )
            if alert.status != Status.RESOLVED:
                alert.outcome = outcome
                alert.transition(
                    Status.RESOLVED,
                    actor=user,
                    action=Action.RESOLVED,
                    note=order.done_note,
                    data={"outcome": outcome, "work_order": order.pk},
                    at=order.done_at,
                )
    return order


def cancel(user, order: WorkOrder, note: str) -> WorkOrder:
    with transaction.atomic():
        order = WorkOrder.objects.select_for_update().get(pk=order.pk)
        _move(order, WorkOrder.Status.CANCELLED)
        order.done_note = note.strip()
        order.save()
        alert = order.alert
        if alert is not None and alert.status == Status.DISPATCHED:
            alert.transition(
                Status.ACKNOWLEDGED,
                actor=user,
                action=Action.CANCELLED,
                note=order.done_note,
                data={"work_order": order.pk},
            )
    return order


def reassign(user, order: WorkOrder, assignee) -> WorkOrder:
    """Send someone else to an open work order (the first one is off shift, ill, too far)."""
    with transaction.atomic():
        order = WorkOrder.objects.select_for_update().get(pk=order.pk)
        if not order.is_open:
            raise TransitionError(
                _("A work order that is %(old)s cannot be reassigned.")
                % {"old": order.get_status_display()}
            )
        if assignee.pk == order.assignee_id:
            raise TransitionError(_("That is who it is assigned to already."))
        before = order.assignee
        order.assignee = assignee
        order.team = team_of(assignee)
        order.save(update_fields=["assignee", "team"])
        if order.alert_id:
            order.alert.log(
                Action.NOTE,
                actor=user,
                note=_("Work order %(n)s reassigned from %(old)s to %(new)s.")
                % {"n": order.pk, "old": _name(before), "new": _name(assignee)},
                data={
                    "work_order": order.pk,
                    "reassigned_from": before.get_username(),
                    "assignee": assignee.get_username(),
                },
            )
    return order


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


# --- who may see what ---------------------------------------------------------------------


def on_order_team(user, order: WorkOrder) -> bool:
    """Whether `user` may add to a work order's record (members, materials, photos): the duty
    room, or a member of the order's own team (whoever went along, not only the assignee)."""
    if sees_everything(user):
        return True
    return Team.objects.filter(pk=order.team_id, membership__user=user).exists()


# Sections that apps above dispatch add to the work-order page (lianxin.ledgers: members,
# materials, photos), so dispatch shows them without importing those apps. Each is a function
# (request, order) -> {"template": ..., more context} or None.
ORDER_PANELS: list = []


def order_panels(request, order: WorkOrder) -> list[dict]:
    return [panel for make in ORDER_PANELS if (panel := make(request, order))]


def visible_work_orders(user):
    qs = WorkOrder.objects.select_related("household", "assignee", "team", "alert")
    if sees_everything(user):
        return qs
    return qs.filter(team__membership__user=user).distinct()


def orders_board(user):
    """The duty room's work orders: the open ones oldest first, the last 50 finished."""
    qs = visible_work_orders(user)
    open_ = qs.filter(status__in=[WorkOrder.Status.ASSIGNED, WorkOrder.Status.ARRIVED])
    closed = qs.filter(status__in=[WorkOrder.Status.DONE, WorkOrder.Status.CANCELLED])
    return open_.order_by("created_at"), closed.order_by("-created_at")[:50]


def field_orders(user):
    """A field member's own work orders: open ones, most urgent first (with the residents),
    and done today."""
    orders = visible_work_orders(user).filter(assignee=user)
    mine = (
        orders.filter(status__in=[WorkOrder.Status.ASSIGNED, WorkOrder.Status.ARRIVED])
        .prefetch_related("household__care_recipients")
        # Most urgent first: a critical alert before a warning; a hotline request counts as
        # a warning; the longest-waiting first among equals.
        .annotate(urgency=Coalesce(F("alert__severity_rank"), Value(1)))
        .order_by("-urgency", "created_at")
    )
    done_today = orders.filter(status=WorkOrder.Status.DONE, done_at__date=timezone.localdate())
    return [
        (o, o.household.care_recipients.all() if o.household else ()) for o in mine
    ], done_today


def hotline_homes():
    """The homes a hotline request can be for: those with someone in care."""
    return Household.objects.filter(care_recipients__isnull=False).distinct().order_by("code")


def residents_for_export():
    return CareRecipient.objects.select_related("household", "team").prefetch_related(
        "contacts", "consents"
    )


def audit_entries(user: str = "", since=None, until=None, resident: str = ""):
    """The audit log, newest first, narrowed to a person (username or name), local days and a
    resident (name, English name, phone or household code)."""
    qs = AuditEntry.objects.select_related("user", "household")
    if user:
        qs = qs.filter(
            Q(user__username__icontains=user)
            | Q(user__first_name__icontains=user)
            | Q(user__last_name__icontains=user)
        )
    if since:
        qs = qs.filter(at__gte=_local_midnight(since))
    if until:
        qs = qs.filter(at__lt=_local_midnight(until + timedelta(days=1)))
    if resident:
        qs = qs.filter(
            Q(household__code__iexact=resident)
            | Q(household__care_recipients__name__icontains=resident)
            | Q(household__care_recipients__name_en__icontains=resident)
        ).distinct()
    return qs


def _local_midnight(day):
    from datetime import datetime, time

    return timezone.make_aware(datetime.combine(day, time()))


def team_members():
    """Who can be sent: the field members (and leads) of the teams."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(
            membership__isnull=False, groups__name__in=[Role.FIELD_MEMBER, Role.TEAM_LEAD]
        )
        .distinct()
        .order_by("username")
    )


def members_by_team():
    """The hotline form's choice of people, grouped by team (a request goes to the team that
    cares for the home)."""
    from django.contrib.auth import get_user_model

    members = team_members()
    teams = []
    for team in Team.objects.filter(membership__user__in=members).distinct().order_by("name"):
        teams.append(
            (
                team,
                get_user_model()
                .objects.filter(membership__team=team, pk__in=members)
                .order_by("username"),
            )
        )
    return teams


def assignable(household: Household | None = None):
    """Who the case page offers to send to a home: the members of the team(s) caring for its
    residents; every team member when no team cares for it (yet)."""
    members = team_members()
    if household is None:
        return members
    teams = household.care_recipients.exclude(team=None).values("team")
    own = members.filter(membership__team__in=teams)
    return own if own.exists() else members


def order_assignable(order: WorkOrder):
    """Who a work order can be reassigned to: the teams caring for its home, or, for work on a
    transformer area (no home), the order's own team."""
    if order.household_id is None:
        return team_members().filter(membership__team=order.team_id)
    return assignable(order.household)


def welfare_list(outage: Alert):
    """Enrolled residents inside a grid outage, to phone first: those whose own alarm it muted,
    then the oldest; each with whether someone has called them since it began."""
    inhibited = set(
        outage.children.filter(status=Status.INHIBITED).values_list("household_id", flat=True)
    )
    # The latest call to each home: a row shows how it went, and only a call that reached
    # someone takes the home down the list ("no answer" stays up, to be called again).
    last = {}
    for c in Call.objects.filter(alert=outage).order_by("at", "pk"):
        last[c.household_id] = c
    people = (
        CareRecipient.objects.filter(household__code__in=outage.households)
        .select_related("household")
        .prefetch_related("contacts")
    )
    rows = []
    for p in people:
        call = last.get(p.household_id)
        reached = call is not None and call.result != Call.Result.NO_ANSWER
        rows.append(
            {
                "person": p,
                "alarm": p.household_id in inhibited,
                "called": reached,
                "call": call,
            }
        )
    rows.sort(key=lambda r: (r["called"], not r["alarm"], r["person"].birth_year))
    return rows


# The same person seeing the same thing again within this time is one entry, not one per
# page load: the case page after each step, the queue's polling.
VIEW_AGAIN = timedelta(minutes=10)


def audit(
    request, action: str, entry: str, household: Household | None = None, **params
) -> AuditEntry | None:
    """Write what `request.user` looked at or exported: `entry` is a code
    (lianxin.dispatch.audit_codes) and `params` fill it in. An `entry` that is no code is kept
    as plain text, shown as written in every language."""
    if entry in MESSAGES:
        code, what = entry, english(entry, params)
    else:
        code, what, params = "", entry, {}
    what = what[:200]
    if action == AuditEntry.Action.VIEW and request.user.is_authenticated:
        seen = AuditEntry.objects.filter(
            user=request.user,
            action=action,
            code=code,
            what=what,
            household=household,
            at__gte=timezone.now() - VIEW_AGAIN,
        )
        if seen.exists():
            return None
    return AuditEntry.objects.create(
        user=request.user,
        action=action,
        code=code,
        params=params,
        what=what,
        household=household,
        path=request.get_full_path()[:300],
        ip=request.META.get("REMOTE_ADDR") or None,
    )


def record_view(sender, request, entry, household=None, params=None, **kwargs):
    """Receives lianxin.care.audit.personal_data_viewed: the apps below dispatch announce what
    a person looked at; the audit log is kept here."""
    audit(request, AuditEntry.Action.VIEW, entry, household, **(params or {}))
