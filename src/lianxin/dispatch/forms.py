"""What the case page, the hotline form and the field view read from a request."""

from django import forms
from django.utils.translation import gettext_lazy as _

from lianxin.alerts.models import Outcome
from lianxin.care.forms import text_field
from lianxin.care.models import Household
from lianxin.dispatch import service
from lianxin.dispatch.models import Call

CHOOSE_MEMBER = _("Choose a team member.")


CHOOSE_OUTCOME = _("Choose an outcome.")


class MemberField(forms.ModelChoiceField):
    """One of the people the page offered; anyone else (or a value that is not an id) is
    refused with the same message."""

    def __init__(self, queryset, **kwargs):
        messages = {"required": CHOOSE_MEMBER, "invalid_choice": CHOOSE_MEMBER}
        super().__init__(queryset=queryset, error_messages=messages, **kwargs)


class CallForm(forms.Form):
    result = forms.ChoiceField(
        choices=Call.Result.choices,
        error_messages={
            "required": _("Choose how the call went."),
            "invalid_choice": _("Choose how the call went."),
        },
    )
    called = text_field(_("who was called"), max_length=Call._meta.get_field("called").max_length)
    note = text_field(_("Note"))
    # On a grid outage's welfare list: which home was called.
    household = forms.CharField(required=False, max_length=64)


class DispatchForm(forms.Form):
    request = text_field(_("what is needed"))

    def __init__(self, data, *, household):
        super().__init__(data)
        self.fields["assignee"] = MemberField(service.assignable(household))


class HotlineForm(forms.Form):
    household = forms.CharField(
        max_length=64, error_messages={"required": _("No household with that code.")}
    )
    assignee = MemberField(service.team_members())
    request = text_field(
        _("what is needed"),
        required=True,
        error_messages={"required": _("Say what the resident asked for.")},
    )

    def clean_household(self):
        home = Household.objects.filter(code=self.cleaned_data["household"]).first()
        if home is None:
            raise forms.ValidationError(_("No household with that code."))
        return home


class DoneForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Outcome.choices,
        error_messages={
            "required": _("Choose an outcome."),
            "invalid_choice": _("Choose an outcome."),
        },
    )
    note = text_field(_("Note"))
    satisfaction = forms.TypedChoiceField(
        required=False,
        choices=[(str(n), str(n)) for n in range(1, 6)],
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": _("Satisfaction is a number from 1 to 5.")},
    )


class StepNoteForm(forms.Form):
    note = text_field(_("Note"))
