"""The duty room: the alert queue (live), the case page, and the case steps as POST actions."""

from datetime import datetime, time

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

from lianxin.alerts import service
from lianxin.alerts.models import (
    ACTIVE,
    Action,
    Alert,
    AwayPeriod,
    KindChoices,
    Outcome,
    Status,
    TransitionError,
)
from lianxin.care.models import CareRecipient, Household, Team, TransformerArea
from lianxin.dispatch import service as dispatch
from lianxin.dispatch.models import AuditEntry, Call
from lianxin.engine.findings import Kind
from lianxin.web.access import require

STATE_FILTERS = {
    "active": ACTIVE,
    "open": [Status.OPEN],
    "acknowledged": [Status.ACKNOWLEDGED],
    "dispatched": [Status.DISPATCHED],
    "inhibited": [Status.INHIBITED],
    "silenced": [Status.SILENCED],
    "resolved": [Status.RESOLVED],
}


def _filtered(request):
    state = request.GET.get("state") or "active"
    qs = Alert.objects.filter(status__in=STATE_FILTERS.get(state, ACTIVE)).select_related(
        "household", "transformer_area", "holder", "escalation"
    )
    if request.GET.get("kind") in KindChoices.values:
        qs = qs.filter(kind=request.GET["kind"])
    if request.GET.get("area"):
        qs = qs.filter(transformer_area__code=request.GET["area"])
    if request.GET.get("team", "").isdigit():
        qs = qs.filter(household__care_recipients__team_id=int(request.GET["team"])).distinct()
    if state == "resolved":
        return qs.order_by("-resolved_at")[:200]
    return qs.order_by(*service.WORST_FIRST)[:500]


def _rows(alerts):
    residents = {}
    homes = [a.household_id for a in alerts if a.household_id]
    for r in CareRecipient.objects.filter(household_id__in=homes).order_by("pk"):
        residents.setdefault(r.household_id, r)
    return [(a, residents.get(a.household_id)) for a in alerts]


@require("alerts.view_alert")
def queue(request):
    alerts = list(_filtered(request))
    outages = Alert.objects.filter(kind=Kind.GRID_OUTAGE.value, status__in=ACTIVE)
    return render(
        request,
        "alerts/queue.html",
        {
            "rows": _rows(alerts),
            "outages": outages,
            "teams": Team.objects.all(),
            "areas": TransformerArea.objects.all(),
            "kinds": KindChoices.choices,
            "states": [(k, _state_label(k)) for k in STATE_FILTERS],
            "f": request.GET,
            "now": timezone.now(),
        },
    )


def _state_label(key):
    return pgettext("alert state filter", "active") if key == "active" else Status(key).label


def _counts():
    return {
        "inhibited": Alert.objects.filter(status=Status.INHIBITED).count(),
        "silenced": Alert.objects.filter(status=Status.SILENCED).count(),
    }


@require("alerts.view_alert")
def queue_fragment(request):
    """What the queue page polls: the rendered rows and the ids of critical unacknowledged
    alerts, so the page can sound a cue for new ones."""
    alerts = list(_filtered(request))
    html = render_to_string(
        "alerts/_rows.html", {"rows": _rows(alerts), "now": timezone.now()}, request=request
    )
    return JsonResponse(
        {
            "html": html,
            "count": len(alerts),
            "critical_new": [
                a.pk for a in alerts if a.severity == "critical" and a.status == Status.OPEN
            ],
            "at": timezone.localtime().strftime("%H:%M:%S"),
        }
    )


@require("alerts.view_alert")
def detail(request, pk: int):
    alert = get_object_or_404(
        Alert.objects.select_related("household", "transformer_area", "holder", "parent"), pk=pk
    )
    home = alert.household
    ctx = {
        "alert": alert,
        "events": alert.events.select_related("actor"),
        "outcomes": Outcome.choices,
        "call_results": Call.Result.choices,
        "members": dispatch.team_members(),
        "work_orders": alert.work_orders.select_related("assignee"),
        "times": [(Action(a).label, d) for a, d in service.response_times(alert)],
        "now": timezone.now(),
    }
    if home is not None:
        recipients = list(home.care_recipients.prefetch_related("contacts", "consents"))
        ctx |= {
            "home": home,
            "recipients": recipients,
            "away": service.active_away(home, timezone.now()),
        }
        dispatch.audit(request, AuditEntry.Action.VIEW, f"alert {alert.pk}: {home.code}", home)
    if alert.kind == Kind.GRID_OUTAGE:
        ctx["welfare"] = welfare_list(alert)
        ctx["children"] = alert.children.select_related("household")
        dispatch.audit(request, AuditEntry.Action.VIEW, f"welfare list of alert {alert.pk}")
    return render(request, "alerts/detail.html", ctx)


def welfare_list(outage: Alert):
    """Enrolled residents inside a grid outage, to phone first: those whose own alarm it muted,
    then the oldest; each with whether someone has called them since it began."""
    inhibited = set(
        outage.children.filter(status=Status.INHIBITED).values_list("household_id", flat=True)
    )
    called = set(Call.objects.filter(alert=outage).values_list("household_id", flat=True))
    people = (
        CareRecipient.objects.filter(household__code__in=outage.households)
        .select_related("household")
        .prefetch_related("contacts")
    )
    rows = [
        {"person": p, "alarm": p.household_id in inhibited, "called": p.household_id in called}
        for p in people
    ]
    rows.sort(key=lambda r: (r["called"], not r["alarm"], r["person"].birth_year))
    return rows


def _act(request, pk, fn):
    alert = get_object_or_404(Alert, pk=pk)
    try:
        fn(alert)
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("alerts:detail", pk=alert.pk)


@require_POST
@require("alerts.change_alert")
def acknowledge(request, pk):
    return _act(request, pk, lambda a: service.acknowledge(a, request.user))


@require_POST
@require("alerts.change_alert", "dispatch.add_call")
def call(request, pk):
    def do(alert):
        home = alert.household
        if home is None:
            home = get_object_or_404(Household, code=request.POST.get("household", ""))
        dispatch.log_call(
            request.user,
            home,
            request.POST.get("result", ""),
            request.POST.get("note", ""),
            alert=alert,
            called=request.POST.get("called", ""),
        )

    return _act(request, pk, do)


@require_POST
@require("alerts.change_alert", "dispatch.add_workorder")
def dispatch_order(request, pk):
    from django.contrib.auth import get_user_model

    def do(alert):
        assignee = get_user_model().objects.filter(pk=request.POST.get("assignee") or 0).first()
        if assignee is None:
            raise TransitionError(_("Choose a team member."))
        dispatch.dispatch(request.user, alert, assignee, request.POST.get("request", ""))

    return _act(request, pk, do)


@require_POST
@require("alerts.change_alert")
def resolve(request, pk):
    return _act(
        request,
        pk,
        lambda a: service.resolve(
            a, request.user, request.POST.get("outcome", ""), request.POST.get("note", "")
        ),
    )


@require_POST
@require("alerts.change_alert")
def note(request, pk):
    return _act(
        request, pk, lambda a: service.add_note(a, request.user, request.POST.get("note", ""))
    )


# --- away periods, set from the household page -------------------------------------------


def _parse_local(value: str, default_time: time):
    """A datetime-local or date input, read in the deployment's time zone; a bare date takes
    default_time."""
    value = (value or "").strip()
    day = parse_date(value) if len(value) == 10 else None
    dt = datetime.combine(day, default_time) if day else parse_datetime(value)
    if dt is None:
        return None
    if timezone.is_naive(dt):
        dt = timezone.make_aware(dt)
    return dt


@require_POST
@require("alerts.add_awayperiod")
def add_away(request, code):
    home = get_object_or_404(Household, code=code)
    raw_start = request.POST.get("starts_at", "").strip()
    starts = _parse_local(raw_start, time(0, 0)) if raw_start else timezone.now()
    ends = _parse_local(request.POST.get("ends_at", ""), time(23, 59))
    try:
        if starts is None:
            raise TransitionError(
                _("Cannot read the start %(value)s: use a date and time.") % {"value": raw_start}
            )
        if ends is None:
            raise TransitionError(_("Give the date the resident is back."))
        service.add_away_period(home, request.user, starts, ends, request.POST.get("comment", ""))
        messages.success(request, _("Away period saved: inactivity alerts are silenced."))
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("household", code=home.code)


@require_POST
@require("alerts.change_awayperiod")
def end_away(request, pk):
    away = get_object_or_404(AwayPeriod, pk=pk)
    service.end_away_period(away, request.user)
    return redirect("household", code=away.household.code)
