from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lianxin.ingest.api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "note", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "note"]
    fields = ["name", "note", "prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A token belongs to one source for life: renaming it would hide who sent what.
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        raw = obj.new_secret()
        obj.created_by = request.user
        obj.save()
        # Shown once: only the hash is stored, so nobody can display it again.
        self.message_user(
            request,
            _("Token for %(name)s: %(token)s — copy it now, it will not be shown again.")
            % {"name": obj.name, "token": raw},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, _("%(count)d token(s) revoked.") % {"count": count})
