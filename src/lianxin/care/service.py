"""Who sees which homes, and what the household page shows."""

from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from lianxin.care.models import Household, Team
from lianxin.care.roles import sees_everything


def visible_households(user):
    if sees_everything(user):
        return Household.objects.all()
    teams = Team.objects.filter(membership__user=user)
    # A home is the team's if someone there is in its care, or it sent the team a work order.
    return Household.objects.filter(
        Q(care_recipients__team__in=teams) | Q(work_orders__team__in=teams)
    ).distinct()


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


def find_households(query: str, user):
    """The homes `user` may see that `query` names: a household code (exactly), or a resident's
    name, English name or phone (in part). The hotline form's lookup; the resident directory
    may build on it."""
    q = (query or "").strip()
    homes = visible_households(user)
    if not q or "\x00" in q:
        return homes.none()
    exact = homes.filter(code__iexact=q)
    if exact.exists():
        return exact
    return (
        homes.filter(
            Q(care_recipients__name__icontains=q)
            | Q(care_recipients__name_en__icontains=q)
            | Q(care_recipients__phone__icontains=q)
            | Q(address__icontains=q)
        )
        .distinct()
        .order_by("code")
    )
