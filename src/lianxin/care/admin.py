from django import forms
from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _

from lianxin.care.audit import viewed
from lianxin.care.models import (
    CareRecipient,
    Consent,
    EmergencyContact,
    Feeder,
    Household,
    Membership,
    Meter,
    MeterReplacement,
    Team,
    TransformerArea,
)


class AuditedAdmin(admin.ModelAdmin):
    """Names, phones, addresses and risk notes: every look at the list or at one record is
    written to the audit log (a save redirects to the list: that is the same look again and,
    within a few minutes, not a new entry)."""

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            viewed(request, "admin_list", model=self.model._meta.model_name)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = getattr(response, "context_data", {}).get("original")
        if request.method == "GET" and obj is not None:
            name = self.model._meta.model_name
            viewed(request, "admin_object", self.household_of(obj), model=name, pk=obj.pk)
        return response

    def household_of(self, obj):
        return getattr(obj, "household", None)


admin.site.site_header = _("Lianxin administration")
admin.site.site_title = _("Lianxin")


@admin.register(Feeder)
class FeederAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "substation"]
    search_fields = ["code", "name"]


@admin.register(TransformerArea)
class TransformerAreaAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "feeder"]
    list_filter = ["feeder"]
    search_fields = ["code", "name", "name_en"]


class MeterInline(admin.TabularInline):
    model = Meter
    extra = 0


@admin.register(Household)
class HouseholdAdmin(AuditedAdmin):
    def household_of(self, obj):
        return obj

    list_display = ["code", "address", "community", "transformer_area"]
    list_filter = ["transformer_area"]
    search_fields = ["code", "address", "address_en", "meters__number", "meters__account_number"]
    inlines = [MeterInline]

    def get_readonly_fields(self, request, obj=None):
        # A code is fixed once saved (see Household.code): the address is what may change.
        fixed = ["code"] if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *fixed]


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ["number", "account_number", "household", "kind", "interval_minutes", "prepaid"]
    list_filter = ["kind", "prepaid", "interval_minutes"]
    search_fields = ["number", "account_number", "household__address"]
    raw_id_fields = ["household"]


class ConsentInline(admin.StackedInline):
    # Stacked: the consent has ten fields (dates with separate time boxes, notes); as a
    # table row it ran past the form's right edge.
    model = Consent
    extra = 0
    can_delete = False  # withdrawal is recorded on the consent, never by deleting it


class EmergencyContactInline(admin.TabularInline):
    model = EmergencyContact
    extra = 0
    # Narrow text boxes: at the admin's default width the row ran past the form's edge.
    formfield_overrides = {models.CharField: {"widget": forms.TextInput(attrs={"size": 14})}}


@admin.register(CareRecipient)
class CareRecipientAdmin(AuditedAdmin):
    list_display = ["name", "name_en", "birth_year", "household", "team", "sensitivity"]
    list_filter = ["team", "sensitivity"]
    search_fields = ["name", "name_en", "phone", "household__address"]
    raw_id_fields = ["household"]
    inlines = [ConsentInline, EmergencyContactInline]


@admin.register(Consent)
class ConsentAdmin(AuditedAdmin):
    def household_of(self, obj):
        return obj.care_recipient.household

    list_display = ["care_recipient", "scope", "given_at", "given_by", "withdrawn_at"]
    list_filter = ["scope"]
    search_fields = ["care_recipient__name", "given_by"]

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en"]
    inlines = [MembershipInline]


@admin.register(MeterReplacement)
class MeterReplacementAdmin(admin.ModelAdmin):
    list_display = (
        "household",
        "old_meter",
        "new_meter",
        "replaced_at",
        "old_final",
        "new_initial",
    )
    search_fields = ("old_meter__number", "new_meter__number", "household__code")
    raw_id_fields = ("household", "old_meter", "new_meter")


# The role groups under their translated names.
from lianxin.care import admin_roles  # noqa: E402,F401
