"""The queue's banner of maintenance silences (one query, not one per row)."""

from django import template
from django.utils import timezone

from lianxin.alerts.models import ACTIVE, Alert
from lianxin.notify import service

register = template.Library()


@register.inclusion_tag("notify/_silences.html")
def silences_banner():
    now = timezone.now()
    silences = list(
        service.active_silences(now).select_related("transformer_area", "household", "author")
    )
    rows = []
    if silences:
        active = list(Alert.objects.filter(status__in=ACTIVE).select_related("household"))
        for s in silences:
            matched = [a for a in active if s.matches(a)]
            # Never hidden without saying so: critical no_power at an enrolled home still
            # notifies under a silence, and the banner names it.
            loud = [a for a in matched if service.never_hidden(a)]
            rows.append({"silence": s, "matched": len(matched), "loud": loud})
    return {"rows": rows}
