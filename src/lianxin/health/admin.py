from django.contrib import admin

from lianxin.health.models import Heartbeat, Source, SystemAlert


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = [
        "process",
        "host",
        "pid",
        "at",
        "duration_s",
        "clock",
        "lag_s",
        "behind",
        "backlog",
    ]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["kind", "name", "last_seen_at", "arrivals"]


@admin.register(SystemAlert)
class SystemAlertAdmin(admin.ModelAdmin):
    list_display = ["kind", "subject", "opened_at", "cleared_at"]
    list_filter = ["kind"]
