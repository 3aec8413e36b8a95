from django import forms
from django.utils.translation import gettext_lazy as _

from lianxin.care.forms import IdField, text_field


class DirectoryQuery(forms.Form):
    SCOPES = [("residents", _("enrolled residents")), ("all", _("all homes"))]

    q = text_field(_("search"), max_length=100)
    area = IdField(label=_("transformer area"), required=False)
    team = IdField(label=_("team"), required=False)
    scope = forms.ChoiceField(label=_("show"), choices=SCOPES, required=False)
    page = forms.IntegerField(label=_("page"), min_value=1, max_value=100_000, required=False)
