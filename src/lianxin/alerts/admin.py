"""Alerts in the admin: read-only. Every change goes through the case workflow, which logs it."""

from django.contrib import admin

from lianxin.alerts.models import Alert, AlertEvent, AwayPeriod


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "action", "actor", "from_status", "to_status", "note", "data"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnly):
    list_display = ["id", "kind", "severity", "status", "household", "started_at", "outcome"]
    list_filter = ["status", "kind", "severity", "outcome"]
    search_fields = ["household__code", "key"]
    inlines = [AlertEventInline]


@admin.register(AwayPeriod)
class AwayPeriodAdmin(ReadOnly):
    list_display = ["household", "starts_at", "ends_at", "comment", "author"]
