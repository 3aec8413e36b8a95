"""Who sees which homes, finding a home by what a caller says, and what the household page
shows."""

import re

from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from lianxin.care.models import Household, Team
from lianxin.care.roles import is_wall, sees_everything


def visible_households(user):
    # The wall screen shows the whole town's map and figures (and can change nothing).
    if sees_everything(user) or is_wall(user):
        return Household.objects.all()
    teams = Team.objects.filter(membership__user=user)
    # A home is the team's if someone there is in its care, or it sent the team a work order.
    return Household.objects.filter(
        Q(care_recipients__team__in=teams) | Q(work_orders__team__in=teams)
    ).distinct()


# Phone numbers are typed with spaces, dashes or a +86 prefix; they are stored as digits.
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
MAX_TERMS = 5  # what a person types; more words only make the query slower, not better


def _phone_digits(text: str) -> str:
    """The digits of a typed phone number ('+86 138-1234 5678' -> '13812345678'), or ''."""
    digits = _PHONE_NOISE.sub("", text).removeprefix("+")
    if not digits.isdigit():
        return ""
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def _term(word: str) -> Q:
    """Homes matching one word: a resident's name (zh or en) or phone, an emergency contact's
    phone, the address (zh or en), community, household code, or a meter or account number."""
    q = (
        Q(code__icontains=word)
        | Q(address__icontains=word)
        | Q(address_en__icontains=word)
        | Q(community__icontains=word)
        | Q(care_recipients__name__icontains=word)
        | Q(care_recipients__name_en__icontains=word)
        | Q(meters__number__icontains=word)
        | Q(meters__account_number__icontains=word)
    )
    digits = _phone_digits(word)
    if digits:
        q |= Q(care_recipients__phone__contains=digits) | Q(
            care_recipients__contacts__phone__contains=digits
        )
    return q


def find_households(query, user):
    """The homes `user` may see that match every word of `query` (name, phone, address,
    account or meter number, household code), as a queryset of Household. A blank query matches
    nothing: a search needs words. Used by the directory, the header's search box and the
    hotline form."""
    text = str(query or "").replace("\x00", "")
    # A phone number typed in groups is one word, not three.
    phone = _phone_digits(text)
    words = [phone] if len(phone) >= 7 else text.split()[:MAX_TERMS]
    homes = visible_households(user)
    if not words:
        return homes.none()
    # A household code typed whole names that home alone (the hotline form's quickest path).
    exact = homes.filter(code__iexact=text.strip())
    if exact.exists():
        return exact
    match = Q()
    for word in words:
        match &= Q(pk__in=Household.objects.filter(_term(word)).values("pk"))
    # Each word is a subquery of pks, so the joins of one word never multiply another's rows.
    return homes.filter(match).distinct().order_by("code")


def household_or_404(user, code: str) -> Household:
    """The home with this code if `user` may see it; another team's home is as good as absent.
    A code no home can have (a NUL, which PostgreSQL refuses in a query) is absent too."""
    if "\x00" in code:
        raise Http404
    return get_object_or_404(visible_households(user), code=code)


def household_page(home: Household, alert_id: int | None = None) -> dict:
    """The household page's data: the resident, meters, and the history the other apps keep of
    this home (reached through their relations to it)."""
    return {
        "home": home,
        "alert": home.alerts.filter(pk=alert_id).first() if alert_id else None,
        "recipients": home.care_recipients.select_related("team").prefetch_related(
            "contacts", "consents"
        ),
        "meters": home.meters.all(),
        "alerts": home.alerts.order_by("-opened_at")[:50],
        "orders": home.work_orders.select_related("assignee").order_by("-created_at")[:50],
        "calls": home.calls.select_related("by").order_by("-at")[:50],
        "away_periods": home.away_periods.select_related("author").order_by("-starts_at")[:20],
    }
