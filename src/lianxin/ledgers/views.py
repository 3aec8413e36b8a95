"""The ledgers, the figures dashboard, campaigns, exports and the monthly report.

Team leads and admins only (ledgers.view_ledgers); exports also need
dispatch.export_personal_data, and every export is written to the audit log.
"""

import json
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lianxin.alerts.models import Outcome
from lianxin.care.roles import require
from lianxin.dispatch.models import AuditEntry
from lianxin.dispatch.service import audit
from lianxin.ledgers import attachments, exports, imports
from lianxin.ledgers.figures import figures
from lianxin.ledgers.forms import FilterForm, month_value
from lianxin.ledgers.ledgers import LEDGERS
from lianxin.ledgers.models import Attachment, Campaign
from lianxin.ledgers.service import campaign_figures

VIEW = "ledgers.view_ledgers"
EXPORT = "dispatch.export_personal_data"


def _filters(request, types=()):
    form = FilterForm(request.GET or None, types=types)
    if form.is_bound:
        form.is_valid()
    scope, type_ = form.scope()
    return form, scope, type_


def _query(request, **override) -> str:
    q = request.GET.copy()
    for k, v in override.items():
        q[k] = v
    return q.urlencode()


def chart_data(f) -> dict:
    """What the dashboard's charts draw, labelled in the reader's language."""
    kinds = f["alerts_by_kind"]
    outcomes = sorted({o for k in kinds for o in k["outcomes"]})
    labels = dict(Outcome.choices)
    return {
        "days": [f"{d:%m-%d}" for d, _v, _a in f["daily"]],
        "visits": [v for _d, v, _a in f["daily"]],
        "alerts": [a for _d, _v, a in f["daily"]],
        "kinds": [str(k["label"]) for k in kinds],
        "open": [k["total"] - k["resolved"] for k in kinds],
        "outcomes": [
            {
                "name": str(labels.get(o, _("no outcome"))),
                "data": [k["outcomes"].get(o, 0) for k in kinds],
            }
            for o in outcomes
        ],
        "response": {
            "labels": [_("to acknowledgement"), _("to first call"), _("to arrival")],
            "median": [f["response"][s]["median"] for s in ("ack", "call", "arrival")],
            "p90": [f["response"][s]["p90"] for s in ("ack", "call", "arrival")],
        },
        "t": {
            "visits": _("visits"),
            "alerts": _("alerts"),
            "open": _("not resolved"),
            "median": _("median"),
            "p90": _("90th percentile"),
            "minutes": _("minutes"),
        },
    }


@require(VIEW)
def dashboard(request):
    form, scope, _type = _filters(request)
    f = figures(scope)
    return render(
        request,
        "ledgers/dashboard.html",
        {
            "form": form,
            "f": f,
            "scope": scope,
            "month": month_value(scope.period),
            "charts": chart_data(f),
            "can_export": request.user.has_perm(EXPORT),
            "query": _query(request),
        },
    )


@require(VIEW)
def ledger(request, slug):
    led = LEDGERS.get(slug)
    if led is None:
        raise Http404
    form, scope, type_ = _filters(request, led.types)
    raw = request.GET.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
    page = led.page(scope, type_, number)
    pages = max(1, -(-page.total // 100))
    if slug == "recipients":
        audit(request, AuditEntry.Action.VIEW, "ledger_page", n=number)
    return render(
        request,
        "ledgers/ledger.html",
        {
            "ledger": led,
            "form": form,
            "scope": scope,
            "columns": led.columns,
            "rows": [[row[k] for k, _l in led.columns] for row in page.rows],
            "total": page.total,
            "number": number,
            "pages": pages,
            "prev": _query(request, page=number - 1) if number > 1 else "",
            "next": _query(request, page=number + 1) if number < pages else "",
            "query": _query(request),
            "can_export": request.user.has_perm(EXPORT),
        },
    )


@require(VIEW, EXPORT)
def export(request, slug, fmt):
    led = LEDGERS.get(slug)
    if led is None or fmt not in ("csv", "xlsx"):
        raise Http404
    _form, scope, type_ = _filters(request, led.types)
    make = exports.csv_response if fmt == "csv" else exports.xlsx_response
    response, n = make(led, scope, type_)
    audit(
        request,
        AuditEntry.Action.EXPORT,
        "ledger_export",
        ledger=led.slug,
        month=scope.period.label,
        fmt=fmt.upper(),
        n=n,
    )
    return response


@require(VIEW, EXPORT)
def report_pdf(request):
    from lianxin.ledgers.report import render_pdf

    _form, scope, _type = _filters(request)
    lang = request.GET.get("lang") or get_language() or "zh-hans"
    if lang not in ("zh-hans", "en"):
        raise Http404
    pdf = render_pdf(scope, lang)
    audit(
        request, AuditEntry.Action.EXPORT, "monthly_report_pdf", month=scope.period.label, lang=lang
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="lianxin-report-{scope.period.label}-{lang}.pdf"'
    )
    return response


@require(VIEW)
def campaigns(request):
    items = Campaign.objects.select_related("team").order_by("-starts_on")
    return render(request, "ledgers/campaigns.html", {"campaigns": items})


@require(VIEW)
def campaign(request, pk):
    c = get_object_or_404(Campaign.objects.select_related("team"), pk=pk)
    f = campaign_figures(c)
    chart = {
        "days": [f"{d:%m-%d}" for d, _n, _m in f["daily"]],
        "restored": [n for _d, n, _m in f["daily"]],
        "members": [m for _d, _n, m in f["daily"]],
        "t": {"restored": _("households restored"), "members": _("members out")},
    }
    return render(
        request,
        "ledgers/campaign.html",
        {"c": c, "f": f, "chart": json.dumps(chart, ensure_ascii=False), "now": timezone.now()},
    )


IMPORT = (VIEW, "care.add_carerecipient", "care.change_carerecipient", "care.add_household")


@require(*IMPORT)
def import_template(request):
    response = HttpResponse(imports.template_xlsx(), content_type=exports.XLSX)
    response["Content-Disposition"] = 'attachment; filename="care-recipients-template.xlsx"'
    return response


@require(*IMPORT)
def import_recipients(request):
    """Upload → preview (nothing written) → import. The upload waits under LIANXIN_HOME."""
    home = Path(settings.LIANXIN_HOME)
    context = {"columns": imports.COLUMNS}
    if request.method == "POST" and request.POST.get("token"):
        path = imports.stored(home, request.POST["token"])
        if path is None:
            messages.error(request, _("That upload has expired; upload the file again."))
            return redirect("ledgers:import")
        name = path.with_suffix(".name").read_text(encoding="utf-8")
        try:
            result = imports.read(name, path.read_bytes())
            counts = imports.apply(result, request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("ledgers:import")
        path.unlink(missing_ok=True)
        path.with_suffix(".name").unlink(missing_ok=True)
        messages.success(
            request,
            _("Imported %(file)s: %(c)d created, %(u)d updated, %(n)d unchanged.")
            % {
                "file": name,
                "c": counts["create"],
                "u": counts["update"],
                "n": counts["unchanged"],
            },
        )
        return redirect("ledgers:ledger", slug="recipients")
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, _("Choose a file to upload."))
            return redirect("ledgers:import")
        name = Path(upload.name or "upload").name[:200]
        try:
            if upload.size > imports.MAX_BYTES:
                raise imports.ImportError_(
                    _("%(file)s is larger than %(mb)d MB.")
                    % {"file": name, "mb": imports.MAX_BYTES // 1024 // 1024}
                )
            data = upload.read()
            result = imports.read(name, data)
        except ValidationError as exc:
            context["file_error"] = " ".join(exc.messages)
            return render(request, "ledgers/import.html", context, status=400)
        token = uuid.uuid4().hex
        folder = home / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        imports.forget_old(folder)
        (folder / token).write_bytes(data)
        (folder / token).with_suffix(".name").write_text(name, encoding="utf-8")
        context.update(
            {
                "result": result,
                "token": token,
                "created": result.count("create"),
                "updated": result.count("update"),
                "unchanged": result.count("unchanged"),
                "bad": len(result.errors),
            }
        )
        return render(request, "ledgers/import.html", context, status=200)
    return render(request, "ledgers/import.html", context)


OWNERS = {
    "work_order": ("dispatch", "WorkOrder"),
    "inspection": ("ledgers", "Inspection"),
    "campaign": ("ledgers", "Campaign"),
    "activity": ("ledgers", "Activity"),
}


@require_POST
@require(VIEW, "ledgers.add_attachment")
def attach(request, owner, pk):
    """Upload a photo or a scanned form for one record; checked by type and size."""
    from django.apps import apps

    if owner not in OWNERS:
        raise Http404
    obj = get_object_or_404(apps.get_model(*OWNERS[owner]), pk=pk)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise attachments.AttachmentError(_("Choose a file to upload."))
        att = attachments.attach(request.user, upload, **{owner: obj})
        messages.success(request, _("%(name)s attached.") % {"name": att.name})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    return redirect(back or "ledgers:dashboard")


@require(VIEW)
def attachment(request, pk):
    att = get_object_or_404(Attachment, pk=pk)
    response = FileResponse(attachments.open_attachment(att), content_type=att.content_type)
    response["Content-Disposition"] = f'inline; filename="{att.pk}.{att.path.rsplit(".", 1)[-1]}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
