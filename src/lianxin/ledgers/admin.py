"""Entering the team's own records: inspection plans and inspections, campaigns, activities.
Attachments are shown read-only here: they are uploaded through the checked upload."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from lianxin.alerts.admin import ReadOnly
from lianxin.ledgers.models import (
    Activity,
    Attachment,
    Campaign,
    CampaignDay,
    Defect,
    Inspection,
    InspectionPlan,
    OrderDetail,
)


@admin.register(InspectionPlan)
class InspectionPlanAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "transformer_area", "every_days", "first_on", "active"]
    list_filter = ["team", "active"]


class DefectInline(admin.TabularInline):
    model = Defect
    extra = 0
    raw_id_fields = ["household", "repair_order"]


@admin.register(Inspection)
class InspectionAdmin(admin.ModelAdmin):
    list_display = ["plan", "due_on", "done_at", "team"]
    list_filter = ["team", "plan"]
    date_hierarchy = "due_on"
    inlines = [DefectInline]


class CampaignDayInline(admin.TabularInline):
    model = CampaignDay
    extra = 1


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "starts_on", "ends_on", "place"]
    filter_horizontal = ["members", "transformer_areas"]
    raw_id_fields = ["work_orders"]
    inlines = [CampaignDayInline]


class ActivityForm(forms.ModelForm):
    class Meta:
        model = Activity
        fields = [
            "kind",
            "title",
            "title_en",
            "team",
            "on",
            "place",
            "transformer_area",
            "members",
            "beneficiaries",
            "people",
            "note",
        ]

    def clean(self):
        data = super().clean()
        people = data.get("people") or []
        unnamed = [p.name for p in people if not p.active_consents().exists()]
        if unnamed:
            raise forms.ValidationError(
                _("No consent on record for %(names)s: count them, but do not name them.")
                % {"names": "、".join(unnamed)}
            )
        if len(people) > (data.get("beneficiaries") or 0):
            raise forms.ValidationError(_("More people are named than the beneficiaries counted."))
        return data


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    form = ActivityForm
    list_display = ["on", "title", "kind", "team", "place", "beneficiaries"]
    list_filter = ["kind", "team"]
    date_hierarchy = "on"
    filter_horizontal = ["members"]
    raw_id_fields = ["people"]


@admin.register(OrderDetail)
class OrderDetailAdmin(admin.ModelAdmin):
    list_display = ["work_order", "materials"]
    raw_id_fields = ["work_order"]
    filter_horizontal = ["members"]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnly):
    list_display = ["name", "content_type", "size", "uploaded_by", "uploaded_at"]
