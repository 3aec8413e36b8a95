"""The duty room's queue (live) and the steps on an alert itself: acknowledge, resolve, note,
and away periods. The case page, calls and work orders belong to lianxin.dispatch."""

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_POST

from lianxin.alerts import service
from lianxin.alerts.cue import cued
from lianxin.alerts.forms import AwayForm, CloseClearedForm, NoteForm, QueueFilter, ResolveForm
from lianxin.alerts.models import (
    Alert,
    AwayPeriod,
    KindChoices,
    Outcome,
    Status,
    TransitionError,
)
from lianxin.care.audit import viewed
from lianxin.care.forms import bad_request, errors_text
from lianxin.care.models import Team, TransformerArea
from lianxin.care.roles import require
from lianxin.care.service import household_or_404

# The most rows the queue shows at once (resolved: the latest).
QUEUE_ROWS = 500
RESOLVED_ROWS = 200


def _alerts(query: QueueFilter) -> list[Alert]:
    filters = query.filters()
    limit = RESOLVED_ROWS if filters["state"] == "resolved" else QUEUE_ROWS
    return list(service.queue(**filters)[:limit])


@require("alerts.view_alert")
def queue(request):
    query = QueueFilter(request.GET)
    if not query.is_valid():
        return bad_request(request, query)
    alerts = _alerts(query)
    viewed(request, "alert_queue")
    return render(
        request,
        "alerts/queue.html",
        {
            "rows": service.with_residents(alerts),
            "resolved": query.filters()["state"] == "resolved",
            "cued": _cued(alerts),
            "cleared": service.cleared_in_queue().count(),
            "outcomes": Outcome.choices,
            "outages": service.active_outages(),
            "counts": service.not_in_queue(),
            "teams": Team.objects.all(),
            "areas": TransformerArea.objects.all(),
            "kinds": KindChoices.choices,
            "states": [(k, _state_label(k)) for k in service.STATE_FILTERS],
            "f": request.GET,
            "now": timezone.now(),
        },
    )


def _cued(alerts) -> set[int]:
    return {
        a.pk
        for a in alerts
        if a.status == Status.OPEN and cued(settings.LIANXIN_CUE, a.kind, a.severity)
    }


def _state_label(key):
    return pgettext("alert state filter", "active") if key == "active" else Status(key).label


@require("alerts.view_alert")
def queue_fragment(request):
    """What the queue page polls: the rendered rows and the ids of critical unacknowledged
    alerts, so the page can sound a cue for new ones."""
    query = QueueFilter(request.GET)
    if not query.is_valid():
        return bad_request(request, query, json=True)
    alerts = _alerts(query)
    viewed(request, "alert_queue")
    cue = _cued(alerts)
    html = render_to_string(
        "alerts/_rows.html",
        {
            "rows": service.with_residents(alerts),
            "now": timezone.now(),
            "resolved": query.filters()["state"] == "resolved",
            "cued": cue,
        },
        request=request,
    )
    return JsonResponse(
        {
            "html": html,
            "count": len(alerts),
            "critical_new": [
                a.pk for a in alerts if a.severity == "critical" and a.status == Status.OPEN
            ],
            # Unowned open alerts whose kind and severity sound and flash (LIANXIN_CUE).
            "cue": sorted(cue),
            "cleared": service.cleared_in_queue().count(),
            "at": timezone.localtime().strftime("%H:%M:%S"),
            # The footer's counts change during a shift too: the page replaces it as it polls.
            "footer": render_to_string(
                "alerts/_footer.html", {"counts": service.not_in_queue()}, request=request
            ).strip(),
        }
    )


def _act(request, pk, form_class, fn, success=None):
    """Run one step on an alert with the form's data; a refusal is a message on the case page,
    and so is the confirmation that it was done."""
    alert = get_object_or_404(Alert, pk=pk)
    form = form_class(request.POST) if form_class else None
    try:
        if form is not None and not form.is_valid():
            raise TransitionError(errors_text(form))
        fn(alert, form.cleaned_data if form else {})
        if success:
            messages.success(request, success)
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("alerts:detail", pk=alert.pk)


@require_POST
@require("alerts.change_alert")
def acknowledge(request, pk):
    return _act(
        request,
        pk,
        None,
        lambda a, d: service.acknowledge(a, request.user),
        success=_("Alert acknowledged: you hold it."),
    )


@require_POST
@require("alerts.change_alert")
def resolve(request, pk):
    return _act(
        request,
        pk,
        ResolveForm,
        lambda a, d: service.resolve(
            a, request.user, d["outcome"], d["note"], ask_if_persisting=not d["confirm"]
        ),
        success=_("Case closed."),
    )


@require_POST
@require("alerts.change_alert")
def close_cleared(request):
    """Close, with one outcome, the queue's alerts whose condition the engine says is over."""
    form = CloseClearedForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_text(form))
    else:
        n = service.close_cleared(request.user, form.cleaned_data["outcome"])
        messages.success(
            request,
            ngettext(
                "%(n)d alert whose condition cleared was closed.",
                "%(n)d alerts whose condition cleared were closed.",
                n,
            )
            % {"n": n},
        )
    return redirect("alerts:queue")


@require_POST
@require("alerts.change_alert")
def note(request, pk):
    return _act(request, pk, NoteForm, lambda a, d: service.add_note(a, request.user, d["note"]))


# --- away periods, set from the household page -------------------------------------------


@require_POST
@require("alerts.add_awayperiod")
def add_away(request, code):
    home = household_or_404(request.user, code)
    form = AwayForm(request.POST)
    try:
        if not form.is_valid():
            raise TransitionError(errors_text(form))
        d = form.cleaned_data
        service.add_away_period(home, request.user, d["starts_at"], d["ends_at"], d["comment"])
        messages.success(request, _("Away period saved: inactivity alerts are silenced."))
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    # Set from a case page: back to that case.
    back = Alert.objects.filter(pk=form.cleaned_data.get("alert") or 0, household=home).first()
    if back is not None:
        return redirect("alerts:detail", pk=back.pk)
    return redirect("household", code=home.code)


@require_POST
@require("alerts.change_awayperiod")
def end_away(request, pk):
    away = get_object_or_404(AwayPeriod, pk=pk)
    service.end_away_period(away, request.user)
    return redirect("household", code=away.household.code)
