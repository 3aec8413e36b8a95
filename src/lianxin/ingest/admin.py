from django.contrib import admin

from lianxin.ingest.models import ImportRun, Rejection


class RejectionInline(admin.TabularInline):
    model = Rejection
    extra = 0
    can_delete = False
    readonly_fields = ["line", "field", "value", "code", "reason"]
    max_num = 0


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["source", "status", "started_at", "rows", "accepted", "rejected"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ImportRun._meta.fields]


@admin.register(Rejection)
class RejectionAdmin(admin.ModelAdmin):
    list_display = ["run", "line", "field", "value", "code", "reason"]
    list_filter = ["code"]
    readonly_fields = ["run", "line", "field", "value", "code", "reason"]
