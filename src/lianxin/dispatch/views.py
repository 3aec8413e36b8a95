"""Work orders for the duty room, the field member's phone view, the audit log and exports."""

import csv

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

from lianxin.alerts.models import Outcome, TransitionError
from lianxin.care.forms import errors_text
from lianxin.care.roles import require
from lianxin.csvcells import safe_cell
from lianxin.dispatch import service
from lianxin.dispatch.forms import DoneForm, HotlineForm, StepNoteForm
from lianxin.dispatch.models import AuditEntry


@require("dispatch.view_workorder", "alerts.view_alert")
def orders(request):
    """The duty room's view of work orders: open ones first, then the last finished."""
    open_, closed = service.orders_board(request.user)
    return render(
        request,
        "dispatch/orders.html",
        {
            "open": open_,
            "closed": closed,
            "members": service.team_members(),
            "households": service.hotline_homes(),
            "preselect": request.GET.get("household", ""),
        },
    )


@require_POST
@require("dispatch.add_workorder")
def hotline(request):
    form = HotlineForm(request.POST)
    try:
        if not form.is_valid():
            raise TransitionError(errors_text(form))
        d = form.cleaned_data
        order = service.hotline_request(request.user, d["household"], d["assignee"], d["request"])
        messages.success(request, _("Work order %(n)s sent.") % {"n": order.pk})
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("dispatch:orders")


@require("dispatch.view_workorder")
def field(request):
    """The phone view: my open work orders, nearest step first."""
    mine, done_today = service.field_orders(request.user)
    service.audit(request, AuditEntry.Action.VIEW, "field view: my work orders")
    return render(
        request,
        "dispatch/field.html",
        {
            "orders": mine,
            "done_today": done_today,
        },
    )


def _people(home):
    return list(home.care_recipients.prefetch_related("contacts"))


def _visible_order(request, pk):
    # Another team's order is as good as absent for a field member.
    return get_object_or_404(service.visible_work_orders(request.user), pk=pk)


@require("dispatch.view_workorder")
def order(request, pk):
    order = _visible_order(request, pk)
    service.audit(request, AuditEntry.Action.VIEW, f"work order {order.pk}", order.household)
    return render(
        request,
        "dispatch/order.html",
        {
            "order": order,
            "people": _people(order.household),
            "outcomes": Outcome.choices,
            "scores": range(1, 6),
        },
    )


def _step(request, pk, form_class, fn, then=None):
    """Run one work-order step as its assignee (or someone from the duty room), with the
    form's data."""
    order = _visible_order(request, pk)
    if not (order.assignee_id == request.user.pk or service.sees_everything(request.user)):
        raise PermissionDenied
    form = form_class(request.POST)
    try:
        if not form.is_valid():
            raise TransitionError(errors_text(form))
        fn(order, form.cleaned_data)
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("dispatch:order", pk=order.pk)
    if then == "order":
        return redirect("dispatch:order", pk=order.pk)
    return redirect("dispatch:field" if order.assignee_id == request.user.pk else "dispatch:orders")


@require_POST
@require("dispatch.change_workorder")
def arrived(request, pk):
    return _step(
        request,
        pk,
        StepNoteForm,
        lambda o, d: service.arrived(request.user, o, d["note"]),
        then="order",
    )


@require_POST
@require("dispatch.change_workorder")
def done(request, pk):
    def do(order, d):
        service.done(request.user, order, d["outcome"], d["note"], d["satisfaction"])
        messages.success(request, _("Work order %(n)s done. Thank you.") % {"n": order.pk})
        alert = order.alert
        if alert is not None and alert.condition_cleared_at is None:
            # Not refused at the door (the meter may lag the repair), but said: the duty room
            # gets the case again if the meter keeps showing it.
            messages.warning(
                request,
                _(
                    "The meter data still shows %(kind)s. If it still does in %(minutes)d min, "
                    "the alert is raised again."
                )
                % {
                    "kind": alert.get_kind_display(),
                    "minutes": settings.LIANXIN_RERAISE_AFTER_MINUTES,
                },
            )

    return _step(request, pk, DoneForm, do)


@require_POST
@require("dispatch.change_workorder", "alerts.view_alert")
def cancel(request, pk):
    return _step(request, pk, StepNoteForm, lambda o, d: service.cancel(request.user, o, d["note"]))


@require("dispatch.view_auditentry")
def audit_log(request):
    page = Paginator(service.audit_entries(), 100).get_page(request.GET.get("page"))
    return render(request, "dispatch/audit.html", {"page": page})


@require("dispatch.export_personal_data")
def export_residents(request):
    """The care-recipient contact list as CSV (UTF-8 with BOM so Excel reads the Chinese)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="care-recipients-{stamp}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            pgettext("person", "name"),
            _("birth year"),
            _("phone"),
            _("household code"),
            _("address"),
            _("team"),
            _("consent"),
            _("emergency contacts"),
            _("risk notes"),
        ]
    )
    people = service.residents_for_export()
    n = 0
    for p in people:
        contacts = "; ".join(f"{c.name} ({c.relation}) {c.phone}" for c in p.contacts.all())
        # Cells a spreadsheet could run as formulas are escaped (OWASP CSV injection).
        writer.writerow(
            map(
                safe_cell,
                [
                    p.name,
                    p.birth_year,
                    p.phone,
                    p.household.code,
                    p.household.address,
                    p.team.name if p.team else "",
                    _("yes") if p.has_consent else _("no"),
                    contacts,
                    p.risk_notes,
                ],
            )
        )
        n += 1
    service.audit(request, AuditEntry.Action.EXPORT, f"care recipients CSV ({n} rows)")
    return response
