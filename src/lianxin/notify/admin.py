"""Channels, escalation policies, preferences and silences in the admin. Secrets are
write-only: once saved they are never shown again, and a blank field keeps the saved value."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lianxin.notify import channels
from lianxin.notify.models import (
    Channel,
    EscalationPolicy,
    EscalationStep,
    HandoverNote,
    Notification,
    PersonPreference,
    RosterShift,
    Silence,
)

SECRET_FIELDS = ("token", "secret")


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = [
            "name",
            "kind",
            "audience",
            "team",
            "enabled",
            "language",
            "url",
            "options",
            "token",
            "secret",
            "quiet_start",
            "quiet_end",
        ]
        widgets = {f: forms.PasswordInput(render_value=False) for f in SECRET_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            field = self.fields[name]
            if self.instance.pk and getattr(self.instance, name):
                field.help_text = _("Saved. Leave empty to keep it; type a new one to replace it.")

    def clean(self):
        data = super().clean()
        for name in SECRET_FIELDS:
            if not data.get(name) and self.instance.pk:
                data[name] = getattr(Channel.objects.get(pk=self.instance.pk), name)
        return data


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "audience", "team", "language", "enabled", "last_error"]
    list_filter = ["kind", "audience", "enabled", "team"]
    actions = ["send_test"]
    readonly_fields = ["last_error"]

    @admin.action(description=gettext_lazy("Send a test message"))
    def send_test(self, request, queryset):
        for ch in queryset:
            key = Notification.new_key()
            msg = channels.Message(
                title=_("[Lianxin] test message"),
                text=_("Test from %(user)s at %(t)s: this channel works.")
                % {"user": request.user.username, "t": timezone.localtime().strftime("%H:%M")},
                link="",
                key=key,
                # SMS / voice: options["test_to"] is the phone a test goes to.
                address=(ch.options or {}).get("test_to", ""),
                language=ch.language,
            )
            try:
                response = channels.send(ch, msg)
            except channels.TransportError as exc:
                self.message_user(request, f"{ch.name}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{ch.name}: {response}", level=messages.SUCCESS)


class StepInline(admin.TabularInline):
    model = EscalationStep
    extra = 1


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "kind", "min_severity", "repeat_minutes", "max_repeats"]
    inlines = [StepInline]


@admin.register(PersonPreference)
class PersonPreferenceAdmin(admin.ModelAdmin):
    list_display = ["care_recipient", "ask_resident_first", "reach_by", "resident_language"]
    autocomplete_fields = []


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = [
        "reason",
        "transformer_area",
        "household",
        "kind",
        "starts_at",
        "ends_at",
        "author",
    ]
    readonly_fields = ["author", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.author = request.user
        super().save_model(request, obj, form, change)


@admin.register(RosterShift)
class RosterShiftAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "starts_at", "ends_at", "note"]
    list_filter = ["team"]
    date_hierarchy = "starts_at"


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "channel",
        "to",
        "address",
        "status",
        "attempts",
        "alert",
        "system_key",
    ]
    list_filter = ["status", "channel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(HandoverNote)
