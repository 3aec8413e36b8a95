"""What the queue and the case steps on an alert read from a request."""

from datetime import datetime, time

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _

from lianxin.alerts.models import AwayPeriod, KindChoices, Outcome
from lianxin.alerts.service import STATE_FILTERS
from lianxin.care.forms import IdField, text_field

CHOOSE_OUTCOME = _("Choose an outcome.")


class QueueFilter(forms.Form):
    state = forms.ChoiceField(
        label=_("State"), required=False, choices=[(k, k) for k in STATE_FILTERS]
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=KindChoices.choices)
    team = IdField(label=_("Team"), required=False)
    area = forms.CharField(label=_("Transformer area"), required=False, max_length=32)

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "state": data["state"] or "active",
            "kind": data["kind"] or None,
            "area": data["area"] or None,
            "team": data["team"],
        }


class ResolveForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Outcome.choices,
        error_messages={
            "required": _("Choose an outcome."),
            "invalid_choice": _("Choose an outcome."),
        },
    )
    note = text_field(_("Note"))
    # Ticked after the page said the meter still shows the condition.
    confirm = forms.BooleanField(required=False)


class CloseClearedForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Outcome.choices,
        error_messages={"required": CHOOSE_OUTCOME, "invalid_choice": CHOOSE_OUTCOME},
    )


class NoteForm(forms.Form):
    note = text_field(_("Note"), required=True, error_messages={"required": _("Write a note.")})


def _local(value: str, default_time: time) -> datetime | None:
    """A datetime-local or date input, read in the deployment's time zone; a bare date takes
    default_time. None when it cannot be read (an impossible date such as 2026-02-30 or a time
    such as T25:99 included)."""
    try:
        day = parse_date(value) if len(value) == 10 else None
        dt = datetime.combine(day, default_time) if day else parse_datetime(value)
    except ValueError:
        return None
    if dt is None:
        return None
    return timezone.make_aware(dt) if timezone.is_naive(dt) else dt


class AwayForm(forms.Form):
    starts_at = forms.CharField(required=False, max_length=40)
    # The case the form was sent from (the case page has one too): the answer goes back there.
    alert = IdField(required=False)
    ends_at = forms.CharField(
        max_length=40, error_messages={"required": _("Give the date the resident is back.")}
    )
    comment = text_field(
        _("comment"),
        required=True,
        max_length=AwayPeriod._meta.get_field("comment").max_length,
        error_messages={"required": _("Say why the resident is away.")},
    )

    def clean_starts_at(self):
        raw = self.cleaned_data["starts_at"]
        if not raw:
            return timezone.now()
        starts = _local(raw, time(0, 0))
        if starts is None:
            raise forms.ValidationError(
                _("Cannot read the start %(value)s: use a date and time."),
                params={"value": raw},
            )
        return starts

    def clean_ends_at(self):
        raw = self.cleaned_data["ends_at"]
        ends = _local(raw, time(23, 59))
        if ends is None:
            raise forms.ValidationError(
                _("Cannot read the date back %(value)s: use a date."), params={"value": raw}
            )
        return ends
