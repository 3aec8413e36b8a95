import re
from datetime import date

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lianxin.care.forms import text_field
from lianxin.care.models import Household, Team, TransformerArea
from lianxin.ledgers.figures import Period, Scope
from lianxin.ledgers.models import Activity


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


# --- the phone forms: an inspection, a campaign day, an activity --------------------------

ID_TEXT = re.compile(r"^[0-9]{1,18}$")
DEFECT_ROWS = 3
ACCEPT = "image/jpeg,image/png,image/webp,application/pdf"


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


class NamedField(forms.ModelChoiceField):
    """A team or an area, by its name in the reader's language."""

    def label_from_instance(self, obj):
        from lianxin.alerts.templatetags.lianxin import loc

        return loc(obj, "name") or str(obj)


class PersonField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _name(obj)


class PeopleField(forms.ModelMultipleChoiceField):
    """Some of the people the page offered. A value that cannot be a row id is refused before
    it reaches the database (SQLite cannot even compare a 40-digit number)."""

    def label_from_instance(self, obj):
        return _name(obj)

    def _check_values(self, value):
        for v in value:
            if not ID_TEXT.match(str(v)):
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": v},
                )
        return super()._check_values(value)


def people_field(queryset):
    return PeopleField(
        label=_("members"), queryset=queryset, required=False, widget=forms.CheckboxSelectMultiple
    )


def team_people(teams):
    """The people of these teams who can be named as having gone."""
    return (
        get_user_model()
        .objects.filter(membership__team__in=teams, is_active=True)
        .distinct()
        .order_by("username")
    )


class PhotoField(forms.FileField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("photo or document"))
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs={"accept": ACCEPT}))
        super().__init__(**kwargs)


class InspectionForm(forms.Form):
    """The plan's checklist (each item answered yes or no, with a note), who went, defects found
    (each may name a household and send a repair), a note and a photo."""

    note = text_field(_("note"), widget=forms.Textarea(attrs={"rows": 2}))
    photo = PhotoField()

    def __init__(self, *args, inspection, **kwargs):
        super().__init__(*args, **kwargs)
        self.inspection = inspection
        self.items = list(inspection.plan.checklist)
        for i, item in enumerate(self.items):
            self.fields[f"ok_{i}"] = forms.ChoiceField(
                label=item,
                choices=[("yes", _("in order")), ("no", _("defect"))],
                widget=forms.RadioSelect,
                error_messages={"required": _("Answer this item.")},
            )
            self.fields[f"note_{i}"] = text_field(_("note"), max_length=500)
        people = team_people([inspection.team_id])
        self.fields["members"] = people_field(people)
        for k in range(DEFECT_ROWS):
            self.fields[f"defect_{k}"] = text_field(_("defect found"), max_length=500)
            self.fields[f"home_{k}"] = forms.CharField(
                label=_("household code (blank: the area itself)"), max_length=64, required=False
            )
            self.fields[f"repair_{k}"] = PersonField(
                label=_("send a repair to"),
                queryset=people,
                required=False,
                empty_label=_("no repair order"),
                error_messages={"invalid_choice": _("Choose a team member.")},
            )

    def checklist_rows(self):
        return [(self[f"ok_{i}"], self[f"note_{i}"]) for i in range(len(self.items))]

    def defect_rows(self):
        return [
            (self[f"defect_{k}"], self[f"home_{k}"], self[f"repair_{k}"])
            for k in range(DEFECT_ROWS)
        ]

    def clean(self):
        data = super().clean()
        data["defects"] = []
        for k in range(DEFECT_ROWS):
            text, code = data.get(f"defect_{k}", ""), (data.get(f"home_{k}") or "").strip()
            if not text:
                if code or data.get(f"repair_{k}"):
                    self.add_error(f"defect_{k}", _("Say what is wrong."))
                continue
            home = None
            if code:
                home = Household.objects.filter(code=code).first()
                if home is None:
                    self.add_error(f"home_{k}", _("No household %(code)s.") % {"code": code})
                    continue
            data["defects"].append((text, home, data.get(f"repair_{k}")))
        return data

    def results(self):
        d = self.cleaned_data
        return [
            {"item": item, "ok": d[f"ok_{i}"] == "yes", "note": d.get(f"note_{i}", "")}
            for i, item in enumerate(self.items)
        ]


class CampaignDayForm(forms.Form):
    day = forms.DateField(
        label=_("day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    households_restored = forms.IntegerField(
        label=_("households restored"), min_value=0, max_value=1_000_000
    )
    members_out = forms.IntegerField(label=_("members out"), min_value=0, max_value=100_000)
    note = text_field(_("note"), widget=forms.Textarea(attrs={"rows": 2}))
    photo = PhotoField()

    def __init__(self, *args, campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign

    def clean_day(self):
        day = self.cleaned_data["day"]
        c = self.campaign
        if not c.starts_on <= day <= c.ends_on:
            raise forms.ValidationError(
                _("%(day)s is outside the campaign (%(first)s to %(last)s).")
                % {"day": day, "first": c.starts_on, "last": c.ends_on}
            )
        return day


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(label=_("type"), choices=Activity.Kind.choices)
    title = text_field(_("title"), required=True, max_length=200)
    on = forms.DateField(
        label=_("date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    place = text_field(_("place"), required=True, max_length=200)
    beneficiaries = forms.IntegerField(label=_("beneficiaries"), min_value=0, max_value=1_000_000)
    note = text_field(_("note"), widget=forms.Textarea(attrs={"rows": 2}))
    photo = PhotoField()

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"] = NamedField(label=_("team"), queryset=teams, empty_label=None)
        self.fields["area"] = NamedField(
            label=_("transformer area"),
            queryset=TransformerArea.objects.order_by("code"),
            required=False,
            to_field_name="code",
            empty_label=_("no area"),
        )
        self.fields["members"] = people_field(team_people(teams))
        self.order_fields(
            ["kind", "title", "team", "on", "place", "area", "beneficiaries", "members", "note"]
        )


class RepairForm(forms.Form):
    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"] = PersonField(
            label=_("send a repair to"),
            queryset=team_people([team]),
            error_messages={
                "required": _("Choose a team member."),
                "invalid_choice": _("Choose a team member."),
            },
        )
