"""The case page of an alert and the steps on it that reach outside the alert: calls and work
orders. It composes lianxin.alerts (the alert, its timeline) and this app (calls, work orders,
the team), so it lives here, above both; its URLs keep their names in the alerts namespace."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Action, Alert, AwayPeriod, Outcome, TransitionError
from lianxin.care.forms import errors_text
from lianxin.care.roles import require
from lianxin.care.service import visible_households
from lianxin.dispatch import service
from lianxin.dispatch.forms import CallForm, DispatchForm
from lianxin.dispatch.models import AuditEntry, Call
from lianxin.engine.findings import Kind


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
        "members": service.assignable(home),
        "work_orders": alert.work_orders.select_related("assignee"),
        "times": [(Action(a).label, d) for a, d in alerts.response_times(alert)],
        "now": timezone.now(),
    }
    if home is not None:
        recipients = list(home.care_recipients.prefetch_related("contacts", "consents"))
        ctx |= {
            "home": home,
            "recipients": recipients,
            "away": alerts.active_away(home, timezone.now()),
            # The case page offers an away period where one would silence this alert.
            "away_kind": alert.kind in AwayPeriod.SILENCES,
        }
        service.audit(request, AuditEntry.Action.VIEW, "alert", home, pk=alert.pk, code=home.code)
    if alert.kind == Kind.GRID_OUTAGE:
        ctx["welfare"] = service.welfare_list(alert)
        ctx["children"] = alert.children.select_related("household")
        service.audit(request, AuditEntry.Action.VIEW, "welfare_list", pk=alert.pk)
    return render(request, "alerts/detail.html", ctx)


def _act(request, pk, fn):
    alert = get_object_or_404(Alert.objects.select_related("household"), pk=pk)
    try:
        # The step says what it did; the case page shows it as a confirmation.
        messages.success(request, fn(alert))
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("alerts:detail", pk=alert.pk)


def _valid(form):
    if not form.is_valid():
        raise TransitionError(errors_text(form))
    return form.cleaned_data


@require_POST
@require("alerts.change_alert", "dispatch.add_call")
def call(request, pk):
    def do(alert):
        d = _valid(CallForm(request.POST))
        home = alert.household
        if home is None:
            # A welfare call on a grid outage: only to a home inside it.
            code = d["household"]
            if code not in alert.households:
                raise TransitionError(_("That home is not inside this grid outage."))
            home = get_object_or_404(visible_households(request.user), code=code)
        call = service.log_call(
            request.user, home, d["result"], d["note"], alert=alert, called=d["called"]
        )
        return _("Call logged: %(result)s.") % {"result": call.get_result_display()}

    return _act(request, pk, do)


@require_POST
@require("alerts.change_alert", "dispatch.add_workorder")
def dispatch_order(request, pk):
    def do(alert):
        d = _valid(DispatchForm(request.POST, household=alert.household))
        order = service.dispatch(request.user, alert, d["assignee"], d["request"])
        return _("Work order %(n)s sent to %(who)s.") % {
            "n": order.pk,
            "who": d["assignee"].get_full_name() or d["assignee"].get_username(),
        }

    return _act(request, pk, do)
