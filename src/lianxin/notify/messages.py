"""What each recipient reads, in their language, short enough for one SMS.

Staff messages carry the reason and a link to the alert. Messages to residents and families carry
no personal data (no name, no address, no numbers): a phone number can change hands, and an
SMS is read over a shoulder.
"""

import os

from django.utils import translation
from django.utils.translation import gettext as _

# Staff texts are cut here so an SMS stays in a few segments (70 Chinese characters each).
STAFF_TEXT_LIMIT = 120


def base_url() -> str:
    """Where the duty room is reached from outside (links in messages)."""
    return (os.environ.get("LIANXIN_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def staff(alert, language: str, step: int = 0, repeat: int = 0) -> tuple[str, str, str]:
    """(title, text, link) for the duty room and the team lead."""
    with translation.override(language):
        place = ""
        if alert.household_id:
            place = alert.household.code
        elif alert.transformer_area_id:
            ta = alert.transformer_area
            place = (ta.name_en if language == "en" and ta.name_en else ta.name) or ta.code
        reason = alert.reason_en if language == "en" else alert.reason_zh
        title = _("[Lianxin] %(severity)s %(kind)s · %(place)s") % {
            "severity": alert.get_severity_display(),
            "kind": alert.get_kind_display(),
            "place": place,
        }
        if repeat:
            title += " · " + _("not acknowledged, reminder %(n)s") % {"n": repeat}
        elif step > 0:
            title += " · " + _("not acknowledged, step %(n)s") % {"n": step + 1}
        link = f"{base_url()}/alerts/{alert.pk}/"
        return title, _cut(reason, STAFF_TEXT_LIMIT), link


def resident(language: str, link: str) -> tuple[str, str]:
    with translation.override(language):
        return (
            _("Lianxin care team"),
            _(
                "Lianxin: we have not seen the usual activity at home today. If you are fine, "
                "tap to tell us:"
            ),
        )


def resident_voice(language: str) -> tuple[str, str]:
    with translation.override(language):
        return (
            _("Lianxin care team"),
            _(
                "This is the Lianxin care team. We have not seen the usual activity at your home "
                "today. If you are fine, press 1. If you need help, press 2."
            ),
        )


def contact(alert, language: str, with_away_link: bool) -> tuple[str, str]:
    with translation.override(language):
        title = _("Lianxin care team")
        if with_away_link:
            return title, _(
                "Lianxin: no usual activity at your relative's home today; we are checking. "
                "If they are staying with you, tap:"
            )
        return title, _(
            "Lianxin: an alert (%(kind)s) at your relative's home; the care team is on it."
        ) % {"kind": alert.get_kind_display()}


def system(text_zh: str, text_en: str, language: str) -> str:
    return _cut(text_en if language == "en" else text_zh, STAFF_TEXT_LIMIT)
