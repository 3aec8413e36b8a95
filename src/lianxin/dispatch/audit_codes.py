"""What an audit entry says, by code: each entry stores a code and its parameters, and is
shown through the translation catalogue in the reader's language when it is read.

The English text of each code is also written to the entry's `what` (plain text for searching
and for reading the table without this module). Entries from before codes existed were given
their code by migration 0003; a text that had none keeps `what` and is shown as written.
"""

from django.apps import apps
from django.utils.translation import gettext
from django.utils.translation import gettext_noop as N_

MESSAGES = {
    "alert_queue": N_("alert queue"),
    "alert": N_("alert %(pk)s: %(code)s"),
    "welfare_list": N_("welfare list of alert %(pk)s"),
    "field_orders": N_("field view: my work orders"),
    "work_order": N_("work order %(pk)s"),
    "work_order_attachment": N_("work order %(pk)s attachment"),
    "household": N_("household %(code)s"),
    "directory": N_("resident directory"),
    "directory_search": N_("resident directory: %(q)s"),
    "care_recipients_csv": N_("care recipients CSV (%(n)s rows)"),
    "ledger_page": N_("care-recipient ledger page %(n)s"),
    "monthly_report_pdf": N_("monthly report %(month)s PDF (%(lang)s)"),
    "ledger_export": N_("%(ledger)s ledger %(month)s %(fmt)s (%(n)s rows)"),
    "admin_list": N_("%(model)s list (admin)"),
    "admin_object": N_("%(model)s %(pk)s (admin)"),
}


class UnknownCode(ValueError):
    pass


def english(code: str, params: dict) -> str:
    """The entry's text as written to `what`."""
    try:
        return MESSAGES[code] % params
    except KeyError as exc:
        raise UnknownCode(f"audit code {code!r} with parameters {params!r}: {exc}") from None


def _model_name(name: str) -> str:
    for model in apps.get_models():
        if model._meta.model_name == name:
            return str(model._meta.verbose_name)
    return name


def render(code: str, params: dict, what: str = "") -> str:
    """The entry in the active language; `what` as written when it has no (known) code."""
    if code not in MESSAGES:
        return what
    shown = dict(params)
    if "model" in shown:
        shown["model"] = _model_name(str(shown["model"]))
    try:
        return gettext(MESSAGES[code]) % shown
    except (KeyError, TypeError, ValueError):
        # Parameters that do not fit the message (a hand-edited row): the text as written.
        return what
