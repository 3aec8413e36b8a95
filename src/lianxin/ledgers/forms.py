from datetime import date

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lianxin.care.models import Team, TransformerArea
from lianxin.ledgers.figures import Period, Scope


class FilterForm(forms.Form):
    """Period (a month), team, transformer area and type; every field may be left out."""

    month = forms.RegexField(
        label=_("month"),
        regex=r"^\d{4}-(0[1-9]|1[0-2])$",
        required=False,
        error_messages={"invalid": _("Give the month as YYYY-MM.")},
        widget=forms.TextInput(attrs={"type": "month"}),
    )
    team = forms.ModelChoiceField(
        label=_("team"), queryset=Team.objects.all(), required=False, empty_label=_("all teams")
    )
    area = forms.ModelChoiceField(
        label=_("transformer area"),
        queryset=TransformerArea.objects.all(),
        required=False,
        empty_label=_("all areas"),
        to_field_name="code",
    )
    type = forms.ChoiceField(label=_("type"), required=False)

    def __init__(self, data=None, types=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["type"].choices = [("", _("all types"))] + list(types)
        if not types:
            del self.fields["type"]

    def scope(self) -> tuple[Scope, str]:
        """The scope asked for; a field that does not validate falls back to its default (the
        form shows the error beside it)."""
        data = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        month = data.get("month") or ""
        if month:
            period = Period.month(int(month[:4]), int(month[5:]))
        else:
            period = Period.containing(timezone.localdate())
        scope = Scope(period, team=data.get("team"), area=data.get("area"))
        return scope, data.get("type") or ""


def month_value(period: Period) -> str:
    return f"{period.first:%Y-%m}"


def previous_month(day: date) -> Period:
    first = day.replace(day=1)
    return Period.containing(date.fromordinal(first.toordinal() - 1))
