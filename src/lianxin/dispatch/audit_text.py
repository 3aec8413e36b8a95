"""The audit log's "what", in the reader's language.

Entries are written with a fixed English phrase and its values ("alert 12: H0001"): the phrase
is the entry's code, the values its parameters. Each phrase is matched here and shown through
the translation catalogue, so entries read in Chinese under zh, older entries included. A text
that matches no phrase is shown as it was written.
"""

import re

from django.apps import apps
from django.utils.translation import gettext_lazy

PHRASES = [
    (r"alert queue", gettext_lazy("alert queue")),
    (r"alert (?P<pk>\d+): (?P<code>.+)", gettext_lazy("alert %(pk)s: %(code)s")),
    (r"welfare list of alert (?P<pk>\d+)", gettext_lazy("welfare list of alert %(pk)s")),
    (r"field view: my work orders", gettext_lazy("field view: my work orders")),
    (r"work order (?P<pk>\d+)", gettext_lazy("work order %(pk)s")),
    (r"household (?P<code>.+)", gettext_lazy("household %(code)s")),
    (r"care recipients CSV \((?P<n>\d+) rows\)", gettext_lazy("care recipients CSV (%(n)s rows)")),
    (
        r"care-recipient ledger page (?P<n>\d+)",
        gettext_lazy("care-recipient ledger page %(n)s"),
    ),
    (
        r"monthly report (?P<month>\S+) PDF \((?P<lang>[\w-]+)\)",
        gettext_lazy("monthly report %(month)s PDF (%(lang)s)"),
    ),
    (
        r"(?P<ledger>\S+) ledger (?P<month>\S+) (?P<fmt>CSV|XLSX) \((?P<n>\d+) rows\)",
        gettext_lazy("%(ledger)s ledger %(month)s %(fmt)s (%(n)s rows)"),
    ),
    (r"(?P<model>\w+) list \(admin\)", gettext_lazy("%(model)s list (admin)")),
    (r"(?P<model>\w+) (?P<pk>\d+) \(admin\)", gettext_lazy("%(model)s %(pk)s (admin)")),
]
_COMPILED = [(re.compile(rf"{pattern}\Z"), text) for pattern, text in PHRASES]


def _model_name(name: str) -> str:
    for model in apps.get_models():
        if model._meta.model_name == name:
            return str(model._meta.verbose_name)
    return name


def describe(what: str) -> str:
    for pattern, text in _COMPILED:
        m = pattern.match(what)
        if m:
            params = m.groupdict()
            if "model" in params:
                params["model"] = _model_name(params["model"])
            return str(text) % params if params else str(text)
    return what
