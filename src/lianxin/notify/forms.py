"""What the shift page and the family's away link read from a request (Django's CharField
refuses NUL characters, which PostgreSQL cannot store)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from lianxin.alerts.models import KindChoices
from lianxin.care.forms import text_field


class HandoverForm(forms.Form):
    text = text_field(
        _("Handover note"),
        required=True,
        max_length=4000,
        error_messages={"required": _("Write a handover note.")},
    )


class SilenceForm(forms.Form):
    area = forms.CharField(required=False, max_length=32)
    household = forms.CharField(required=False, max_length=32)
    kind = forms.ChoiceField(required=False, choices=[("", "")] + list(KindChoices.choices))
    hours = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=24 * 14,
        error_messages={
            "invalid": _("Give the length in hours, up to two weeks."),
            "min_value": _("Give the length in hours, up to two weeks."),
            "max_value": _("Give the length in hours, up to two weeks."),
        },
    )
    reason = text_field(_("Reason"), max_length=200)


class FamilyNoteForm(forms.Form):
    note = text_field(_("Note"), max_length=120)
