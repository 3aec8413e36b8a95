"""A work order's own record beyond its steps: who went along, the materials used, and photos or
documents. Shown on dispatch's work-order page through dispatch.service.ORDER_PANELS (dispatch
sits below ledgers and does not import it).

Who may add to it: the duty room, and the members of the order's team (a field member on the
phone uploads a photo of the repair). Field members have no ledgers permission; the check is
their team, not a role. Anyone else gets 403.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from lianxin.care.forms import errors_text
from lianxin.care.roles import require
from lianxin.dispatch.models import AuditEntry, WorkOrder
from lianxin.dispatch.service import audit, on_order_team
from lianxin.ledgers import attachments
from lianxin.ledgers.forms import PeopleField
from lianxin.ledgers.models import Attachment, OrderDetail

WORK = "dispatch.change_workorder"
ACCEPT = "image/jpeg,image/png,image/webp,application/pdf"


def team_members(order: WorkOrder):
    """Who can be named as having gone along: the members of the order's team."""
    return (
        get_user_model()
        .objects.filter(membership__team_id=order.team_id, is_active=True)
        .order_by("username")
    )


class OrderRecordForm(forms.Form):
    members = PeopleField(
        label=_lazy("members"), queryset=get_user_model().objects.none(), required=False
    )
    materials = forms.CharField(label=_lazy("materials"), max_length=2000, required=False)

    def __init__(self, *args, order: WorkOrder, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = team_members(order)


def _order(request, pk) -> WorkOrder:
    order = get_object_or_404(WorkOrder.objects.select_related("household", "team"), pk=pk)
    if not on_order_team(request.user, order):
        raise PermissionDenied
    return order


def order_panel(request, order: WorkOrder) -> dict | None:
    """The work-order page's section: members, materials, photos; forms for who may add."""
    user = request.user
    if not on_order_team(user, order):
        return None
    detail = OrderDetail.objects.filter(work_order=order).prefetch_related("members").first()
    members = list(detail.members.all()) if detail else []
    editable = user.has_perm(WORK)
    return {
        "template": "ledgers/_order_record.html",
        "order": order,
        "members": members,
        "member_ids": {m.pk for m in members},
        "materials": detail.materials if detail else "",
        "files": list(order.attachments.select_related("uploaded_by")),
        "editable": editable,
        "choices": list(team_members(order)) if editable else [],
        "accept": ACCEPT,
        "max_mb": attachments.MAX_BYTES // 1024 // 1024,
    }


@require_POST
@require(WORK)
def record(request, pk):
    """Set who went along and the materials used."""
    order = _order(request, pk)
    form = OrderRecordForm(request.POST, order=order)
    if not form.is_valid():
        messages.error(request, errors_text(form))
        return redirect("dispatch:order", pk=order.pk)
    with transaction.atomic():
        detail, _created = OrderDetail.objects.get_or_create(work_order=order)
        detail.materials = form.cleaned_data["materials"].strip()
        detail.save(update_fields=["materials"])
        detail.members.set(form.cleaned_data["members"])
    messages.success(request, _("Members and materials saved."))
    return redirect("dispatch:order", pk=order.pk)


@require_POST
@require(WORK)
def attach(request, pk):
    """A photo or document for the work order, checked by type and size."""
    order = _order(request, pk)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise attachments.AttachmentError(_("Choose a file to upload."))
        att = attachments.attach(request.user, upload, work_order=order)
        messages.success(request, _("%(name)s attached.") % {"name": att.name})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("dispatch:order", pk=order.pk)


@require("dispatch.view_workorder")
def attachment(request, pk, att):
    order = _order(request, pk)
    found = get_object_or_404(Attachment, pk=att, work_order=order)
    audit(request, AuditEntry.Action.VIEW, "work_order_attachment", order.household, pk=order.pk)
    response = FileResponse(attachments.open_attachment(found), content_type=found.content_type)
    ext = found.path.rsplit(".", 1)[-1]
    response["Content-Disposition"] = f'inline; filename="{found.pk}.{ext}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
