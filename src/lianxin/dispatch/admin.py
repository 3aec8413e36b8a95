"""Dispatch records in the admin: read-only, so the audit trail and the case log stay whole."""

from django.contrib import admin

from lianxin.alerts.admin import ReadOnly
from lianxin.dispatch.models import AuditEntry, Call, WorkOrder


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnly):
    list_display = ["id", "source", "household", "assignee", "status", "outcome", "satisfaction"]
    list_filter = ["status", "source", "outcome", "team"]


@admin.register(Call)
class CallAdmin(ReadOnly):
    list_display = ["at", "household", "by", "result"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly):
    list_display = ["at", "user", "action", "what", "path", "ip"]
    list_filter = ["action"]
    search_fields = ["user__username", "what", "household__code"]
