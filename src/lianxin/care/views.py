"""The household page: one home, its resident, its chart and its history."""

from django import forms
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lianxin.care import service
from lianxin.care.audit import viewed
from lianxin.care.forms import IdField, bad_request
from lianxin.care.roles import require


class HouseholdQuery(forms.Form):
    alert = IdField(label=_("alert"), required=False)


@require("care.view_household", "care.view_carerecipient")
def household(request, code):
    home = service.household_or_404(request.user, code)
    query = HouseholdQuery(request.GET)
    if not query.is_valid():
        return bad_request(request, query)
    viewed(request, "household", home, code=home.code)
    return render(
        request,
        "web/household.html",
        service.household_page(home, query.cleaned_data["alert"])
        | {
            "now": timezone.now(),
            "can_set_away": request.user.has_perm("alerts.add_awayperiod"),
            "can_open_alerts": request.user.has_perm("alerts.view_alert"),
        },
    )
