from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from lianxin.alerts.models import Alert
from lianxin.care.models import CareRecipient, Household, TransformerArea
from lianxin.dispatch import service as dispatch
from lianxin.dispatch.models import AuditEntry
from lianxin.web.access import require
from lianxin.web.load import RANGES, load_chart


@login_required
def home(request):
    """Each role lands where its work is: the queue, or the field member's phone view."""
    if request.user.has_perm("alerts.view_alert"):
        return redirect("alerts:queue")
    if request.user.has_perm("dispatch.view_workorder"):
        return redirect("dispatch:field")
    return render(
        request,
        "home.html",
        {
            "households": Household.objects.count(),
            "care_recipients": CareRecipient.objects.count(),
            "transformer_areas": TransformerArea.objects.count(),
        },
    )


def _household(request, code):
    # A field member sees only the homes of their team: another home is as good as absent.
    return get_object_or_404(dispatch.visible_households(request.user), code=code)


@require("care.view_household", "care.view_carerecipient")
def household(request, code):
    home = _household(request, code)
    alert = None
    if request.GET.get("alert", "").isdigit():
        alert = Alert.objects.filter(household=home, pk=int(request.GET["alert"])).first()
    now = timezone.now()
    dispatch.audit(request, AuditEntry.Action.VIEW, f"household {home.code}", home)
    return render(
        request,
        "web/household.html",
        {
            "home": home,
            "alert": alert,
            "recipients": home.care_recipients.select_related("team").prefetch_related(
                "contacts", "consents"
            ),
            "meters": home.meters.all(),
            "alerts": home.alerts.order_by("-opened_at")[:50],
            "orders": home.work_orders.select_related("assignee").order_by("-created_at")[:50],
            "calls": home.calls.select_related("by").order_by("-at")[:50],
            "away_periods": home.away_periods.select_related("author").order_by("-starts_at")[:20],
            "now": now,
            "ranges": list(RANGES),
            "can_set_away": request.user.has_perm("alerts.add_awayperiod"),
            "can_open_alerts": request.user.has_perm("alerts.view_alert"),
        },
    )


@require("care.view_household")
def household_load(request, code):
    home = _household(request, code)
    range_key = request.GET.get("range", "48h")
    if range_key not in RANGES:
        raise Http404(f"unknown range {range_key!r}; use one of {', '.join(RANGES)}")
    alert = None
    if request.GET.get("alert", "").isdigit():
        alert = Alert.objects.filter(household=home, pk=int(request.GET["alert"])).first()
    return JsonResponse(load_chart(home, range_key, alert))


def forbidden(request, exception=None):
    return render(request, "403.html", status=403)
