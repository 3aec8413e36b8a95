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
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

from lianxin.alerts.models import Outcome, Status, TransitionError
from lianxin.alerts.service import StillPersists
from lianxin.care.forms import bad_request, errors_text
from lianxin.care.roles import require
from lianxin.csvcells import safe_cell
from lianxin.dispatch import service
from lianxin.dispatch.forms import AuditFilter, DoneForm, HotlineForm, ReassignForm, StepNoteForm
from lianxin.dispatch.models import AuditEntry


@require("dispatch.view_workorder", "alerts.view_alert")
def orders(request):
    """The duty room's view of work orders: open ones first, then the last finished."""
    return _orders_page(request)


def _orders_page(request, form=None, status=200):
    open_, closed = service.orders_board(request.user)
    return render(
        request,
        "dispatch/orders.html",
        {
            "open": open_,
            "closed": closed,
            "teams": service.members_by_team(),
            "households": service.hotline_homes(),
            "preselect": request.GET.get("household", ""),
            "form": form,
        },
        status=status,
    )


@require_POST
@require("dispatch.add_workorder")
def hotline(request):
    form = HotlineForm(request.POST, user=request.user)
    if form.is_valid():
        d = form.cleaned_data
        try:
            order = service.hotline_request(
                request.user, d["household"], d["assignee"], d["request"]
            )
        except TransitionError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("dispatch:orders")
        messages.success(request, _("Work order %(n)s sent.") % {"n": order.pk})
        return redirect("dispatch:orders")
    if form.matches:
        # Several homes match the name: the page offers them, with what was typed kept.
        return _orders_page(request, form)
    messages.error(request, errors_text(form))
    return redirect("dispatch:orders")


@require("dispatch.view_workorder")
def field(request):
    """The phone view: my open work orders, nearest step first."""
    mine, done_today = service.field_orders(request.user)
    service.audit(request, AuditEntry.Action.VIEW, "field_orders")
    return render(
        request,
        "dispatch/field.html",
        {
            "orders": mine,
            "done_today": done_today,
        },
    )


def _people(home):
    if home is None:  # work on a transformer area, not at a home
        return []
    return list(home.care_recipients.prefetch_related("contacts"))


def _visible_order(request, pk):
    # Another team's order is as good as absent for a field member.
    return get_object_or_404(service.visible_work_orders(request.user), pk=pk)


@require("dispatch.view_workorder")
def order(request, pk):
    order = _visible_order(request, pk)
    service.audit(request, AuditEntry.Action.VIEW, "work_order", order.household, pk=order.pk)
    # The duty room reads the order at its desk (back to the alert, reassign); the assignee
    # works it on the phone (arrived, done).
    desk = order.assignee_id != request.user.pk and request.user.has_perm("alerts.view_alert")
    return render(
        request,
        "dispatch/order_desk.html" if desk else "dispatch/order.html",
        _order_context(request, order, desk),
    )


def _order_context(request, order, desk: bool) -> dict:
    alert = order.alert
    return {
        "order": order,
        "people": _people(order.household),
        "outcomes": Outcome.choices,
        "scores": SCORES,
        "members": service.order_assignable(order) if desk else (),
        "panels": service.order_panels(request, order),
        # The phone's "done" asks before closing an alert the meter still shows.
        "still_persists": alert is not None
        and alert.status != Status.RESOLVED
        and alert.condition_cleared_at is None,
    }


# The satisfaction scale, each point with its words (the field member reads them out).
SCORES = [
    (5, _lazy("very satisfied")),
    (4, _lazy("satisfied")),
    (3, _lazy("neutral")),
    (2, _lazy("dissatisfied")),
    (1, _lazy("very dissatisfied")),
]


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
    order = _visible_order(request, pk)
    if not (order.assignee_id == request.user.pk or service.sees_everything(request.user)):
        raise PermissionDenied
    form = DoneForm(request.POST)
    try:
        if not form.is_valid():
            raise TransitionError(errors_text(form))
        d = form.cleaned_data
        service.done(
            request.user,
            order,
            d["outcome"],
            d["note"],
            d["satisfaction"],
            ask_if_persisting=not d["confirm"],
        )
    except StillPersists as exc:
        # Asked, as the case page asks: the meter still shows the condition. The page comes
        # back with what was entered kept and a "close anyway" box, so nothing is typed twice.
        return render(
            request,
            "dispatch/order.html",
            _order_context(request, order, desk=False)
            | {"done": form.cleaned_data, "persists": exc},
        )
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("dispatch:order", pk=order.pk)
    messages.success(request, _("Work order %(n)s done. Thank you.") % {"n": order.pk})
    alert = order.alert
    if alert is not None and alert.condition_cleared_at is None:
        # Closed anyway after the question: the duty room gets the case again if the meter
        # keeps showing it.
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
    return redirect("dispatch:field" if order.assignee_id == request.user.pk else "dispatch:orders")


@require_POST
@require("dispatch.change_workorder", "alerts.view_alert")
def cancel(request, pk):
    def do(order, d):
        service.cancel(request.user, order, d["note"])
        messages.success(request, _("Work order %(n)s cancelled.") % {"n": order.pk})

    return _step(request, pk, StepNoteForm, do)


@require_POST
@require("dispatch.change_workorder", "alerts.view_alert")
def reassign(request, pk):
    order = _visible_order(request, pk)
    form = ReassignForm(request.POST, order=order)
    try:
        if not form.is_valid():
            raise TransitionError(errors_text(form))
        who = form.cleaned_data["assignee"]
        service.reassign(request.user, order, who)
        messages.success(
            request,
            _("Work order %(n)s reassigned to %(who)s.")
            % {"n": order.pk, "who": who.get_full_name() or who.get_username()},
        )
    except TransitionError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("dispatch:order", pk=order.pk)


@require("dispatch.view_auditentry")
def audit_log(request):
    query = AuditFilter(request.GET)
    if not query.is_valid():
        return bad_request(request, query)
    entries = service.audit_entries(**query.cleaned_data)
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    # The pager keeps the filters.
    kept = request.GET.copy()
    kept.pop("page", None)
    return render(
        request, "dispatch/audit.html", {"page": page, "query": query, "kept": kept.urlencode()}
    )


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
    service.audit(request, AuditEntry.Action.EXPORT, "care_recipients_csv", n=n)
    return response
