"""What the case page, the hotline form and the field view read from a request."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from lianxin.alerts.models import Outcome
from lianxin.care.forms import text_field
from lianxin.care.service import find_households
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
    """A hotline request: the home named by its code or its resident's name (or phone); when
    several homes match, the form says so and the page offers them to choose from."""

    household = forms.CharField(
        max_length=100,
        error_messages={"required": _("Type the resident's name or the household code.")},
    )
    assignee = MemberField(service.team_members())
    request = text_field(
        _("what is needed"),
        required=True,
        error_messages={"required": _("Say what the resident asked for.")},
    )

    def __init__(self, data=None, *, user):
        super().__init__(data)
        self.user = user
        self.matches = []

    def clean_household(self):
        q = self.cleaned_data["household"]
        homes = list(find_households(q, self.user)[:20])
        if not homes:
            raise forms.ValidationError(_("No resident or household matches “%(q)s”.") % {"q": q})
        if len(homes) > 1:
            self.matches = homes
            raise forms.ValidationError(
                _("%(n)s homes match “%(q)s”: choose one.") % {"n": len(homes), "q": q}
            )
        return homes[0]

    def clean(self):
        d = super().clean()
        home, member = d.get("household"), d.get("assignee")
        if home is not None and member is not None:
            if not service.assignable(home).filter(pk=member.pk).exists():
                raise forms.ValidationError(
                    _("%(who)s is not on the team that cares for this home.")
                    % {"who": member.get_full_name() or member.get_username()}
                )
        return d


class ReassignForm(forms.Form):
    def __init__(self, data, *, order):
        super().__init__(data)
        self.fields["assignee"] = MemberField(service.order_assignable(order))


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
    # Ticked after the phone said the meter still shows the condition.
    confirm = forms.BooleanField(required=False)


class StepNoteForm(forms.Form):
    note = text_field(_("Note"))


class AuditFilter(forms.Form):
    """The audit log's filters: who, which days, which resident (name or household code)."""

    user = forms.CharField(label=_("Who"), required=False, max_length=150)
    since = forms.DateField(label=pgettext_lazy("date range", "From"), required=False)
    until = forms.DateField(label=pgettext_lazy("date range", "To"), required=False)
    resident = forms.CharField(label=_("Resident"), required=False, max_length=100)

    def clean(self):
        d = super().clean()
        if d.get("since") and d.get("until") and d["since"] > d["until"]:
            raise forms.ValidationError(_("The first day is after the last."))
        return d
