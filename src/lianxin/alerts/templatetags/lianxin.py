"""Template helpers for the duty room: names in the reader's language and compact ages."""

from django import template
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def loc(obj, field: str):
    """obj.<field>_en for English readers when it is filled in, else obj.<field>."""
    if obj is None:
        return ""
    if (get_language() or "").startswith("en"):
        english = getattr(obj, f"{field}_en", "")
        if english:
            return english
    return getattr(obj, field, "")


@register.filter
def age(since, now=None):
    """'2 d 3 h', '3 h 20 min', '7 min': how long ago, short enough for a queue column."""
    if not since:
        return ""
    seconds = max(0, int(((now or timezone.now()) - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    return _("%(m)d min") % {"m": minutes}


@register.filter
def who(user):
    """A person's full name, else their user name; '—' for nobody."""
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


@register.filter
def duration(delta):
    """A timedelta as '3 min', '1 h 5 min', '2 d 3 h'."""
    if delta is None:
        return ""
    now = timezone.now()
    return age(now - delta, now)


@register.filter
def years_old(birth_year):
    if not birth_year:
        return ""
    return _("%(n)d y") % {"n": timezone.localdate().year - int(birth_year)}


@register.filter
def assignee(data):
    """The name of the person a work order went to, from a 'dispatched' event's data (older
    events hold only the user name: it is looked up)."""
    if not data or not data.get("assignee"):
        return ""
    if data.get("assignee_name"):
        return data["assignee_name"]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=data["assignee"]).first()
    return who(user) if user else data["assignee"]


@register.filter
def call_target(event):
    """Who a call reached, for the timeline: what the caller wrote, and for a welfare call (an
    outage covers many homes) the resident of the home that was called."""
    data = event.data or {}
    called = (data.get("called") or "").strip()
    parts = []
    if event.alert.household_id is None and data.get("household"):
        from lianxin.care.models import CareRecipient

        person = (
            CareRecipient.objects.filter(household__code=data["household"])
            .select_related("household")
            .order_by("pk")
            .first()
        )
        if person is not None:
            name = loc(person, "name")
            parts.append(f"{name} · {loc(person.household, 'address')}")
            if called in (person.name, name):
                called = ""
        else:
            parts.append(data["household"])
    if called:
        parts.append(called)
    return " · ".join(parts)


@register.filter
def lasted(alert):
    """How long a resolved alert's condition lasted: from its start to when the meter said it
    was over, else to when the case was closed (not to now)."""
    end = alert.condition_cleared_at or alert.resolved_at
    if not end or not alert.started_at:
        return ""
    return age(alert.started_at, end)
