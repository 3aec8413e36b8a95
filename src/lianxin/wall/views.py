"""The resident directory, the wall screen (大屏) and the map."""

from django.conf import settings
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from lianxin.care.audit import viewed
from lianxin.care.forms import bad_request
from lianxin.care.models import Team, TransformerArea
from lianxin.care.roles import require
from lianxin.care.service import find_households, visible_households
from lianxin.wall import service
from lianxin.wall.forms import DirectoryQuery

PAGE_SIZE = 50


@require("care.view_household", "care.view_carerecipient")
def directory(request):
    form = DirectoryQuery(request.GET)
    if not form.is_valid():
        return bad_request(request, form)
    d = form.cleaned_data
    q = d["q"] or ""
    homes = find_households(q, request.user) if q else visible_households(request.user)
    if d["area"]:
        homes = homes.filter(transformer_area_id=d["area"])
    if d["team"]:
        homes = homes.filter(care_recipients__team_id=d["team"])
    if (d["scope"] or "residents") == "residents":
        homes = homes.filter(care_recipients__isnull=False)
    rows = service.directory_rows(homes.distinct())
    page = Paginator(rows, PAGE_SIZE).get_page(d["page"] or 1)
    if q:
        viewed(request, "directory_search", q=q[:100])
    else:
        viewed(request, "directory")
    visible = visible_households(request.user)
    return render(
        request,
        "wall/directory.html",
        {
            "form": form,
            "q": q,
            "page": page,
            "areas": TransformerArea.objects.filter(households__in=visible).distinct(),
            "teams": Team.objects.filter(care_recipients__household__in=visible).distinct(),
            "area": d["area"],
            "team": d["team"],
            "scope": d["scope"] or "residents",
        },
    )


@require("alerts.view_alert")
def wall(request):
    return render(request, "wall/screen.html", {"TIME_ZONE": settings.TIME_ZONE})


@never_cache
@require("alerts.view_alert")
def wall_data(request):
    return JsonResponse(service.wall_figures())


@require("alerts.view_alert", "care.view_household")
def map_page(request):
    return render(request, "wall/map.html")


@never_cache
@require("alerts.view_alert", "care.view_household")
def map_data(request):
    return JsonResponse(service.map_data(visible_households(request.user)))
