from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext as _

from lianxin.care.roles import require
from lianxin.datahealth import service
from lianxin.ingest.models import ImportRun, Rejection

MAX_DAYS = 31


def _days(request) -> int:
    raw = request.GET.get("days", "7")
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= MAX_DAYS else 7


@require("ingest.view_importrun")
def health(request):
    days = _days(request)
    silent, silent_list = service.silent_meters()
    return render(
        request,
        "datahealth/health.html",
        {
            "days": days,
            "day_choices": (1, 7, 14, 31),
            "sources": service.by_source(days),
            "store_days": service.by_store_day(days),
            "silent": silent,
            "silent_list": silent_list,
        },
    )


@require("ingest.view_importrun")
def rejections(request):
    """The rejected rows of some import runs (the runs a line of the data-health page names)."""
    # Only plain ASCII numbers that fit the id column: "²" is a digit to str.isdigit, and 40
    # digits overflow SQLite's integers (a 500 before).
    ids = [
        int(i)
        for i in request.GET.get("runs", "").split(",")
        if i.isascii() and i.isdigit() and len(i) <= 18
    ][:500]
    code = request.GET.get("code", "")[:32]
    rows = Rejection.objects.filter(run_id__in=ids).select_related("run")
    if code:
        rows = rows.filter(code=code)
    page = Paginator(rows.order_by("run_id", "line", "id"), 200).get_page(request.GET.get("page"))
    runs = ImportRun.objects.filter(pk__in=ids).order_by("started_at")
    return render(
        request,
        "datahealth/rejections.html",
        {"page": page, "runs": runs, "code": code, "title": _("Rejected rows")},
    )
