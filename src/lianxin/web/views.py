from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from lianxin.care.forms import IdField, bad_request
from lianxin.care.models import CareRecipient, Household, TransformerArea
from lianxin.care.roles import require
from lianxin.care.service import household_or_404
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


class LoadQuery(forms.Form):
    range = forms.CharField(required=False)
    alert = IdField(label=_("alert"), required=False)


@require("care.view_household")
def household_load(request, code):
    home = household_or_404(request.user, code)
    query = LoadQuery(request.GET)
    if not query.is_valid():
        return bad_request(request, query, json=True)
    range_key = query.cleaned_data["range"] or "48h"
    if range_key not in RANGES:
        raise Http404(f"unknown range {range_key!r}; use one of {', '.join(RANGES)}")
    alert_id = query.cleaned_data["alert"]
    alert = home.alerts.filter(pk=alert_id).first() if alert_id else None
    return JsonResponse(load_chart(home, range_key, alert))


def forbidden(request, exception=None):
    return render(request, "403.html", status=403)


def favicon(request):
    """/favicon.ico, which browsers ask for on their own (the PDF report, the admin, JSON)."""
    from django.contrib.staticfiles import finders
    from django.http import FileResponse

    response = FileResponse(
        open(finders.find("lianxin/favicon.svg"), "rb"), content_type="image/svg+xml"
    )
    response["Cache-Control"] = "public, max-age=86400"
    return response
